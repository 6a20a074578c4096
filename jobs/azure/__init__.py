"""The Azure target: azure-ai-ml (SDK v2) entities, built explicitly, and the backend that submits them."""
