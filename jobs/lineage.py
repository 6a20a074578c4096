"""Lineage tags and the quality gate, shared by every way a model gets registered.

Four paths register a model: `jobs register --target azure`, the pipeline's register step
(jobs/azure/pipeline_step.py), `--dry-run`'s model.yml and `jobs register --target local`. Each
reads the training run it registers into a TrainingRun and calls model_tags() and
quality_gate(); none builds tags of its own. The run is the source of truth (as in
azureml-examples' AutoML notebooks, which read the best child from the parent run's own tags):
the data version, the commit and the settings are the ones the run recorded when it was
submitted, never what is checked out when it is registered.
"""

from __future__ import annotations

import math
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jobs.errors import JobsError
from jobs.paths import ROOT

MODEL_NAME = "heart-failure-automl"
# No absolute floor by default: the gate judges a model against a baseline and the champion for its
# own features (an honest model without `time` scores about 0.78 and is a good model). --min-auc adds one.
DEFAULT_MIN_AUC: float | None = None
UNKNOWN = "unknown"
# The shipped data's schema name (data/*.schema.json): what runs and versions from before datasets had names used.
SHIPPED_DATASET = "heart-failure-clinical-records"

# The metrics that go into a registered model's tags, by whichever path it is registered (Azure
# AutoML's names; the local run computes the ones it can under the same names).
LINEAGE_METRICS = (
    "AUC_weighted",
    "accuracy",
    "average_precision_score_weighted",
    "precision_score_weighted",
    "recall_score_weighted",
    "f1_score_weighted",
    "precision_score_binary",
    "recall_score_binary",
    "f1_score_binary",
)
# Run tags carried onto the model as they are: the training settings and the budget the run used.
RUN_TAG_PREFIXES = ("setting.", "budget.", "operating_point.", "headline.")
# The budget facts every model carries, "unknown" where a target does not record one.
BUDGET_TAGS = ("budget.mode", "budget.trials", "budget.search_seconds", "budget.selection_seconds")
# The gate's figures on a registered model (Verdict.tags), and what a dry run writes there before any gate ran.
GATE_TAGS = ("gate.baseline", "gate.champion", "gate.min_auc")
GATE_UNDECIDED = "<decided at register time>"


