"""What an Azure AutoML job says about itself, for the quality gate and the tags (jobs/lineage.py).

Its child runs give the trials' count and each algorithm's best score; the gate's baseline is the best
LogisticRegression trial of the same job, scored on the same folds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from jobs.lineage import TrainingRun, Yardstick, finite_number

# The simple learner Azure's gate compares with. AutoML scores every child on the same
# cross-validation folds of one job; a LogisticRegression child is the plainest of them.
AZURE_BASELINE_ALGORITHM = "LogisticRegression"


def azure_children(children: Iterable[Any]) -> tuple[int, dict[str, float]]:
    """From an AutoML job's child jobs: how many trials ran, and the best score per algorithm.

    `children` come from `ml.jobs.list(parent_job_name=...)` (as azureml-examples'
    automl-forecasting-distributed-tcn notebook lists an AutoML job's children). azure-ai-ml reads
    them from run history, each with its run's properties (1.35.2: _run_operations.get_run_children,
    _BaseJob._load_from_rest), and yields None for one it cannot parse. A trial names its algorithm
    and primary-metric score in the properties `run_algorithm` and `score` (as the AutoML sample
    helpers' get_result_df reads a child run); children without both (setup, featurization) are
    not trials.
    """
    trials = 0
    best: dict[str, float] = {}
    for child in children:
        properties = getattr(child, "properties", None) or {}
        algorithm, score = properties.get("run_algorithm"), finite_number(properties.get("score"))
        if not algorithm or score is None:
            continue
        trials += 1
        best[algorithm] = max(score, best.get(algorithm, -math.inf))
    return trials, best


def azure_budget(trials: int, run_tags: Mapping[str, str]) -> dict[str, str]:
    """budget.* tags for an AutoML job: the trials it ran, and what bounded it.

    Azure AutoML stops at its timeout or, when set, at max_trials, whichever comes first
    (learn.microsoft.com, how-to-configure-auto-train, "Job limits"); how long it ran is not
    read here, so budget.search_seconds stays unknown; AutoML has no separate selection step
    after its search, so budget.selection_seconds is "none".
    """
    mode = "time or trials" if "setting.max_trials" in run_tags else "time"
    return {"budget.mode": mode, "budget.trials": str(trials), "budget.selection_seconds": "none"}


def azure_baseline(best_by_algorithm: Mapping[str, float], run: TrainingRun) -> Yardstick | None:
    """The best LogisticRegression trial of the same AutoML job (same folds) as the baseline; None when
    AutoML ran none (blocked, or not reached within the time budget).

    A trial's `score` is the job's primary metric, so the best child is compared on that metric too
    (its `setting.primary_metric` tag; AUC_weighted by default).
    """
    metric = run.tags.get("setting.primary_metric", "AUC_weighted")
    if AZURE_BASELINE_ALGORITHM not in best_by_algorithm or metric not in run.metrics:
        return None
    on = "" if metric == "AUC_weighted" else f", on {metric}"
    return Yardstick(
        f"baseline {AZURE_BASELINE_ALGORITHM} (best such trial of the job{on})",
        best_by_algorithm[AZURE_BASELINE_ALGORITHM],
        float(run.metrics[metric]),
    )
