"""Local AutoML with FLAML, on the lesson's settings, saved as an MLflow model: `train` and its packaging.

The run, in order: the data and settings checked (jobs/local/features.py); the baselines started in
their own process (jobs/local/selection.py, jobs/local/background.py) while FLAML searches
(jobs/local/search.py); the final selection; the pick refitted on every row (unless it was, beside
the search) and saved as an MLflow sklearn model with the features' signature, the format Azure
AutoML produces, so scoring/score.py loads either; the report; run.json last. Each phase's seconds
are printed and recorded (run.json's budget, the report's facts).
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from jobs.contract import accuracy_table, contract_document, default_point, training_ranges, write_contract
from jobs.dataset import content_version, load_schema
from jobs.lineage import git_commit
from jobs.local.background import Background
from jobs.local.fast_model import FastModel
from jobs.local.fast_model import package as package_fast_path
from jobs.local.features import features, leaky_columns, table_frame
from jobs.local.metrics import metrics_of
from jobs.local.model_card import Card, build_card
from jobs.local.report import write_report
from jobs.local.search import leaderboard, learners_for, run_flaml, search_budget, searched_pipelines, trial_count
from jobs.local.selection import (
    SELECTION_REPEATS,
    SearchResult,
    choose,
    score_baselines,
    score_sharing_fits,
    selection_folds,
    selection_lines,
    selection_table,
)
from jobs.training import DEFAULT_LOCAL_BUDGET_S, TrainingSettings
from scoring.contract import OperatingPoint
from scoring.schema import DatasetSchema


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


def pip_requirements() -> list[str]:
    """The model's runtime dependencies: the scoring environment's pinned list, minus the server."""
    from jobs.local.scoring_env import pip_requirements as scoring_pip

    server_only = ("azureml-inference-server-http", "inference-schema")
    return [req for req in scoring_pip() if not req.startswith(server_only)]


def save_mlflow_model(
    pipeline: Any,
    X: pd.DataFrame,
    y: pd.Series,
    target: Path,
    extra: Callable[[Path], None] = lambda _: None,
    metadata: dict[str, Any] | None = None,
) -> None:
    """Write the MLflow model to `target` atomically: a failure leaves no folder behind. `extra` writes what
    travels with the model (its contract, its card, its fast path) into the folder before it appears;
    `metadata` goes into the MLmodel file (the fast path's record, scoring/fast_path.py)."""
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
            metadata=metadata,
            # We trained this object a moment ago; its own types are the ones to trust on load.
            skops_trusted_types=skops.io.get_untrusted_types(data=skops.io.dumps(pipeline)),
        )
        extra(staging)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


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
    JobsError when FLAML found no model; the baselines' process is ended on any way out.
    """
    mode, flaml_budget = search_budget(settings, budget_s)
    metric, folds = settings.primary_metric, settings.n_cross_validations
    splits = selection_folds(y, folds, settings.seed)
    leaks = list(leaky_columns(X.columns, leaking or {}))
    begun = time.time()  # wall clock, as the baselines' process stamps its end (monotonic clocks are per process)
    with Background(score_baselines, settings, X, y, splits, leaks) as beside:
        started = time.perf_counter()
        automl = run_flaml(settings, X, y, budget_s, log_file)
        search_s, trials = time.perf_counter() - started, trial_count(log_file)
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
        "baselines_s": round(scored.finished_at - begun, 1),
        "baselines_wait_s": round(wait_s, 1),
        "selection_folds": f"{SELECTION_REPEATS}x{folds}",
    }
    fitted = scored.fitted.get(chosen.name) if chosen.kind == "baseline" else None
    metrics = metrics_of(y, chosen.proba)
    return SearchResult(
        chosen.pipeline, chosen.name, metrics, chosen.proba, candidates, chosen, rule, budget, scored.honest, fitted
    )


@dataclass(frozen=True)
class _Prepared:
    """What train() reads before it starts any compute: the settings for the data, its frame, X and y."""

    settings: TrainingSettings
    schema: DatasetSchema
    frame: pd.DataFrame
    X: pd.DataFrame
    y: pd.Series


def _prepare(settings: TrainingSettings, data: Path, budget_s: float, progress: Callable[[str], None]) -> _Prepared:
    """Read and check the data and settings (JobsError before any compute), and say what will be trained."""
    schema = load_schema(data)
    settings = settings.for_schema(schema)  # the label, and the leaking columns left out unless opted in
    # The one data check of both targets (jobs/training.py), before any compute; then its table is trained on.
    frame = table_frame(settings.check_data(data))
    learners = learners_for(settings)
    X, y = features(frame, settings)
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
    return _Prepared(settings, schema, frame, X, y)


def _refit(found: SearchResult, X: pd.DataFrame, y: pd.Series) -> tuple[Any, dict[str, Any]]:
    """The pick fitted on every row (a baseline was, beside the search), and the refit phase's record."""
    started = time.perf_counter()
    best = found.fitted if found.fitted is not None else found.pipeline.fit(X, y)
    return best, {"refit_s": round(time.perf_counter() - started, 1), "refit_beside_search": found.fitted is not None}


