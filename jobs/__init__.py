"""Job scripts: drive Azure ML (or the local backend) into the platform that infra/ creates."""
