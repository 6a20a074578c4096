"""Model quality: what local AutoML picks, against two baselines, in one run.

    .venv/bin/python bench/model_quality.py [--budget-seconds 60]

For each feature set (with `time`, and without it, since the follow-up length leaks the
outcome) it prints ROC AUC over repeated stratified 5x5 cross-validation (mean and standard
deviation over the 5 repeats) and the seconds each took, for:
- logistic regression on standardized features,
- a random forest of 500 trees,
- the pipeline FLAML picks with the project's settings (the search's time is reported apart).
The AutoML pick was chosen on all rows, so its score carries a little selection optimism.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from jobs.dataset import DEFAULT_CSV  # noqa: E402
from jobs.local.automl import features, search  # noqa: E402
from jobs.training import TrainingSettings  # noqa: E402


def repeated_cv_auc(model: Any, X: pd.DataFrame, y: pd.Series, repeats: int = 5, folds: int = 5) -> tuple[float, float]:
    from sklearn.model_selection import RepeatedStratifiedKFold, cross_val_score

    cv = RepeatedStratifiedKFold(n_splits=folds, n_repeats=repeats, random_state=0)
    scores = cross_val_score(model, X, y, cv=cv, scoring="roc_auc", n_jobs=1)
    per_repeat = scores.reshape(repeats, folds).mean(axis=1)
    return float(per_repeat.mean()), float(per_repeat.std())


def main() -> None:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget-seconds", type=float, default=60.0, help="FLAML's time budget per feature set")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    frame = pd.read_csv(DEFAULT_CSV)
    rows = []
    for label, drop in (("with time", ()), ("without time", ("time",))):
        settings = TrainingSettings(drop_columns=drop)
        X, y = features(frame, settings)
        baselines = {
            "logistic regression (standardized)": make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
            "random forest, 500 trees": RandomForestClassifier(n_estimators=500, random_state=0, n_jobs=-1),
        }
        for name, model in baselines.items():
            started = time.perf_counter()
            mean, std = repeated_cv_auc(model, X, y)
            rows.append((label, name, mean, std, time.perf_counter() - started, None))
        with tempfile.TemporaryDirectory() as folder:
            started = time.perf_counter()
            found = search(settings, X, y, args.budget_seconds, Path(folder) / "flaml.log")
            search_s = time.perf_counter() - started
        started = time.perf_counter()
        mean, std = repeated_cv_auc(found.pipeline, X, y)
        rows.append((label, f"AutoML pick ({found.learner})", mean, std, time.perf_counter() - started, search_s))

    print(f"{'features':<13} {'model':<52} {'ROC AUC':>16} {'CV s':>7} {'search s':>9}")
    for label, name, mean, std, seconds, search_s in rows:
        search_text = f"{search_s:.1f}" if search_s is not None else ""
        print(f"{label:<13} {name:<52} {mean:>8.3f} ± {std:.3f} {seconds:>7.1f} {search_text:>9}")
    print()
    for label in ("with time", "without time"):
        subset = [r for r in rows if r[0] == label]
        best_baseline = max(r[2] for r in subset if not r[1].startswith("AutoML"))
        pick = next(r for r in subset if r[1].startswith("AutoML"))
        verdict = "matches or beats" if pick[2] >= best_baseline - 1e-9 else "is below"
        print(f"{label}: the AutoML pick {verdict} the best baseline "
              f"({pick[2]:.3f} vs {best_baseline:.3f}, ratio {pick[2] / best_baseline:.3f})")


if __name__ == "__main__":
    main()
