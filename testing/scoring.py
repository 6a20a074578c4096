"""The scoring side's shared helpers (run in .venv-scoring): the lesson's sample request, a small
real MLflow model trained from the shipped CSV, and a fresh import of scoring/score.py.

tests/scoring and bench/ (scoring.py, collection.py) both use these.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import sys
from pathlib import Path
from types import ModuleType

from jobs.paths import ROOT  # standard library only, so it imports in the scoring venv too

CSV = ROOT / "data" / "heart_failure_clinical_records_dataset.csv"
SAMPLE_REQUEST = json.loads((ROOT / "scoring" / "sample-request.json").read_text())


def train_model(
    target: Path,
    drop: tuple[str, ...] = (),
    dtypes: dict[str, str] | None = None,
    ensemble: bool = False,
    reverse_columns: bool = False,
) -> Path:
    """A small real MLflow model from the shipped CSV: a standardized logistic regression, or with
    `ensemble` the shape local AutoML deploys (a soft vote of a random forest and LightGBM, each
    with n_jobs=2). `dtypes` overrides column types (float64 otherwise), and so the signature's."""
    import mlflow.sklearn
    import pandas as pd
    import skops.io
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame = pd.read_csv(CSV)
    features = frame.drop(columns=["DEATH_EVENT", *drop]).astype("float64").astype(dtypes or {})
    if reverse_columns:
        features = features[features.columns[::-1]]
    label = frame["DEATH_EVENT"].astype("float64")
    if ensemble:
        from lightgbm import LGBMClassifier
        from sklearn.ensemble import RandomForestClassifier, VotingClassifier

        learner = VotingClassifier(
            [
                ("rf", RandomForestClassifier(n_estimators=10, n_jobs=2, random_state=0)),
                ("lgbm", LGBMClassifier(n_estimators=10, n_jobs=2, verbose=-1)),
            ],
            voting="soft",
        )
    else:
        learner = LogisticRegression(max_iter=1000)
    model = make_pipeline(StandardScaler(), learner).fit(features, label)
    mlflow.sklearn.save_model(
        model,
        str(target),
        signature=infer_signature(features, label),
        pip_requirements=["scikit-learn"],
        skops_trusted_types=skops.io.get_untrusted_types(data=skops.io.dumps(model)),
    )
    return target


_loads = itertools.count()


def load_score_module() -> ModuleType:
    """A fresh copy of score.py, as a new worker would import it.

    Each copy gets its own module name: inference-schema registers schemas per qualified name.
    """
    name = f"score_under_test_{next(_loads)}"
    spec = importlib.util.spec_from_file_location(name, ROOT / "scoring" / "score.py")
    if spec is None or spec.loader is None:  # only if scoring/score.py is not a Python file
        raise ImportError(f"cannot load {ROOT / 'scoring' / 'score.py'}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
