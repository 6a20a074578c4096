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
SCHEMA_FILE = ROOT / "data" / "heart_failure_clinical_records_dataset.schema.json"
SAMPLE_REQUEST = json.loads((ROOT / "scoring" / "sample-request.json").read_text())
CONTRACT_FILE = "model-contract.json"  # scoring/contract.py's


def write_contract(
    model_dir: Path,
    inputs: list[str],
    ranges: dict[str, list[float]],
    threshold: float | None = 0.5,
    schema: dict[str, object] | None = None,
) -> Path:
    """The model contract (scoring/contract.py format 1) a trained model carries, beside its MLmodel."""
    document = {
        "format": 1,
        "dataset": schema or json.loads(SCHEMA_FILE.read_text()),
        "inputs": inputs,
        "training_ranges": ranges,
        "operating_point": None if threshold is None else {"threshold": threshold, "rule": "set by the test"},
        "accuracy_table": [],
        "leaking_columns_used": [],
    }
    path = model_dir / CONTRACT_FILE
    path.write_text(json.dumps(document))
    return path


def train_model(
    target: Path,
    drop: tuple[str, ...] = (),
    dtypes: dict[str, str] | None = None,
    ensemble: bool = False,
    reverse_columns: bool = False,
    threshold: float | None = 0.5,
    forest: bool = False,
    fast_path: bool = False,
) -> Path:
    """A small real MLflow model from the shipped CSV: a standardized logistic regression, or with
    `ensemble` the shape local AutoML deploys (a soft vote of a random forest and LightGBM, each
    with n_jobs=2), or with `forest` the honest default's shape (a standardized 50-tree random forest, n_jobs=2).
    `dtypes` overrides column types (float64 otherwise), and so the signature's. With `fast_path`, packaged as
    local training packages it (jobs/local/fast_model.py: model.onnx and its record, when the check passes).
    Its contract (write_contract) answers at `threshold` (None: the model records no operating point)."""
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
    elif forest:
        from sklearn.ensemble import RandomForestClassifier

        learner = RandomForestClassifier(n_estimators=50, n_jobs=2, random_state=0)
    else:
        learner = LogisticRegression(max_iter=1000)
    model = make_pipeline(StandardScaler(), learner).fit(features, label)
    fast = None
    if fast_path:
        from jobs.local.fast_model import package

        fast = package(model, features)
    mlflow.sklearn.save_model(
        model,
        str(target),
        signature=infer_signature(features, label),
        pip_requirements=["scikit-learn"],
        skops_trusted_types=skops.io.get_untrusted_types(data=skops.io.dumps(model)),
        metadata=fast.record.metadata() if fast else None,
    )
    if fast:
        fast.write(target)
    ranges = {name: [float(features[name].min()), float(features[name].max())] for name in features.columns}
    write_contract(target, list(features.columns), ranges, threshold)
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


def only_result(answer: object) -> object:
    """An answer (or a (status, answer) pair) with its `result` alone: tests of the labels compare just those
    (the probability, threshold and flags every answer also carries are tested in tests/scoring/test_contract.py)."""
    if isinstance(answer, tuple):
        return tuple(only_result(part) for part in answer)
    if isinstance(answer, dict) and "result" in answer:
        return {"result": answer["result"]}
    return answer