def git_commit(root: Path = ROOT) -> str:
    """The checked-out commit, with '-dirty' when the tree has uncommitted changes; 'unknown' outside git."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return UNKNOWN
    return commit + ("-dirty" if dirty else "")


def training_tags(data_version: str, settings_tags: dict[str, str], commit: str | None = None) -> dict[str, str]:
    """Tags on a training (or pipeline) job when it is submitted: data version, commit, settings.

    These are what model_tags() later reads back from the run, so the commit recorded here (the
    one checked out at submit time) is the commit a registered model names.
    """
    return {"data_version": data_version, "git_commit": commit or git_commit(), **settings_tags}


def dropped_columns(run_tags: Mapping[str, str]) -> str:
    """The feature set's identity: the columns dropped before training, sorted, comma-joined; 'none'.

    Read from `setting.drop_columns` (TrainingSettings.as_tags() leaves the tag out when nothing is
    dropped). The data's columns are fixed by the request schema, so the dropped ones name the set.
    """
    dropped = [c.strip() for c in run_tags.get("setting.drop_columns", "").split(",") if c.strip()]
    return ",".join(sorted(dropped)) or "none"


@dataclass(frozen=True)
class TrainingRun:
    """What a finished training run recorded about itself.

    name: the AutoML job (Azure) or the run id (local); best_child: the best child run (Azure) or
    the chosen learner (local); metrics: the best model's metrics, AutoML's names; tags: the run's
    own tags (data_version, git_commit, setting.*, budget.*).
    """

    name: str
    best_child: str
    metrics: Mapping[str, float]
    tags: Mapping[str, str]


@dataclass(frozen=True)
class Yardstick:
    """What a model is compared with: a baseline on the same folds, or the registered champion.

    score: the yardstick's figure; candidate: the model's figure on the same measure; noise: how
    far below the yardstick still counts as "not worse" (the folds' standard error, 0 when unknown).
    """

    name: str
    score: float
    candidate: float
    noise: float = 0.0

    @property
    def beaten(self) -> bool:
        return self.candidate >= self.score - self.noise

    def describe(self) -> str:
        noise = f", noise ±{self.noise:.4f}" if self.noise else ""
        return f"model {self.candidate:.4f} vs {self.name} {self.score:.4f}{noise}"


@dataclass(frozen=True)
class Verdict:
    """A passed gate: what was compared, with the figures, for the message and the tags."""

    metric: str
    score: float
    baseline: Yardstick | None
    champion: Yardstick | None
    min_score: float | None
    notes: tuple[str, ...] = field(default=())

    def summary(self) -> str:
        parts = [
            f"baseline: {self.baseline.describe()}" if self.baseline else "baseline: unknown, not compared",
            f"champion: {self.champion.describe()}"
            if self.champion
            else "champion: none registered for these features",
            f"floor: {self.min_score:.4f}" if self.min_score is not None else "floor: off (--min-auc)",
        ]
        return f"quality gate passed on {self.metric} {self.score:.4f} ({'; '.join(parts)})"

    def tags(self) -> dict[str, str]:
        def yard(y: Yardstick | None, missing: str) -> str:
            return f"{y.name} {y.score:.6f}" if y else missing

        return {
            "gate.baseline": yard(self.baseline, UNKNOWN),
            "gate.champion": yard(self.champion, "none"),
            "gate.min_auc": f"{self.min_score:.4f}" if self.min_score is not None else "off",
        }


def quality_gate(
    metrics: Mapping[str, float],
    *,
    baseline: Yardstick | None,
    champion: Yardstick | None,
    min_score: float | None,
    metric: str = "AUC_weighted",
) -> Verdict:
    """Judge a model on merit for its own features; raise JobsError (nothing is registered) when it fails.

    Three checks, each only when its yardstick is known: not worse than the simple baseline scored on
    the same folds, not worse than the champion (the latest registered version trained on the same
    features), and not below the absolute floor `min_score` (--min-auc, off unless given). "Not worse"
    allows the yardstick's noise. The message names every comparison that failed, with both figures.
    """
    if metric not in metrics:
        raise JobsError(
            f"the run has no {metric} metric to check against the gate (it has: {', '.join(sorted(metrics)) or 'none'})"
        )
    score = float(metrics[metric])
    if math.isnan(score):
        raise JobsError(f"the run's {metric} is not a number; nothing was registered")
    failures = []
    if baseline is not None and not baseline.beaten:
        failures.append(f"it scores below the simple baseline on the same folds ({baseline.describe()})")
    if champion is not None and not champion.beaten:
        failures.append(f"it scores below the registered champion for the same features ({champion.describe()})")
    if min_score is not None and score < min_score:
        failures.append(f"{metric} {score:.4f} is below the threshold {min_score:.4f} (--min-auc)")
    if failures:
        raise JobsError(
            f"quality gate refused the model on {metric}: "
            + "; ".join(failures)
            + ". Nothing was registered. Train again (longer, other settings)"
            + (", or lower --min-auc" if min_score is not None and score < min_score else "")
            + "."
        )
    return Verdict(metric, score, baseline, champion, min_score)


def champion(
    versions: Iterable[tuple[Any, Mapping[str, str]]],
    run: TrainingRun,
    metric: str = "AUC_weighted",
    noise: float = 0.0,
) -> Yardstick | None:
    """The latest registered version trained on the same dataset and features as `run`, as a yardstick; None if none.

    versions: (version, tags) pairs of the registered model. A version from this same training run
    is not its own champion. Old versions without a `dropped_columns` tag are matched on their
    `setting.drop_columns` tag, as dropped_columns() reads it.
    """
    features = dropped_columns(run.tags)
    same = [
        (int(str(v)), tags)
        for v, tags in versions
        if str(v).isdigit()
        and tags.get("training_run") != run.name
        and tags.get("dropped_columns", dropped_columns(tags)) == features
        and tags.get("dataset", SHIPPED_DATASET) == run.tags.get("dataset", SHIPPED_DATASET)
        and finite_number(tags.get(f"metric.{metric}")) is not None
    ]
    if not same or metric not in run.metrics:
        return None
    version, tags = max(same, key=lambda pair: pair[0])
    return Yardstick(
        f"version {version} (dropped: {features})", float(tags[f"metric.{metric}"]), float(run.metrics[metric]), noise
    )


def finite_number(text: str | None) -> float | None:
    """`text` as a float; None when it is None, not a number, or NaN (a tag that records no figure)."""
    try:
        value = float(text) if text is not None else None
    except ValueError:
        return None
    return None if value is None or math.isnan(value) else value


def model_tags(run: TrainingRun, verdict: Verdict | None, registered_by: str) -> dict[str, str]:
    """The registered model's tags, the same keys on every path.

    From the run: training_run, best_child_run, data_version, git_commit, dropped_columns, each
    metric.<name> of LINEAGE_METRICS the run has, every setting.* and budget.* tag (BUDGET_TAGS
    always, 'unknown' where the run did not record one). From the gate: gate.baseline,
    gate.champion, gate.min_auc (None: a dry run, where the gate has not run yet). registered_by
    names the path. Values are strings, as Azure ML model tags are.
    """
    tags = {
        "training_run": run.name,
        "best_child_run": run.best_child,
        "data_version": run.tags.get("data_version", UNKNOWN),
        "git_commit": run.tags.get("git_commit", UNKNOWN),
        "dropped_columns": dropped_columns(run.tags),
        # Columns known to leak the outcome that the model uses: "none" for the honest default; the
        # lesson's reproduction (--include-leaking-columns) names them, and a promotion refuses it.
        "leaking_columns_used": run.tags.get("leaking_columns_used", UNKNOWN),
        "dataset": run.tags.get("dataset", SHIPPED_DATASET),
        **{f"metric.{name}": f"{float(run.metrics[name]):.6f}" for name in LINEAGE_METRICS if name in run.metrics},
        **dict.fromkeys(BUDGET_TAGS, UNKNOWN),
        **{k: str(v) for k, v in sorted(run.tags.items()) if k.startswith(RUN_TAG_PREFIXES)},
        "registered_by": registered_by,
    }
    if verdict is None:
        tags.update(dict.fromkeys(GATE_TAGS, GATE_UNDECIDED))
    else:
        tags.update(verdict.tags())
    return tags


# -- what Azure AutoML's child runs say -------------------------------------------------

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


# -- what a local run.json says --------------------------------------------------------


def local_run(info: Mapping[str, Any]) -> TrainingRun:
    """A local run.json as a TrainingRun.

    The commit is the one the run recorded (`git_commit`, or `commit` in its facts); a run that
    recorded none says 'unknown' rather than borrow the commit checked out now. Budget: the run's
    `budget.*` settings tags when present, else its `budget` record (mode, trials, search_s).
    """
    tags = {k: str(v) for k, v in (info.get("settings") or {}).items()}
    tags["data_version"] = str(info.get("data_version", UNKNOWN))
    commit = info.get("git_commit") or info.get("commit") or (info.get("facts") or {}).get("commit")
    tags["git_commit"] = str(commit) if commit else UNKNOWN
    point = info.get("operating_point")
    if isinstance(point, Mapping) and point.get("threshold") is not None:
        tags["operating_point.threshold"] = f"{float(point['threshold']):g}"
        tags["operating_point.rule"] = str(point.get("rule", UNKNOWN))
    headline = info.get("headline")
    if isinstance(headline, Mapping) and headline.get("text"):
        tags["headline.auc"] = str(headline["text"])
    budget = info.get("budget")
    if isinstance(budget, Mapping):
        derived = {
            "budget.mode": budget.get("mode"),
            "budget.trials": budget.get("trials"),
            "budget.search_seconds": budget.get("search_s"),
            "budget.selection_seconds": budget.get("selection_s"),
        }
        for key, value in derived.items():
            if value is not None:
                tags.setdefault(key, f"{value:.1f}" if isinstance(value, float) else str(value))
    return TrainingRun(
        str(info["run_id"]),
        str(info.get("best_learner", UNKNOWN)),
        {k: float(v) for k, v in (info.get("metrics") or {}).items()},
        tags,
    )


def local_baseline(info: Mapping[str, Any], metric: str = "AUC_weighted") -> Yardstick | None:
    """The best baseline of a local run's final selection, scored on the same folds as the chosen model.

    run.json's `selection` rows (name, kind, score, noise_vs_pick, chosen) come from the local
    AutoML's final selection, scored on the run's primary metric; a run without them (older runs, or
    every baseline blocked) has no baseline figure, and None says so.
    """
    rows = [r for r in info.get("selection") or () if isinstance(r, Mapping)]
    chosen = next((r for r in rows if r.get("chosen")), None)
    baselines = [r for r in rows if r.get("kind") == "baseline" and finite_number(r.get("score")) is not None]
    if chosen is None or not baselines or finite_number(chosen.get("score")) is None:
        return None
    best = max(baselines, key=lambda r: float(r["score"]))
    folds = (info.get("budget") or {}).get("selection_folds")
    where = f"on the same {folds} selection folds" if folds else "on the same folds"
    itself = "; the model is this baseline" if best is chosen else ""
    return Yardstick(
        f"{best.get('name', 'baseline')} ({where}{itself})",
        float(best["score"]),
        float(chosen["score"]),
        finite_number(best.get("noise_vs_pick")) or 0.0,
    )


def local_noise(info: Mapping[str, Any]) -> float:
    """The chosen model's standard error over the selection folds (0 when the run does not say)."""
    chosen = next((r for r in info.get("selection") or () if isinstance(r, Mapping) and r.get("chosen")), None)
    folds = str((info.get("budget") or {}).get("selection_folds", ""))
    sd = finite_number(chosen.get("fold_sd")) if chosen else None
    try:
        count = math.prod(int(n) for n in folds.split("x")) if folds else 0
    except ValueError:
        count = 0
    return sd / math.sqrt(count) if sd is not None and count > 1 else 0.0
