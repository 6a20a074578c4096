"""Scoring tests run in .venv-scoring, the environment the endpoint runs (see Makefile)."""

from __future__ import annotations

from pathlib import Path

import pytest

from testing.scoring import load_score_module, train_model


@pytest.fixture(scope="session")
def model_root(tmp_path_factory) -> Path:
    # Azure mounts the model a few folders deep (<name>/<version>/<artifact folder>).
    root = tmp_path_factory.mktemp("azureml-models")
    train_model(root / "heart-failure" / "1" / "mlflow-model")
    return root


@pytest.fixture(scope="session")
def score(model_root):
    import os

    os.environ["AZUREML_MODEL_DIR"] = str(model_root)
    module = load_score_module()
    module.init()
    return module
