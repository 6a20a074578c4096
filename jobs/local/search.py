"""FLAML's search on the lesson's settings: its learners, budget, run, leaderboard and searched candidates.

Mapping of the lesson's settings:
- primary metric AUC_weighted -> FLAML `roc_auc_weighted` (accuracy and average precision map too);
- timeout -> FLAML `time_budget`, capped by --local-budget-seconds (60 s by default, for the demo);
- concurrent trials -> without Ray, FLAML runs one trial at a time, with one thread: on 299 rows
  more threads only cost (see run_flaml()); the 500-tree forest baseline gets up to that many cores;
- early termination -> `early_stop`; cross-validation folds -> `eval_method="cv"`, `n_splits`;
- blocked models -> removed from the learner list; max trials -> `max_iter`;
  trial timeout -> `train_time_limit`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from jobs.errors import JobsError
from jobs.local.features import featurized
from jobs.training import TrainingSettings

FLAML_METRICS = {"AUC_weighted": "roc_auc_weighted", "accuracy": "accuracy", "average_precision_score_weighted": "ap"}

# Azure AutoML model names -> FLAML learners; the scoring environment has what these need.
LEARNERS = {
    "LightGBM": "lgbm",
    "RandomForest": "rf",
    "ExtremeRandomTrees": "extra_tree",
    "LogisticRegression": "lrl1",
    "KNN": "kneighbor",
}

# Learners whose cross-validated loss is within this of the best one join the voting ensemble.
ENSEMBLE_MARGIN = 0.03

# LightGBM's library defaults, tried beside FLAML's own low-cost start (4 trees of 4 leaves), which a short
# budget on a busy machine may never grow out of; the keys are FLAML's search space for lgbm.
_FLAML_LGBM_START = {
    "n_estimators": 4,
    "num_leaves": 4,
    "min_child_samples": 20,
    "learning_rate": 0.1,
    "log_max_bin": 8,
    "colsample_bytree": 1.0,
    "reg_alpha": 1 / 1024,
    "reg_lambda": 1.0,
}

# LightGBM's own defaults differ from FLAML's start only in the size of the ensemble.
LGBM_STARTING_POINTS = [_FLAML_LGBM_START, {**_FLAML_LGBM_START, "n_estimators": 100, "num_leaves": 31}]


def learners_for(settings: TrainingSettings) -> list[str]:
    if settings.primary_metric not in FLAML_METRICS:
        raise JobsError(
            f"--metric {settings.primary_metric} has no local equivalent; locally use one of "
            + ", ".join(FLAML_METRICS)
        )
    learners = [flaml for azure, flaml in LEARNERS.items() if azure not in settings.blocked_models]
    if not learners:
        raise JobsError("every local learner is blocked; local mode has " + ", ".join(LEARNERS))
    return learners


def time_budget(settings: TrainingSettings, cap_s: float) -> float:
    return min(settings.timeout_minutes * 60, cap_s)


def search_budget(settings: TrainingSettings, cap_s: float) -> tuple[str, float]:
    """('trials', -1) when --max-trials is set (reproducible: no time limit), else ('time', seconds)."""
    if settings.max_trials is not None:
        return "trials", -1.0
    return "time", time_budget(settings, cap_s)


def run_flaml(settings: TrainingSettings, X: pd.DataFrame, y: pd.Series, budget_s: float, log_file: Path) -> Any:
    """FLAML's search on the featurized rows; the fitted AutoML object. JobsError when it found no model.

    With settings.max_trials the search stops after that many trials and has no time limit; learners
    then take turns (FLAML's round robin) instead of being drawn by their measured speed, so the same
    inputs give the same model. Otherwise it stops after budget_s seconds (capped by the timeout).
    """
    from flaml.automl import AutoML  # the same class; flaml/__init__ does not re-export it explicitly

    learners = learners_for(settings)
    mode, flaml_budget = search_budget(settings, budget_s)
    # FLAML searches on featurized data so that what it picks is what gets deployed.
    featurizer = featurized(settings, None).steps[0][1]
    X_fit = X if featurizer == "passthrough" else pd.DataFrame(featurizer.fit_transform(X), columns=X.columns)
    automl = AutoML()
    automl.fit(
        X_fit,
        y,
        task="classification",
        metric=FLAML_METRICS[settings.primary_metric],
        time_budget=flaml_budget,
        eval_method="cv",
        n_splits=settings.n_cross_validations,
        early_stop=settings.enable_early_termination,
        # One thread per trial: on 299 rows threads only add overhead, and LightGBM's OpenMP threads spin
        # when the cores are busy (measured here, 100 trees: 0.05 s with 1 thread, 3 to 4 s with 2 under load).
        estimator_list=learners,
        seed=settings.seed,
        n_jobs=1,
        max_iter=settings.max_trials,
        train_time_limit=(settings.trial_timeout_minutes or 0) * 60 or None,
        # Well-known defaults first (issue 12): LightGBM's own defaults beside FLAML's cheap start.
        starting_points={"lgbm": LGBM_STARTING_POINTS} if "lgbm" in learners else "static",
        learner_selector="roundrobin" if mode == "trials" else "sample",
        log_file_name=str(log_file),
        log_type="all",
        verbose=0,
    )
    if automl.model is None:
        if mode == "trials":
            raise JobsError(f"FLAML found no model in {settings.max_trials} trials; allow more with --max-trials")
        raise JobsError(
            f"FLAML found no model within {flaml_budget:.0f} s; give it more time with --local-budget-seconds"
        )
    return automl


def trial_count(log_file: Path) -> int:
    """Trials FLAML logged (one JSON line with a "learner" each); 0 when it wrote no log."""
    return sum(1 for line in log_file.read_text().splitlines() if '"learner"' in line) if log_file.exists() else 0


def searched_pipelines(settings: TrainingSettings, automl: Any) -> list[tuple[str, str, Any]]:
    """(name, kind, unfitted pipeline) of FLAML's best learner and, when two or more learners are close,
    their soft-voting ensemble."""
    pipelines = [(automl.best_estimator, "search", featurized(settings, _unfitted(automl.model)))]
    ensemble, members = _vote_ensemble(settings, automl)
    if ensemble is not None:
        # Azure AutoML ends with a soft-voting ensemble of its best models (enable_voting_ensemble defaults to True:
        # learn.microsoft.com/python/api/azureml-train-automl-client/azureml.train.automl.automlconfig.automlconfig).
        pipelines.append((f"VotingEnsemble({', '.join(members)})", "ensemble", ensemble))
    return pipelines


def _unfitted(flaml_estimator: Any) -> Any:
    """The learner with FLAML's best configuration, as a plain unfitted scikit-learn estimator."""
    params = {k: v.item() if hasattr(v, "item") else v for k, v in flaml_estimator.params.items()}
    return flaml_estimator.estimator_class(**params)


def _vote_ensemble(settings: TrainingSettings, automl: Any) -> tuple[Any, list[str]]:
    """Soft vote of each learner's best configuration, among learners within ENSEMBLE_MARGIN of the best."""
    from sklearn.ensemble import VotingClassifier

    losses = {
        name: loss
        for name, loss in automl.best_loss_per_estimator.items()
        if loss is not None and loss < float("inf") and automl.best_model_for_estimator(name) is not None
    }
    if not losses:
        return None, []
    best = min(losses.values())
    chosen = sorted((name for name, loss in losses.items() if loss <= best + ENSEMBLE_MARGIN), key=losses.__getitem__)
    if len(chosen) < 2:
        return None, []
    members = [(name, _unfitted(automl.best_model_for_estimator(name))) for name in chosen]
    return featurized(settings, VotingClassifier(members, voting="soft")), chosen


def leaderboard(log_file: Path, metric: str) -> list[dict[str, Any]]:
    best: dict[str, dict[str, Any]] = {}
    for line in log_file.read_text().splitlines():
        record = json.loads(line)
        learner, loss = record.get("learner"), record.get("validation_loss")
        if learner is None or loss is None:
            continue
        entry = best.setdefault(learner, {"learner": learner, "trials": 0, "best_loss": float("inf")})
        entry["trials"] += 1
        if loss < entry["best_loss"]:
            entry.update(best_loss=loss, config=record.get("config"))
    rows = [
        {
            "learner": e["learner"],
            "trials": e["trials"],
            f"cv_{metric}": round(1 - e["best_loss"], 4),
            "best_config": round_config(e.get("config")),
        }
        for e in best.values()
    ]
    return sorted(rows, key=lambda r: -r[f"cv_{metric}"])


def round_config(config: Any, digits: int = 3) -> Any:
    """A configuration for reading: floats to `digits` significant digits (0.00209903 -> 0.0021)."""
    if isinstance(config, dict):
        return {key: round_config(value, digits) for key, value in config.items()}
    if isinstance(config, float) and config != 0 and np.isfinite(config):
        return float(f"{config:.{digits}g}")
    return config
