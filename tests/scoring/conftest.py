"""Scoring tests run in .venv-scoring, the environment the endpoint runs (see Makefile)."""

from __future__ import annotations

import importlib.util
import itertools
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CSV = ROOT / "data" / "heart_failure_clinical_records_dataset.csv"
SAMPLE_REQUEST = json.loads((ROOT / "scoring" / "sample-request.json").read_text())


def train_model(target: Path, drop: tuple[str, ...] = ()) -> Path:
    """A small real MLflow model (standardized logistic regression) from the shipped CSV."""
    import mlflow.sklearn
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame = pd.read_csv(CSV)
    features = frame.drop(columns=["DEATH_EVENT", *drop]).astype("float64")
    label = frame["DEATH_EVENT"].astype("float64")
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(features, label)
    mlflow.sklearn.save_model(model, str(target), signature=infer_signature(features, label),
                              pip_requirements=["scikit-learn"])
    return target


@pytest.fixture(scope="session")
def model_root(tmp_path_factory) -> Path:
    # Azure mounts the model a few folders deep (<name>/<version>/<artifact folder>).
    root = tmp_path_factory.mktemp("azureml-models")
    train_model(root / "heart-failure" / "1" / "mlflow-model")
    return root


_loads = itertools.count()


def load_score_module():
    """A fresh copy of score.py, as a new worker would import it.

    Each copy gets its own module name: inference-schema registers schemas per qualified name.
    """
    name = f"score_under_test_{next(_loads)}"
    spec = importlib.util.spec_from_file_location(name, ROOT / "scoring" / "score.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def score(model_root):
    import os

    os.environ["AZUREML_MODEL_DIR"] = str(model_root)
    module = load_score_module()
    module.init()
    return module