def _package(
    prepared: _Prepared, found: SearchResult, best: Any, model_dir: Path, progress: Any
) -> tuple[Card, OperatingPoint, FastModel, dict[str, Any]]:
    """Save the MLflow model with its contract, model card and fast path (or the reason it has none); the card,
    the operating point, the fast path and the seconds."""
    started = time.perf_counter()
    settings, schema, X, y = prepared.settings, prepared.schema, prepared.X, prepared.y
    fast = package_fast_path(best, X)  # checked against scikit-learn on every row, or refused with why
    progress(f"serving: {fast.record.summary()}")
    table = accuracy_table(y, found.proba)
    point = default_point(table)
    ranges = training_ranges(X, list(X.columns))
    numeric = prepared.frame.apply(pd.to_numeric, errors="coerce")
    card = build_card(schema, numeric, y, found.proba, point, ranges, settings.leaking_columns_used, settings.seed)
    contract = contract_document(schema, list(X.columns), ranges, point, table, settings.leaking_columns_used)

    def travelling(folder: Path) -> None:
        write_contract(folder, contract)
        (folder / "model_card.md").write_text(card.markdown() + "\n" + fast.card_section(), encoding="utf-8")
        fast.write(folder)

    save_mlflow_model(best, X, y, model_dir, travelling, metadata=fast.record.metadata())
    return card, point, fast, {"packaging_s": round(time.perf_counter() - started, 1)}


def train(
    settings: TrainingSettings,
    data: Path,
    runs_dir: Path,
    budget_s: float = DEFAULT_LOCAL_BUDGET_S,
    progress: Any = print,
) -> TrainResult:
    """Search, select, refit on every row and save the MLflow model with its contract and model card; write the
    report and run.json (last: it marks the run finished for `register`). JobsError for data or settings the
    run cannot use; a failed or interrupted run leaves nothing behind.

    The baselines run in a spawned process (jobs/local/background.py): a script that calls this must keep its
    own code under `if __name__ == "__main__":`, as every program using multiprocessing's spawn must.
    """
    prepared = _prepare(settings, data, budget_s, progress)
    settings, X, y = prepared.settings, prepared.X, prepared.y
    run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]
    run_dir = runs_dir / run_id
    run_dir.mkdir(parents=True)
    try:
        found = search(settings, X, y, budget_s, run_dir / "flaml.log", progress, prepared.schema.leaking)
        for line in selection_lines(found, settings.primary_metric):
            progress(line)
        leak = leak_warning(found.honest, found.chosen.score, settings.primary_metric, prepared.schema.leaking)
        if leak:
            progress("WARNING: " + leak)
        best, refit = _refit(found, X, y)
        card, point, fast, packaging = _package(prepared, found, best, run_dir / "model", progress)
        progress(
            f"headline: {card.headline()}; operating point {point.threshold:g} ({point.rule}): sensitivity "
            f"{card.at_point['sensitivity'].text()}, specificity {card.at_point['specificity'].text()}"
        )
        budget = {**found.budget, **refit, **packaging}
        record = _record(prepared, data, run_dir / "flaml.log", budget, budget_s, fast)
        started = time.perf_counter()
        report = write_report(
            run_dir,
            best,
            X,
            y,
            found.proba,
            found.metrics,
            record.leaderboard,
            found.learner,
            settings.seed,
            selection=selection_table(found),
            rule=found.rule,
            facts=record.facts,
            leak=leak,
            point=point,
            card=card,
        )
        budget["report_s"] = round(time.perf_counter() - started, 1)
        progress(phases_line(budget))
        # run.json last: its presence is what marks a run as finished for `register`.
        _write_run_json(run_dir, run_id, record, found, budget, card, point, leak)
    except BaseException:
        # A failed or interrupted run leaves nothing that `register` could mistake for a result.
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
    metrics, version = found.metrics, record.data_version
    return TrainResult(run_id, run_dir, run_dir / "model", metrics, found.learner, version, record.leaderboard, report)


@dataclass(frozen=True)
class _Record:
    """A finished run's lineage: the report's facts and what run.json repeats of them."""

    facts: dict[str, Any]
    leaderboard: list[dict[str, Any]]
    data_version: str
    settings_tags: dict[str, str]


def _record(
    prepared: _Prepared, data: Path, log_file: Path, budget: dict[str, Any], cap_s: float, fast: FastModel
) -> _Record:
    """The facts of the run (data, its version, commit, features, budget used, settings, leaking columns, how it
    is served) and FLAML's leaderboard from its log."""
    settings, X = prepared.settings, prepared.X
    data_version = content_version(data, settings.drop_columns)
    settings_tags = {**settings.as_tags(), **budget_tags(budget, cap_s), **fast.tags()}
    facts = {
        "data": str(data),
        "data_version": data_version,
        "commit": git_commit(),
        "features_used": list(X.columns),
        "features_dropped": list(settings.drop_columns),
        "rows": len(X),
        "budget": budget,
        "settings": settings_tags,
        "leaking_columns": list(leaky_columns(X.columns, prepared.schema.leaking)),
        "serving": fast.record.summary(),
    }
    board = leaderboard(log_file, settings.primary_metric)
    return _Record(facts, board, data_version, settings_tags)


def _write_run_json(
    run_dir: Path,
    run_id: str,
    record: _Record,
    found: SearchResult,
    budget: dict[str, Any],
    card: Card,
    point: OperatingPoint,
    leak: str | None,
) -> None:
    (run_dir / "run.json").write_text(
        json.dumps(
            {
                "run_id": run_id,
                "best_learner": found.learner,
                "metrics": found.metrics,
                "headline": {"auc": card.auc, "auc_interval": list(card.auc_interval), "text": card.headline()},
                "operating_point": {"threshold": point.threshold, "rule": point.rule},
                "data": record.facts["data"],
                "data_version": record.data_version,
                "commit": record.facts["commit"],
                "settings": record.settings_tags,
                "leaderboard": record.leaderboard,
                "selection": selection_table(found),
                "rule": found.rule,
                "budget": budget,
                "honest": found.honest,
                "leak_warning": leak,
            },
            indent=2,
            default=str,
        )
    )


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
        f"{budget['baselines_s']:.1f} s in their own process beside the search, its start included); refit on "
        f"every row {refit}; MLflow model, contract and card {budget['packaging_s']:.1f} s; report "
        f"{budget['report_s']:.1f} s"
    )


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
