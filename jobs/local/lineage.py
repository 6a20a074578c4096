"""What a local run's run.json says about itself, for the quality gate and the tags (jobs/lineage.py).

The run as a TrainingRun (its recorded commit, settings, operating point and budget), the best baseline of its
final selection and the chosen model's noise over the selection folds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from jobs.lineage import UNKNOWN, TrainingRun, Yardstick, finite_number


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
