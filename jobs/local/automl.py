"""Local AutoML with FLAML, on the lesson's settings, saved as an MLflow model.

Mapping of the lesson's settings:
- primary metric AUC_weighted -> FLAML `roc_auc_weighted` (accuracy and average precision map too);
- timeout -> FLAML `time_budget`, capped by --local-budget-seconds (60 s by default, for the demo);
- concurrent trials -> `n_jobs` per trial: without Ray, FLAML runs one trial at a time, so the
  cores go to each trial instead;
- early termination -> `early_stop`; cross-validation folds -> `eval_method="cv"`, `n_splits`;
- featurization auto -> a StandardScaler in front of every learner (FLAML itself does not
  scale, which leaves its linear learners far behind); off -> the raw columns;
- blocked models -> removed from the learner list; max trials -> `max_iter`;
  trial timeout -> `train_time_limit`.
The best pipeline is refitted on all rows and saved as an MLflow sklearn model with the
features' signature, the format Azure AutoML produces, so scoring/score.py loads either.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from jobs.dataset import content_version, require
from jobs.errors import JobsError
from jobs.local.report import write_report
from jobs.training import DEFAULT_LOCAL_BUDGET_S, TrainingSettings
from jobs.user_files import read_text

FLAML_METRICS = {"AUC_weighted": "roc_auc_weighted", "accuracy": "accuracy",
                 "average_precision_score_weighted": "ap"}
# Azure AutoML model names -> FLAML learners; the scoring environment has what these need.
LEARNERS = {"LightGBM": "lgbm", "RandomForest": "rf", "ExtremeRandomTrees": "extra_tree",
            "LogisticRegression": "lrl1", "KNN": "kneighbor"}
# Learners whose cross-validated loss is within this of the best one join the voting ensemble.
ENSEMBLE_MARGIN = 0.03


@dataclass(frozen=True)
class TrainResult:
    run_id: str
    run_dir: Path
    model_dir: Path
    metrics: dict[str, float]
    best_learner: str
    data_version: str
    leaderboard: list[dict[str, Any]]
    report: Path


def read_data(path: Path) -> pd.DataFrame:
    # The same tolerant reading as every user file (BOM, CRLF), so both targets see the same columns.
    text = read_text(require(path), f"data file {path}")
    try:
        return pd.read_csv(io.StringIO(text))
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise JobsError(f"data file {path} is not a readable CSV: {error}") from None


def features(frame: pd.DataFrame, settings: TrainingSettings) -> tuple[pd.DataFrame, pd.Series]:
    """Features and label; every value must be a number and none may be missing."""
    columns = [c for c in frame.columns if c not in (settings.target, *settings.drop_columns)]
    numeric = frame[[*columns, settings.target]].apply(pd.to_numeric, errors="coerce")
    bad = [c for c in numeric.columns if numeric[c].isna().any()]
    if bad:
        rows = sorted(set().union(*(numeric.index[numeric[c].isna()][:3] for c in bad)))[:5]
        raise JobsError(f"the data has missing or non-numeric values in {', '.join(bad)} (e.g. data rows "
                        f"{', '.join(str(r + 2) for r in rows)}, counting the header as row 1); fix or drop them")
    # float64 throughout: the signature then says double for every column, and a request's
    # 38 and 38.0 are the same input.
    X = numeric[columns].astype("float64")
    y = numeric[settings.target]
    if set(y.unique()) - {0, 1}:
        others = ", ".join(f"{v:g}" for v in sorted(set(y.unique()) - {0, 1})[:5])
        raise JobsError(f"the label {settings.target} must be 0 or 1; found {others}")
    return X, y.astype("int64")


def _pipeline(settings: TrainingSettings, estimator: Any) -> Any:
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    featurize = StandardScaler() if settings.featurization == "auto" else "passthrough"
    return Pipeline([("featurize", featurize), ("model", estimator)])


def evaluate(pipeline: Any, X: pd.DataFrame, y: pd.Series, folds: int, seed: int) -> tuple[dict[str, float], Any]:
    """Out-of-fold metrics of a pipeline (Azure AutoML's names); also the out-of-fold probabilities."""
    from sklearn.metrics import (
        accuracy_score,
        average_precision_score,
        f1_score,
        precision_score,
        recall_score,
        roc_auc_score,
    )
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    proba = cross_val_predict(pipeline, X, y, cv=cv, method="predict_proba")[:, 1]
    predicted = (proba >= 0.5).astype(int)
    metrics = {
        "AUC_weighted": roc_auc_score(y, proba, average="weighted"),
        "accuracy": accuracy_score(y, predicted),
        "precision_score_binary": precision_score(y, predicted, zero_division=0),
        "recall_score_binary": recall_score(y, predicted),
        "f1_score_binary": f1_score(y, predicted),
        "average_precision_score_weighted": average_precision_score(y, proba, average="weighted"),
    }
    return {k: float(v) for k, v in metrics.items()}, proba


def _leaderboard(log_file: Path, metric: str) -> list[dict[str, Any]]:
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
    rows = [{"learner": e["learner"], "trials": e["trials"], f"cv_{metric}": round(1 - e["best_loss"], 4),
             "best_config": e.get("config")} for e in best.values()]
    return sorted(rows, key=lambda r: -r[f"cv_{metric}"])


def pip_requirements() -> list[str]:
    """The model's runtime dependencies: the scoring environment's pinned list, minus the server."""
    from jobs.scoring_env import pip_requirements as scoring_pip

    server_only = ("azureml-inference-server-http", "inference-schema")
    return [req for req in scoring_pip() if not req.startswith(server_only)]


def save_mlflow_model(pipeline: Any, X: pd.DataFrame, y: pd.Series, target: Path) -> None:
    """Write the MLflow model to `target` atomically: a failure leaves no folder behind."""
    import mlflow.sklearn
    import skops.io
    from mlflow.models import infer_signature

    staging = target.with_name(target.name + f".partial-{uuid.uuid4().hex[:6]}")
    try:
        mlflow.sklearn.save_model(
            pipeline, str(staging),
            signature=infer_signature(X, y),
            input_example=X.head(1),
            pip_requirements=pip_requirements(),
            # We trained this object a moment ago; its own types are the ones to trust on load.
            skops_trusted_types=skops.io.get_untrusted_types(data=skops.io.dumps(pipeline)),
        )
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def learners_for(settings: TrainingSettings) -> list[str]:
    if settings.primary_metric not in FLAML_METRICS:
        raise JobsError(f"--metric {settings.primary_metric} has no local equivalent; locally use one of "
                        + ", ".join(FLAML_METRICS))
    learners = [flaml for azure, flaml in LEARNERS.items() if azure not in settings.blocked_models]
    if not learners:
        raise JobsError("every local learner is blocked; local mode has " + ", ".join(LEARNERS))
    return learners


@dataclass(frozen=True)
class SearchResult:
    pipeline: Any  # unfitted: featurizer + learner (or voting ensemble) with the best configuration
    learner: str
    metrics: dict[str, float]  # out-of-fold, on the project's folds
    proba: Any  # out-of-fold probabilities of DEATH_EVENT
    final_scores: dict[str, float]  # the primary metric of each final candidate, when there were two


def search(settings: TrainingSettings, X: pd.DataFrame, y: pd.Series, budget_s: float, log_file: Path) -> SearchResult:
    """Run FLAML, then choose between its best learner and a voting ensemble on the project's folds."""
    from flaml import AutoML

    learners = learners_for(settings)
    # FLAML searches on featurized data so that what it picks is what gets deployed.
    featurizer = _pipeline(settings, None).steps[0][1]
    X_fit = X if featurizer == "passthrough" else pd.DataFrame(featurizer.fit_transform(X), columns=X.columns)
    automl = AutoML()
    automl.fit(
        X_fit, y, task="classification", metric=FLAML_METRICS[settings.primary_metric], time_budget=budget_s,
        eval_method="cv", n_splits=settings.n_cross_validations, early_stop=settings.enable_early_termination,
        estimator_list=learners, seed=settings.seed, n_jobs=min(settings.max_concurrent_trials, os.cpu_count() or 1),
        max_iter=settings.max_trials, train_time_limit=(settings.trial_timeout_minutes or 0) * 60 or None,
        log_file_name=str(log_file), log_type="all", verbose=0,
    )
    if automl.model is None:
        raise JobsError(f"FLAML found no model within {budget_s:.0f} s; give it more time with --local-budget-seconds")
    candidates = {automl.best_estimator: _pipeline(settings, _unfitted(automl.model))}
    ensemble, members = _vote_ensemble(settings, automl)
    if ensemble is not None:
        # Azure AutoML ends with a soft-voting ensemble of its best models and keeps it when it
        # scores higher; the same step here, judged on the same folds as the reported metrics.
        candidates[f"VotingEnsemble({', '.join(members)})"] = ensemble
    evaluated = {name: evaluate(pipeline, X, y, settings.n_cross_validations, settings.seed)
                 for name, pipeline in candidates.items()}
    scores = {name: metrics[settings.primary_metric] for name, (metrics, _) in evaluated.items()}
    # On a tie the single learner stays: the simpler model.
    chosen = max(scores, key=lambda name: (scores[name], name == automl.best_estimator))
    metrics, proba = evaluated[chosen]
    return SearchResult(candidates[chosen], chosen, metrics, proba, scores if len(scores) > 1 else {})


def _unfitted(flaml_estimator: Any) -> Any:
    """The learner with FLAML's best configuration, as a plain unfitted scikit-learn estimator."""
    params = {k: v.item() if hasattr(v, "item") else v for k, v in flaml_estimator.params.items()}
    return flaml_estimator.estimator_class(**params)


def _vote_ensemble(settings: TrainingSettings, automl: Any) -> tuple[Any, list[str]]:
    """Soft vote of each learner's best configuration, among learners within ENSEMBLE_MARGIN of the best."""
    from sklearn.ensemble import VotingClassifier

    losses = {name: loss for name, loss in automl.best_loss_per_estimator.items()
              if loss is not None and loss < float("inf") and automl.best_model_for_estimator(name) is not None}
    if not losses:
        return None, []
    best = min(losses.values())
    chosen = sorted((name for name, loss in losses.items() if loss <= best + ENSEMBLE_MARGIN), key=losses.get)
    if len(chosen) < 2:
        return None, []
    members = [(name, _unfitted(automl.best_model_for_estimator(name))) for name in chosen]
    return _pipeline(settings, VotingClassifier(members, voting="soft")), chosen


def time_budget(settings: TrainingSettings, cap_s: float) -> float:
    return min(settings.timeout_minutes * 60, cap_s)


def train(settings: TrainingSettings, data: Path, runs_dir: Path, budget_s: float = DEFAULT_LOCAL_BUDGET_S,
          progress: Any = print) -> TrainResult:
    frame = read_data(data)
    # The header as jobs/dataset.py reads it for both targets: one column check, one set of names.
    settings.check_data(data)
    learners = learners_for(settings)
    X, y = features(frame, settings)
    run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]
    run_dir = runs_dir / run_id
    run_dir.mkdir(parents=True)
    budget = time_budget(settings, budget_s)
    progress(f"training locally with FLAML for up to {budget:.0f} s on {len(X)} rows, {X.shape[1]} features "
             f"(metric {settings.primary_metric}, {settings.n_cross_validations}-fold CV, learners "
             f"{', '.join(learners)})")
    try:
        found = search(settings, X, y, budget, run_dir / "flaml.log")
        best, learner, metrics = found.pipeline, found.learner, found.metrics
        best.fit(X, y)
        model_dir = run_dir / "model"
        save_mlflow_model(best, X, y, model_dir)
        leaderboard = _leaderboard(run_dir / "flaml.log", settings.primary_metric)
        leaderboard += [{"learner": name, "trials": "final selection",
                         f"cv_{settings.primary_metric}": round(score, 4),
                         "best_config": "re-scored on the project's own folds (FLAML's search scores above run higher)"}
                        for name, score in sorted(found.final_scores.items(), key=lambda item: -item[1])]
        data_version = content_version(data, settings.drop_columns)
        report = write_report(run_dir, best, X, y, found.proba, metrics, leaderboard, learner, settings.seed)
        # run.json last: its presence is what marks a run as finished for `register`.
        (run_dir / "run.json").write_text(json.dumps({
            "run_id": run_id, "best_learner": learner, "metrics": metrics, "data": str(data),
            "data_version": data_version, "settings": settings.as_tags(), "leaderboard": leaderboard,
        }, indent=2, default=str))
    except BaseException:
        # A failed or interrupted run leaves nothing that `register` could mistake for a result.
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
    return TrainResult(run_id, run_dir, model_dir, metrics, learner, data_version, leaderboard, report)
