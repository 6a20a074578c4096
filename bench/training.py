"""Training's phases: the final selection against the search it follows, and its pick against the old way's.

    .venv/bin/python bench/training.py [--budget-seconds 60] [--runs 1]

Each run trains as `jobs train --target local` does, with the default (honest) settings, and prints:
- each phase's wall time from the run's own record (run.json's budget): FLAML's search, the final
  selection after it (and how much of it waited for the baselines, scored in their own process
  beside the search), the baselines' own time, the refit on every row, the MLflow model with its
  contract and card, and the report;
- the final selection's time over the search's, MET when it is at most 1 (issue 22: "the final
  selection no slower than the 60 s search on two cores");
- the old way, run here after the same search: every candidate fitted on its own on each fold, one
  after the other, after the search (this bench keeps that path: `score_candidate` per candidate,
  as `search` did before the baselines moved beside it); its time, and whether its fold scores and
  its pick equal the new way's, by the same rule (`choose`) with each way's own prediction timings
  and with the same ones; MET when the picks are equal;
- whether the model fitted on every row beside the search predicts what a refit in this process does.
The search is time-bounded, so the trials and the pick differ between runs; within one run both ways
judge the same candidates. Nothing here is asserted by the tests.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# The project instead of this folder: this folder's scoring.py would shadow the `scoring` package, which has
# no __init__.py (a namespace package loses to a plain module anywhere on sys.path); timing is bench.timing.
sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != HERE)]

import jobs.local.automl as automl  # noqa: E402
from bench.timing import at_least  # noqa: E402
from jobs.dataset import DEFAULT_CSV, load_schema  # noqa: E402
from jobs.local import selection  # noqa: E402
from jobs.local.features import features, read_data  # noqa: E402
from jobs.training import TrainingSettings  # noqa: E402

PHASES = [
    ("search_s", "FLAML search"),
    ("selection_s", "final selection after the search"),
    ("baselines_wait_s", "  of it, waiting for the baselines"),
    ("baselines_s", "baselines in their own process, beside the search"),
    ("refit_s", "refit on every row"),
    ("packaging_s", "MLflow model, contract and card"),
    ("report_s", "report"),
]


def train_capturing(settings: TrainingSettings, runs: Path, budget_s: float) -> tuple[Any, dict[str, Any]]:
    """Train as the command does; the SearchResult that train computed (captured from its call) and run.json."""
    captured: list[Any] = []
    original = automl.search

    def capture(*args: Any, **kwargs: Any) -> Any:
        captured.append(original(*args, **kwargs))
        return captured[-1]

    automl.search = capture  # type: ignore[assignment]
    try:
        result = automl.train(settings, DEFAULT_CSV, runs, budget_s=budget_s, progress=lambda _: None)
    finally:
        automl.search = original  # type: ignore[assignment]
    return captured[0], json.loads((result.run_dir / "run.json").read_text())


def old_way(found: Any, X: Any, y: Any, settings: TrainingSettings) -> tuple[list[Any], float]:
    """Every candidate scored on its own after the search, as before: its candidates and seconds."""
    folds = settings.n_cross_validations
    splits = selection.selection_folds(y, folds, settings.seed)
    started = time.perf_counter()
    scored = [
        selection.score_candidate(c.name, c.kind, c.pipeline, X, y, splits, settings.primary_metric, folds)
        for c in found.candidates
    ]
    return scored, time.perf_counter() - started


def one_run(budget_s: float) -> list[bool]:
    import numpy as np
    from sklearn.base import clone

    settings = TrainingSettings().for_schema(load_schema(DEFAULT_CSV))
    X, y = features(read_data(DEFAULT_CSV), settings)
    with tempfile.TemporaryDirectory() as folder:
        found, info = train_capturing(settings, Path(folder), budget_s)
    budget = info["budget"]
    print(f"  {budget['trials']} trials; candidates: {', '.join(c.name for c in found.candidates)}")
    for key, label in PHASES:
        print(f"  {label:<52} {budget[key]:7.1f} s")
    ratio = budget["selection_s"] / budget["search_s"]
    fast = ratio <= 1
    print(f"  final selection / search: {ratio:.2f}  {'MET' if fast else 'MISSED'} (target: at most 1)")

    old, old_s = old_way(found, X, y, settings)
    times = old_s / budget["search_s"]
    print(f"  old way (each candidate alone, after the search): {old_s:.1f} s, {times:.2f}x the search")
    same_scores = all(
        np.array_equal(new.fold_scores, was.fold_scores) for new, was in zip(found.candidates, old, strict=True)
    )
    old_pick = selection.choose(old)[0].name
    timed_alike = [replace(was, predict_ms=new.predict_ms) for new, was in zip(found.candidates, old, strict=True)]
    alike_pick = selection.choose(timed_alike)[0].name
    same_pick = old_pick == alike_pick == found.chosen.name
    print(
        f"  fold scores equal: {'yes' if same_scores else 'NO'}; pick: new {found.chosen.name}, old {old_pick} "
        f"(with the new way's timings: {alike_pick})  {'MET' if same_pick else 'MISSED'}"
    )
    verdicts = [fast, same_pick and same_scores]
    if found.fitted is not None:
        refit = clone(found.pipeline).fit(X, y)
        equal = np.array_equal(found.fitted.predict_proba(X), refit.predict_proba(X))
        said = "yes" if equal else "NO"
        print(f"  the baseline fitted on every row beside the search predicts as a refit here: {said}")
        verdicts.append(equal)
    return verdicts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget-seconds", type=at_least(1, float), default=60.0, help="FLAML's time budget")
    parser.add_argument("--runs", type=at_least(1), default=1, help="training runs, one after the other")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    verdicts: list[bool] = []
    for run in range(1, int(args.runs) + 1):
        print(f"run {run} of {args.runs} (budget {args.budget_seconds:g} s, default settings)")
        verdicts += one_run(args.budget_seconds)
    print(f"training phases: {'MET' if all(verdicts) else 'MISSED'} ({sum(verdicts)} of {len(verdicts)} checks)")
    return 0 if all(verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
