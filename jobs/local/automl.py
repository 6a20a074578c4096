"""Local AutoML with FLAML, on the lesson's settings, saved as an MLflow model.

Mapping of the lesson's settings:
- primary metric AUC_weighted -> FLAML `roc_auc_weighted` (accuracy and average precision map too);
- timeout -> FLAML `time_budget`, capped by --local-budget-seconds (60 s by default, for the demo);
- concurrent trials -> without Ray, FLAML runs one trial at a time, with one thread: on 299 rows
  more threads only cost (see search()); the 500-tree forest baseline gets up to that many cores;
- early termination -> `early_stop`; cross-validation folds -> `eval_method="cv"`, `n_splits`;
- featurization auto -> a StandardScaler in front of every learner (FLAML itself does not
  scale, which leaves its linear learners far behind); off -> the raw columns;
- blocked models -> removed from the learner list; max trials -> `max_iter`;
  trial timeout -> `train_time_limit`.
The best pipeline is refitted on all rows and saved as an MLflow sklearn model with the
features' signature, the format Azure AutoML produces, so scoring/score.py loads either.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from jobs.contract import accuracy_table, contract_document, default_point, training_ranges, write_contract
from jobs.dataset import Table, content_version, load, load_schema
from jobs.errors import JobsError
from jobs.lineage import git_commit
from jobs.local.background import Background
from jobs.local.model_card import build_card
from jobs.local.report import write_report
from jobs.training import DEFAULT_LOCAL_BUDGET_S, TrainingSettings

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
# The final selection scores every candidate on this many repeats of the k folds: one repeat of 5 folds
# put the 500-tree forest 0.008 below its 5x5 figure here, more than the gaps the selection must judge.
SELECTION_REPEATS = 3
# Of two tied candidates, the faster counts only when it is at least this much faster (timing noise).
SPEED_FACTOR = 1.5
PREDICT_TIMING_CALLS = 25
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
    """The CSV as jobs/dataset.py reads it for both targets (BOM, CRLF fine), as a frame of strings;
    features() turns the columns it uses into numbers."""
    return table_frame(load(path))


def table_frame(table: Table) -> pd.DataFrame:
    """A table jobs/dataset.py read, as a frame of strings (one row per data line)."""
    return pd.DataFrame([cells for _, cells in table.rows], columns=table.header, dtype=str)


def features(frame: pd.DataFrame, settings: TrainingSettings) -> tuple[pd.DataFrame, pd.Series]:
    """Features and label; every value must be a number and none may be missing."""
    columns = [c for c in frame.columns if c not in (settings.target, *settings.drop_columns)]
    numeric = frame[[*columns, settings.target]].apply(pd.to_numeric, errors="coerce")
    bad = [c for c in numeric.columns if numeric[c].isna().any()]
    if bad:
        rows = sorted(set().union(*(numeric.index[numeric[c].isna()][:3] for c in bad)))[:5]
        raise JobsError(
            f"the data has missing or non-numeric values in {', '.join(bad)} (e.g. data rows "
            f"{', '.join(str(r + 2) for r in rows)}, counting the header as row 1); fix or drop them"
        )
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


def metrics_of(y: pd.Series, proba: Any) -> dict[str, float]:
    """Azure AutoML's metric names for probabilities of DEATH_EVENT (threshold 0.5 for the labels)."""
    from sklearn.metrics import (
        accuracy_score,
        average_precision_score,
        f1_score,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    predicted = (proba >= 0.5).astype(int)
    metrics = {
        "AUC_weighted": roc_auc_score(y, proba, average="weighted"),
        "accuracy": accuracy_score(y, predicted),
        "precision_score_binary": precision_score(y, predicted, zero_division=0),
        "recall_score_binary": recall_score(y, predicted),
        "f1_score_binary": f1_score(y, predicted),
        "average_precision_score_weighted": average_precision_score(y, proba, average="weighted"),
    }
    return {k: float(v) for k, v in metrics.items()}


def evaluate(pipeline: Any, X: pd.DataFrame, y: pd.Series, folds: int, seed: int) -> tuple[dict[str, float], Any]:
    """Out-of-fold metrics of a pipeline (Azure AutoML's names); also the out-of-fold probabilities."""
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    proba = cross_val_predict(pipeline, X, y, cv=cv, method="predict_proba")[:, 1]
    return metrics_of(y, proba), proba


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


def pip_requirements() -> list[str]:
    """The model's runtime dependencies: the scoring environment's pinned list, minus the server."""
    from jobs.local.scoring_env import pip_requirements as scoring_pip

    server_only = ("azureml-inference-server-http", "inference-schema")
    return [req for req in scoring_pip() if not req.startswith(server_only)]


def save_mlflow_model(
    pipeline: Any, X: pd.DataFrame, y: pd.Series, target: Path, extra: Callable[[Path], None] = lambda _: None
) -> None:
    """Write the MLflow model to `target` atomically: a failure leaves no folder behind. `extra` writes what
    travels with the model (its contract, its card) into the folder before it appears."""
    import mlflow.sklearn
    import skops.io
    from mlflow.models import infer_signature

    staging = target.with_name(target.name + f".partial-{uuid.uuid4().hex[:6]}")
    try:
        mlflow.sklearn.save_model(
            pipeline,
            str(staging),
            signature=infer_signature(X, y),
            input_example=X.head(1),
            pip_requirements=pip_requirements(),
            # We trained this object a moment ago; its own types are the ones to trust on load.
            skops_trusted_types=skops.io.get_untrusted_types(data=skops.io.dumps(pipeline)),
        )
        extra(staging)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


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


def baselines(settings: TrainingSettings) -> dict[str, Any]:
    """The two well-known defaults every search must beat, as unfitted pipelines (name -> pipeline).

    Logistic regression and a 500-tree random forest, as in bench/model_quality.py, which takes them
    from here. A blocked model family (--block-model) is left out, as it is from the search.
    """
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    n_jobs = min(settings.max_concurrent_trials, os.cpu_count() or 1)
    models = {
        "LogisticRegression": ("baseline LogisticRegression", LogisticRegression(max_iter=2000)),
        "RandomForest": (
            "baseline RandomForest(500 trees)",
            RandomForestClassifier(n_estimators=500, random_state=settings.seed, n_jobs=n_jobs),
        ),
    }
    return {
        name: _pipeline(settings, model)
        for family, (name, model) in models.items()
        if family not in settings.blocked_models
    }


def leaky_columns(columns: list[str] | pd.Index, leaking: dict[str, str]) -> dict[str, str]:
    """The columns among `columns` that the dataset's schema says leak the outcome (`leaking`), with why."""
    return {name: why for name, why in leaking.items() if name in columns}


def selection_folds(y: pd.Series, folds: int, seed: int, repeats: int = SELECTION_REPEATS) -> list[tuple[Any, Any]]:
    """(train, test) row indices: `repeats` stratified k-fold splits, shuffled with seed, seed+1, ...

    The first repeat is the project's own folds, on which the reported out-of-fold metrics are computed.
    """
    from sklearn.model_selection import StratifiedKFold

    return [
        split
        for repeat in range(repeats)
        for split in StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed + repeat).split(y, y)
    ]


