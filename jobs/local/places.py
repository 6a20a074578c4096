"""Where each environment lives under .local/ (jobs/environments.py declares the environments).

.local/mlflow/<env>/mlflow.db       the environment's MLflow tracking store and model registry (SQLite)
.local/mlflow/<env>/artifacts/      its runs' artifacts and its model versions' MLflow models
.local/mlflow/<env>/registry.lock   one writer at a time (jobs/local/locking.py)
.local/endpoint.json, servers/, ... dev's endpoint (the paths it had before there were environments)
.local/<env>/endpoint.json, ...     any other environment's endpoint (prod: .local/prod/)
"""

from __future__ import annotations

from pathlib import Path

from jobs.environments import REGISTERED_IN


def registry_root(home: Path, env: str) -> Path:
    """The folder of `env`'s MLflow store (`home` is .local/)."""
    return home / "mlflow" / env


def endpoint_home(home: Path, env: str) -> Path:
    """The folder of `env`'s local endpoint state (jobs/local/endpoint.py's `home`)."""
    return home if env == REGISTERED_IN else home / env
