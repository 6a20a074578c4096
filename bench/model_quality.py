"""Model quality: what local AutoML picks, against two baselines, in one run.

    .venv/bin/python bench/model_quality.py [--budget-seconds 60] [--runs 1]

For each feature set (with `time`, and without it, since the follow-up length leaks the
outcome) it prints ROC AUC over repeated stratified 5x5 cross-validation (mean and standard
deviation over the 5 repeats; random_state 0, independent of the selection's folds, which use
the project's seed 42) and the seconds each took, for:
- logistic regression on standardized features,
- a random forest of 500 trees,
- the pipeline local AutoML picks with the project's settings (the search and the final
  selection are timed apart), with its single-row predict time (one thread, median).
The baselines are the same objects the AutoML's final selection scores (jobs.local.selection.baselines).
Target (issue 12, item 6): the pick is at least the best baseline, with and without `time`,
in every run (MET/MISSED per run). The AutoML pick was chosen on all rows, so its score carries
a little selection optimism.
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

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# The project instead of this folder: this folder's scoring.py would shadow the `scoring` package, which has
# no __init__.py (a namespace package loses to a plain module anywhere on sys.path); timing is bench.timing.
sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != HERE)]

from jobs.dataset import DEFAULT_CSV  # noqa: E402
from jobs.local.automl import search  # noqa: E402
from jobs.local.features import features  # noqa: E402
from jobs.local.selection import baselines  # noqa: E402
from jobs.training import TrainingSettings  # noqa: E402


def repeated_cv_auc(model: Any, X: pd.DataFrame, y: pd.Series, repeats: int = 5, folds: int = 5) -> tuple[float, float]:
    from sklearn.model_selection import RepeatedStratifiedKFold, cross_val_score

    cv = RepeatedStratifiedKFold(n_splits=folds, n_repeats=repeats, random_state=0)
    scores = cross_val_score(model, X, y, cv=cv, scoring="roc_auc", n_jobs=1)
    per_repeat = scores.reshape(repeats, folds).mean(axis=1)
    return float(per_repeat.mean()), float(per_repeat.std())


def one_run(frame: pd.DataFrame, budget_s: float) -> list[dict[str, Any]]:
    rows = []
    for label, drop in (("with time", ()), ("without time", ("time",))):
        settings = TrainingSettings(drop_columns=drop)
        X, y = features(frame, settings)
        for name, model in baselines(settings).items():
            started = time.perf_counter()
            mean, std = repeated_cv_auc(model, X, y)
            rows.append(
                {
                    "features": label,
                    "model": name.removeprefix("baseline "),
                    "auc": mean,
                    "sd": std,
                    "cv_s": time.perf_counter() - started,
                    "pick": False,
                }
            )
        with tempfile.TemporaryDirectory() as folder:
            found = search(settings, X, y, budget_s, Path(folder) / "flaml.log")
        started = time.perf_counter()
        mean, std = repeated_cv_auc(found.pipeline, X, y)
        rows.append(
            {
                "features": label,
                "model": f"AutoML pick: {found.learner}",
                "auc": mean,
                "sd": std,
                "cv_s": time.perf_counter() - started,
                "pick": True,
                "budget": found.budget,
                "predict_ms": found.chosen.predict_ms,
                "rule": found.rule,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget-seconds", type=float, default=60.0, help="FLAML's time budget per feature set")
    parser.add_argument("--runs", type=int, default=1, help="independent runs (the target holds in every one)")
    args = parser.parse_args()
    if args.budget_seconds <= 0 or args.runs < 1:
        parser.error("--budget-seconds must be above 0 and --runs at least 1")
    warnings.filterwarnings("ignore")
    frame = pd.read_csv(DEFAULT_CSV)
    verdicts = []
    for run in range(1, args.runs + 1):
        rows = one_run(frame, args.budget_seconds)
        print(f"run {run} of {args.runs}")
        print(
            f"{'features':<13} {'model':<52} {'ROC AUC 5x5':>16} {'CV s':>6} {'predict ms':>11} "
            f"{'trials':>7} {'search s':>9} {'select s':>9}"
        )
        for r in rows:
            extra = (
                (
                    f"{r['predict_ms']:>11.1f} {r['budget']['trials']:>7} {r['budget']['search_s']:>9.1f} "
                    f"{r['budget']['selection_s']:>9.1f}"
                )
                if r["pick"]
                else ""
            )
            print(f"{r['features']:<13} {r['model']:<52} {r['auc']:>8.3f} ± {r['sd']:.3f} {r['cv_s']:>6.1f} {extra}")
        for label in ("with time", "without time"):
            subset = [r for r in rows if r["features"] == label]
            best = max((r for r in subset if not r["pick"]), key=lambda r: r["auc"])
            pick = next(r for r in subset if r["pick"])
            met = pick["auc"] >= best["auc"] - 1e-9
            verdicts.append(met)
            print(
                f"{label}: pick {pick['auc']:.3f} ({pick['predict_ms']:.1f} ms a row) vs best baseline "
                f"{best['auc']:.3f} ({best['model']}), ratio {pick['auc'] / best['auc']:.3f}: "
                f"{'MET' if met else 'MISSED'}"
            )
            print(f"  rule: {pick['rule']}")
        print()
    print(
        f"target 'the pick is at least the best baseline, with and without time, in every run': "
        f"{'MET' if all(verdicts) else 'MISSED'} ({sum(verdicts)} of {len(verdicts)})"
    )


if __name__ == "__main__":
    main()
