"""The offline backend: FLAML for AutoML, a folder registry, azmlinfsrv on 127.0.0.1."""