def _primary(metric: str, y: Any, proba: Any) -> float:
    from sklearn.metrics import accuracy_score, average_precision_score, roc_auc_score

    if metric == "accuracy":
        return float(accuracy_score(y, (proba >= 0.5).astype(int)))
    if metric == "average_precision_score_weighted":
        return float(average_precision_score(y, proba, average="weighted"))
    return float(roc_auc_score(y, proba, average="weighted"))


def _single_threaded(fitted: Any) -> Any:
    """The fitted pipeline with every n_jobs set to 1: one row must not pay for starting worker threads."""
    params = {key: 1 for key in fitted.get_params(deep=True) if key.endswith("n_jobs")}
    return fitted.set_params(**params) if params else fitted


def predict_ms(fitted: Any, X: pd.DataFrame, calls: int = PREDICT_TIMING_CALLS) -> float:
    """Median milliseconds of predict_proba on one row, single-threaded, after one warm-up call."""
    model = _single_threaded(fitted)
    row = X.iloc[[0]]
    model.predict_proba(row)
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        model.predict_proba(row)
        times.append(time.perf_counter() - started)
    return float(np.median(times) * 1000)


@dataclass(frozen=True)
class Candidate:
    """One model of the final selection, scored on the selection folds."""

    name: str
    kind: str  # "baseline", "search" (FLAML's best learner) or "ensemble"
    pipeline: Any  # unfitted
    fold_scores: Any  # the primary metric on each selection fold (repeats x folds)
    proba: Any  # out-of-fold probabilities on the first repeat (the project's folds)
    predict_ms: float  # median single-row predict_proba, one thread, of a fold's model

    @property
    def score(self) -> float:
        return float(np.mean(self.fold_scores))

    def noise(self, other: Candidate) -> float:
        """Standard error of the paired per-fold difference to `other` (0 against itself)."""
        diff = np.asarray(self.fold_scores) - np.asarray(other.fold_scores)
        return float(np.std(diff, ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else 0.0


def fold_fits(pipeline: Any, X: pd.DataFrame, y: pd.Series, splits: list[tuple[Any, Any]]) -> tuple[list[Any], Any]:
    """Fit a clone of `pipeline` on each split's training rows: each split's predict_proba on its test rows
    (arrays of shape (test rows, 2)), and the first split's fitted model (to time a prediction)."""
    from sklearn.base import clone

    probas, first = [], None
    for train_rows, test_rows in splits:
        fitted = clone(pipeline).fit(X.iloc[train_rows], y.iloc[train_rows])
        probas.append(fitted.predict_proba(X.iloc[test_rows]))
        first = fitted if first is None else first
    return probas, first


def candidate_of(
    name: str,
    kind: str,
    pipeline: Any,
    probas: list[Any],
    y: pd.Series,
    splits: list[tuple[Any, Any]],
    metric: str,
    folds: int,
    ms: float,
) -> Candidate:
    """The candidate from each split's test-row probabilities (fold_fits' first answer)."""
    proba = np.zeros(len(y))
    scores = []
    for index, ((_, test_rows), fold_proba) in enumerate(zip(splits, probas, strict=True)):
        scores.append(_primary(metric, y.iloc[test_rows], fold_proba[:, 1]))
        if index < folds:
            proba[test_rows] = fold_proba[:, 1]
    return Candidate(name, kind, pipeline, np.array(scores), proba, ms)


def score_candidate(
    name: str,
    kind: str,
    pipeline: Any,
    X: pd.DataFrame,
    y: pd.Series,
    splits: list[tuple[Any, Any]],
    metric: str,
    folds: int,
) -> Candidate:
    """Fit `pipeline` on each split's training rows and score it on the rest."""
    probas, first = fold_fits(pipeline, X, y, splits)
    return candidate_of(name, kind, pipeline, probas, y, splits, metric, folds, predict_ms(first, X))


def soft_vote_members(pipeline: Any) -> list[Any] | None:
    """The member pipelines (same featurizer, one learner each) of a pipeline whose model is an unweighted
    soft VotingClassifier, else None. Such an ensemble's predict_proba is np.average of its members' on the
    same rows (sklearn's VotingClassifier.predict_proba), so its fold scores follow from the members' fits."""
    from sklearn.base import clone
    from sklearn.ensemble import VotingClassifier

    step, model = pipeline.steps[-1]
    if not isinstance(model, VotingClassifier) or model.voting != "soft" or model.weights is not None:
        return None
    return [clone(pipeline).set_params(**{step: clone(member)}) for _, member in model.estimators]


def score_sharing_fits(
    pipelines: list[tuple[str, str, Any]],
    X: pd.DataFrame,
    y: pd.Series,
    splits: list[tuple[Any, Any]],
    metric: str,
    folds: int,
) -> list[Candidate]:
    """score_candidate for each (name, kind, pipeline), fitting each distinct pipeline once per split: the
    searched learner and a soft-voting ensemble that contains it share its fits.

    The ensemble's fold probabilities are its members' averaged, as VotingClassifier averages them; it is
    fitted whole once, on the first split, to time its prediction and to check that average on that
    split's rows; when they differ (a learner that does not refit identically), it is scored whole.
    """
    import joblib
    from sklearn.base import clone

    fits: dict[str, tuple[list[Any], Any]] = {}

    def shared(pipeline: Any) -> tuple[list[Any], Any]:
        key = joblib.hash(pipeline)
        if key not in fits:
            fits[key] = fold_fits(pipeline, X, y, splits)
        return fits[key]

    candidates = []
    for name, kind, pipeline in pipelines:
        members = soft_vote_members(pipeline)
        if members is None:
            probas, first = shared(pipeline)
            candidates.append(
                candidate_of(name, kind, pipeline, probas, y, splits, metric, folds, predict_ms(first, X))
            )
            continue
        member_probas = [shared(member)[0] for member in members]
        probas = [np.average(np.asarray(fold), axis=0) for fold in zip(*member_probas, strict=True)]
        train_rows, test_rows = splits[0]
        whole = clone(pipeline).fit(X.iloc[train_rows], y.iloc[train_rows])
        if not np.array_equal(whole.predict_proba(X.iloc[test_rows]), probas[0]):
            candidates.append(score_candidate(name, kind, pipeline, X, y, splits, metric, folds))
            continue
        candidates.append(candidate_of(name, kind, pipeline, probas, y, splits, metric, folds, predict_ms(whole, X)))
    return candidates


def choose(candidates: list[Candidate]) -> tuple[Candidate, str]:
    """The pick, and the rule that made it, in words.

    1. The best-scoring baseline is the champion. A searched model replaces it only when it scores higher
       by more than the noise: the standard error of their paired per-fold difference.
    2. Among the champion and the models that qualified, those within the noise of the top scorer are
       tied; of tied ones the fastest to predict one row is taken when it is at least SPEED_FACTOR times
       faster than the top scorer (a smaller difference is timing noise), else the top scorer.
    """
    baseline = [c for c in candidates if c.kind == "baseline"]
    if baseline:
        champion = max(baseline, key=lambda c: c.score)
        beat = [c for c in candidates if c.kind != "baseline" and c.score - champion.score > c.noise(champion)]
        contenders = [champion, *beat]
        if beat:
            rule = (
                f"{len(beat)} searched model(s) beat the best baseline ({champion.name}, {champion.score:.4f}) "
                "by more than the folds' noise"
            )
        else:
            rule = (
                f"no searched model beat the best baseline ({champion.name}, {champion.score:.4f}) by more than "
                "the folds' noise, so the baseline stays"
            )
    else:
        contenders, rule = list(candidates), "every baseline is blocked; the searched models compete on score"
    top = max(contenders, key=lambda c: c.score)
    tied = [c for c in contenders if top.score - c.score <= c.noise(top)]
    fastest = min(tied, key=lambda c: c.predict_ms)
    if fastest is not top and top.predict_ms >= SPEED_FACTOR * fastest.predict_ms:
        return fastest, (
            f"{rule}; {fastest.name} is within the noise of the top scorer {top.name} "
            f"({fastest.score:.4f} vs {top.score:.4f}) and {top.predict_ms / fastest.predict_ms:.1f}x "
            "faster to predict one row, so it is taken"
        )
    if len(tied) > 1:
        return top, f"{rule}; the top scorer is taken: no model within its noise is {SPEED_FACTOR:g}x faster"
    return top, f"{rule}; the top scorer is taken"


@dataclass(frozen=True)
class SearchResult:
    pipeline: Any  # unfitted: featurizer + learner (or voting ensemble) with the chosen configuration
    learner: str
    metrics: dict[str, float]  # out-of-fold, on the project's folds
    proba: Any  # out-of-fold probabilities of DEATH_EVENT
    candidates: list[Candidate]  # the final selection, all on the same folds
    chosen: Candidate
    rule: str  # why `chosen` won, in words
    budget: dict[str, Any]  # what the search was given and what it used, and each phase's seconds
    honest: dict[str, Any] | None  # when a leaking column is used: the best baseline without it, same folds
    fitted: Any = None  # the chosen pipeline already fitted on every row (a baseline, beside the search), or None

    @property
    def final_scores(self) -> dict[str, float]:
        return {c.name: c.score for c in self.candidates}


@dataclass(frozen=True)
class BaselineScores:
    """What the baseline process answers: the baselines scored on the selection folds, each also fitted
    on every row (so a baseline that is picked needs no refit), and the honest figure when asked for."""

    candidates: list[Candidate]
    fitted: dict[str, Any]  # name -> the pipeline fitted on every row
    honest: dict[str, Any] | None
    seconds: float  # wall time of this work, in its own process, beside the search


def _threads(pipeline: Any) -> dict[str, Any]:
    """The pipeline's n_jobs parameters that ask for more than one thread (None, the default, is left alone:
    setting it makes LogisticRegression warn)."""
    params = pipeline.get_params(deep=True)
    return {key: value for key, value in params.items() if key.endswith("n_jobs") and value not in (None, 1)}


def score_baselines(
    settings: TrainingSettings, X: pd.DataFrame, y: pd.Series, splits: list[tuple[Any, Any]], leaks: list[str]
) -> BaselineScores:
    """The baselines on the selection folds and on every row, one thread each (FLAML has the other core).

    A forest's trees do not depend on n_jobs (each tree's seed is drawn from random_state before the
    trees are spread over threads), so these are the fits the main process would make; the fitted
    pipelines get their declared n_jobs back for prediction.
    """
    from sklearn.base import clone

    started = time.perf_counter()
    metric, folds = settings.primary_metric, settings.n_cross_validations
    candidates, fitted = [], {}
    for name, pipeline in baselines(settings).items():
        one_thread = clone(pipeline).set_params(**dict.fromkeys(_threads(pipeline), 1))
        candidates.append(
            replace(score_candidate(name, "baseline", one_thread, X, y, splits, metric, folds), pipeline=pipeline)
        )
        fitted[name] = one_thread.fit(X, y).set_params(**_threads(pipeline))
    honest = honest_figure(settings, X.drop(columns=leaks), y, splits, leaks) if leaks else None
    return BaselineScores(candidates, fitted, honest, time.perf_counter() - started)


def honest_figure(
    settings: TrainingSettings, honest_X: pd.DataFrame, y: pd.Series, splits: list[tuple[Any, Any]], leaks: list[str]
) -> dict[str, Any]:
    """The best baseline on the same folds without the leaking columns: cheaper than a second search, and
    the search rarely beats the baselines by much here."""
    yardsticks = baselines(settings)
    if not yardsticks:  # every baseline blocked: logistic regression still gives the figure, as a yardstick
        yardsticks = {
            name: pipeline
            for name, pipeline in baselines(replace(settings, blocked_models=())).items()
            if "LogisticRegression" in name
        }
    metric, folds = settings.primary_metric, settings.n_cross_validations
    scored = [
        score_candidate(
            name,
            "baseline",
            pipeline.set_params(**dict.fromkeys(_threads(pipeline), 1)),
            honest_X,
            y,
            splits,
            metric,
            folds,
        )
        for name, pipeline in yardsticks.items()
    ]
    best = max(scored, key=lambda c: c.score)
    return {
        "columns": leaks,
        "model": best.name,
        "score": best.score,
        "noise": float(np.std(best.fold_scores, ddof=1) / np.sqrt(len(best.fold_scores))),
        "metric": metric,
    }


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
    featurizer = _pipeline(settings, None).steps[0][1]
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


def searched_pipelines(settings: TrainingSettings, automl: Any) -> list[tuple[str, str, Any]]:
    """(name, kind, unfitted pipeline) of FLAML's best learner and, when two or more learners are close,
    their soft-voting ensemble."""
    pipelines = [(automl.best_estimator, "search", _pipeline(settings, _unfitted(automl.model)))]
    ensemble, members = _vote_ensemble(settings, automl)
    if ensemble is not None:
        # Azure AutoML ends with a soft-voting ensemble of its best models (enable_voting_ensemble defaults to True:
        # learn.microsoft.com/python/api/azureml-train-automl-client/azureml.train.automl.automlconfig.automlconfig).
        pipelines.append((f"VotingEnsemble({', '.join(members)})", "ensemble", ensemble))
    return pipelines


def search(
    settings: TrainingSettings,
    X: pd.DataFrame,
    y: pd.Series,
    budget_s: float,
    log_file: Path,
    progress: Callable[[str], None] = lambda _: None,
    leaking: dict[str, str] | None = None,
) -> SearchResult:
    """Run FLAML, then choose among the baselines, its best learner and a voting ensemble on the same folds.

    The baselines do not depend on the search: a second process scores them (and the honest figure)
    while FLAML searches on one core, so the final selection after the search scores only the searched
    models, each learner fitted once per fold. What it picks is what scoring every candidate on its
    own after the search picked (same folds, same fits, same rule: bench/training.py compares them).
    """
    mode, flaml_budget = search_budget(settings, budget_s)
    metric, folds = settings.primary_metric, settings.n_cross_validations
    splits = selection_folds(y, folds, settings.seed)
    leaks = list(leaky_columns(X.columns, leaking or {}))
    with Background(score_baselines, settings, X, y, splits, leaks) as beside:
        started = time.perf_counter()
        automl = run_flaml(settings, X, y, budget_s, log_file)
        search_s = time.perf_counter() - started
        trials = sum(1 for line in log_file.read_text().splitlines() if '"learner"' in line) if log_file.exists() else 0
        progress(f"search: {trials} trials in {search_s:.0f} s; final selection on {SELECTION_REPEATS}x{folds} folds")
        started = time.perf_counter()
        searched = score_sharing_fits(searched_pipelines(settings, automl), X, y, splits, metric, folds)
        waiting = time.perf_counter()
        scored = beside.result()
        wait_s = time.perf_counter() - waiting
    candidates = [*scored.candidates, *searched]
    chosen, rule = choose(candidates)
    budget = {
        "mode": mode,
        "time_budget_s": flaml_budget if mode == "time" else None,
        "max_trials": settings.max_trials,
        "trials": trials,
        "search_s": round(search_s, 1),
        "selection_s": round(time.perf_counter() - started, 1),
        "baselines_s": round(scored.seconds, 1),
        "baselines_wait_s": round(wait_s, 1),
        "selection_folds": f"{SELECTION_REPEATS}x{folds}",
    }
    fitted = scored.fitted.get(chosen.name) if chosen.kind == "baseline" else None
    metrics = metrics_of(y, chosen.proba)
    return SearchResult(
        chosen.pipeline, chosen.name, metrics, chosen.proba, candidates, chosen, rule, budget, scored.honest, fitted
    )


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
    return _pipeline(settings, VotingClassifier(members, voting="soft")), chosen


def time_budget(settings: TrainingSettings, cap_s: float) -> float:
    return min(settings.timeout_minutes * 60, cap_s)


def train(
    settings: TrainingSettings,
    data: Path,
    runs_dir: Path,
    budget_s: float = DEFAULT_LOCAL_BUDGET_S,
    progress: Any = print,
) -> TrainResult:
    """Search, select, refit on every row and save the MLflow model with its contract and model card; write the
    report and run.json (last: it marks the run finished for `register`). JobsError for data or settings the
    run cannot use; a failed or interrupted run leaves nothing behind."""
    schema = load_schema(data)
    settings = settings.for_schema(schema)  # the label, and the leaking columns left out unless opted in
    # The one data check of both targets (jobs/training.py), before any compute; then its table is trained on.
    frame = table_frame(settings.check_data(data))
    learners = learners_for(settings)
    X, y = features(frame, settings)
    run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]
    run_dir = runs_dir / run_id
    run_dir.mkdir(parents=True)
    mode, seconds = search_budget(settings, budget_s)
    limit = (
        f"{settings.max_trials} trials (reproducible: no time limit)" if mode == "trials" else f"up to {seconds:.0f} s"
    )
    progress(
        f"training locally with FLAML for {limit} on {len(X)} rows, {X.shape[1]} features "
        f"(metric {settings.primary_metric}, {settings.n_cross_validations}-fold CV, learners "
        f"{', '.join(learners)})"
        + (f"; left out as leaking the outcome: {', '.join(schema.leaking)}" if schema.leaking else "")
    )
    try:
        found = search(settings, X, y, budget_s, run_dir / "flaml.log", progress=progress, leaking=schema.leaking)
        best, learner, metrics = found.pipeline, found.learner, found.metrics
        for line in selection_lines(found, settings.primary_metric):
            progress(line)
        leak = leak_warning(found.honest, found.chosen.score, settings.primary_metric, schema.leaking)
        if leak:
            progress("WARNING: " + leak)
        started = time.perf_counter()
        best = found.fitted if found.fitted is not None else best.fit(X, y)
        found.budget["refit_s"] = round(time.perf_counter() - started, 1)
        found.budget["refit_beside_search"] = found.fitted is not None
        started = time.perf_counter()
        table = accuracy_table(y, found.proba)
        point = default_point(table)
        ranges = training_ranges(X, list(X.columns))
        numeric = frame.apply(pd.to_numeric, errors="coerce")
        card = build_card(schema, numeric, y, found.proba, point, ranges, settings.leaking_columns_used, settings.seed)
        contract = contract_document(schema, list(X.columns), ranges, point, table, settings.leaking_columns_used)

        def travelling(folder: Path) -> None:
            write_contract(folder, contract)
            (folder / "model_card.md").write_text(card.markdown(), encoding="utf-8")

        model_dir = run_dir / "model"
        save_mlflow_model(best, X, y, model_dir, travelling)
        found.budget["packaging_s"] = round(time.perf_counter() - started, 1)
        progress(
            f"headline: {card.headline()}; operating point {point.threshold:g} ({point.rule}): sensitivity "
            f"{card.at_point['sensitivity'].text()}, specificity {card.at_point['specificity'].text()}"
        )
        leaderboard = _leaderboard(run_dir / "flaml.log", settings.primary_metric)
        data_version = content_version(data, settings.drop_columns)
        settings_tags = {**settings.as_tags(), **budget_tags(found.budget, budget_s)}
        facts = {
            "data": str(data),
            "data_version": data_version,
            "commit": git_commit(),
            "features_used": list(X.columns),
            "features_dropped": list(settings.drop_columns),
            "rows": len(X),
            "budget": found.budget,
            "settings": settings_tags,
            "leaking_columns": list(leaky_columns(X.columns, schema.leaking)),
        }
        started = time.perf_counter()
        report = write_report(
            run_dir,
            best,
            X,
            y,
            found.proba,
            metrics,
            leaderboard,
            learner,
            settings.seed,
            selection=selection_table(found),
            rule=found.rule,
            facts=facts,
            leak=leak,
            point=point,
            card=card,
        )
        found.budget["report_s"] = round(time.perf_counter() - started, 1)
        progress(phases_line(found.budget))
        # run.json last: its presence is what marks a run as finished for `register`.
        (run_dir / "run.json").write_text(
            json.dumps(
                {
                    "run_id": run_id,
                    "best_learner": learner,
                    "metrics": metrics,
                    "headline": {"auc": card.auc, "auc_interval": list(card.auc_interval), "text": card.headline()},
                    "operating_point": {"threshold": point.threshold, "rule": point.rule},
                    "data": str(data),
                    "data_version": data_version,
                    "commit": facts["commit"],
                    "settings": settings_tags,
                    "leaderboard": leaderboard,
                    "selection": selection_table(found),
                    "rule": found.rule,
                    "budget": found.budget,
                    "honest": found.honest,
                    "leak_warning": leak,
                },
                indent=2,
                default=str,
            )
        )
    except BaseException:
        # A failed or interrupted run leaves nothing that `register` could mistake for a result.
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
    return TrainResult(run_id, run_dir, model_dir, metrics, learner, data_version, leaderboard, report)


def budget_tags(budget: dict[str, Any], cap_s: float) -> dict[str, str]:
    """Lineage tags for the budget the local search actually had and used (not the lesson's 20 minutes)."""
    tags = {
        "budget.mode": budget["mode"],
        "budget.trials": str(budget["trials"]),
        "budget.search_seconds": f"{budget['search_s']:.1f}",
        "budget.selection_seconds": f"{budget['selection_s']:.1f}",
    }
    if budget["mode"] == "time":
        tags["setting.timeout_minutes"] = f"{budget['time_budget_s'] / 60:g}"
        tags["setting.local_budget_seconds"] = f"{cap_s:g}"
    else:
        tags["setting.timeout_minutes"] = "none (trial count)"
    return tags


def phases_line(budget: dict[str, Any]) -> str:
    """Where training's time went, phase by phase (seconds of wall time), as `train` prints it."""
    refit = (
        "already done beside the search (the baseline was fitted on every row there)"
        if budget.get("refit_beside_search")
        else f"{budget['refit_s']:.1f} s"
    )
    return (
        f"time spent: search {budget['search_s']:.1f} s; final selection {budget['selection_s']:.1f} s "
        f"({budget['baselines_wait_s']:.1f} s of it waiting for the baselines, which took "
        f"{budget['baselines_s']:.1f} s in their own process beside the search); refit on every row {refit}; "
        f"MLflow model, contract and card {budget['packaging_s']:.1f} s; report {budget['report_s']:.1f} s"
    )


def selection_table(found: SearchResult) -> list[dict[str, Any]]:
    """The final selection's rows, best score first: name, kind, score, noise to the pick, predict time."""
    baseline = max((c for c in found.candidates if c.kind == "baseline"), key=lambda c: c.score, default=None)
    rows = [
        {
            "name": c.name,
            "kind": c.kind,
            "score": round(c.score, 4),
            "fold_sd": round(float(np.std(c.fold_scores, ddof=1)), 4),
            "lead_over_baseline": None if baseline is None or c is baseline else round(c.score - baseline.score, 4),
            "noise_vs_baseline": None if baseline is None or c is baseline else round(c.noise(baseline), 4),
            "noise_vs_pick": round(c.noise(found.chosen), 4),
            "predict_ms": round(c.predict_ms, 2),
            "chosen": c is found.chosen,
        }
        for c in found.candidates
    ]
    return sorted(rows, key=lambda row: -row["score"])


def selection_lines(found: SearchResult, metric: str) -> list[str]:
    """What `train` prints about the final selection."""
    lines = [
        f"  {'*' if row['chosen'] else ' '} {row['name']:<34} {metric} {row['score']:.4f} "
        f"(fold sd {row['fold_sd']:.3f}), single-row predict {row['predict_ms']:5.1f} ms"
        + (
            f", {row['lead_over_baseline']:+.4f} over the best baseline (noise {row['noise_vs_baseline']:.4f})"
            if row["lead_over_baseline"] is not None
            else ""
        )
        for row in selection_table(found)
    ]
    folds = found.budget["selection_folds"]
    return [
        *lines,
        f"picked {found.learner}: {metric} {found.chosen.score:.4f} (mean over the {folds} selection "
        f"folds), single-row predict {found.chosen.predict_ms:.1f} ms; rule: {found.rule}",
    ]


def leak_warning(
    honest: dict[str, Any] | None, score: float, metric: str, leaking: dict[str, str] | None = None
) -> str | None:
    """Plain words when the model uses a column known to leak the outcome; None otherwise.

    `score` is the model's mean fold score on the selection folds, the same measure as the honest figure.
    """
    if not honest:
        return None
    columns = ", ".join(f"`{c}`" for c in honest["columns"])
    why = "; ".join((leaking or {}).get(c, "the dataset's schema says so") for c in honest["columns"])
    return (
        f"this model uses {columns}, which leaks the outcome ({why}). Its {metric} of "
        f"{score:.3f} is not what it would do for a new patient. The honest figure: "
        f"without {columns}, the best baseline ({honest['model']}) scores {honest['score']:.3f} "
        f"(± {honest['noise']:.3f}) on the same folds. Train with "
        + " ".join(f"--drop {c}" for c in honest["columns"])
        + " (or leave out --include-leaking-columns) for a model that can be used."
    )
