"""Lineage tags and the quality gate, shared by every way a model gets registered."""

from __future__ import annotations

import subprocess
from pathlib import Path

from jobs.errors import JobsError

ROOT = Path(__file__).resolve().parent.parent
MODEL_NAME = "heart-failure-automl"
DEFAULT_MIN_AUC = 0.80


def git_commit(root: Path = ROOT) -> str:
    """The checked-out commit, with '-dirty' when the tree has uncommitted changes; 'unknown' outside git."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")


def check_quality_gate(metrics: dict[str, float], threshold: float, metric: str = "AUC_weighted") -> float:
    """Refuse a model whose primary metric is below the threshold; return the metric's value."""
    if metric not in metrics:
        raise JobsError(f"the run has no {metric} metric to check against the gate (it has: "
                        f"{', '.join(sorted(metrics)) or 'none'})")
    value = float(metrics[metric])
    if value < threshold:
        raise JobsError(f"quality gate refused the model: {metric} {value:.4f} is below the threshold "
                        f"{threshold:.4f}. Nothing was registered. Train again (longer, other settings) or "
                        f"lower the gate with --min-auc.")
    return value


# Azure AutoML's metrics that go into a registered model's tags, by whichever path it is registered.
AZURE_LINEAGE_METRICS = ("AUC_weighted", "accuracy", "precision_score_weighted", "recall_score_weighted",
                         "f1_score_weighted")


def training_tags(data_version: str, settings_tags: dict[str, str], commit: str | None = None) -> dict[str, str]:
    """Tags on a training (or pipeline) job: what it trained on, from which code, with which settings."""
    return {"data_version": data_version, "git_commit": commit or git_commit(), **settings_tags}


def lineage_tags(*, metrics: dict[str, float], data_version: str, training_run: str, best_child: str,
                 settings_tags: dict[str, str] | None = None, commit: str | None = None) -> dict[str, str]:
    tags = {
        "training_run": training_run,
        "best_child_run": best_child,
        "data_version": data_version,
        "git_commit": commit or git_commit(),
        **{f"metric.{name}": f"{value:.6f}" for name, value in sorted(metrics.items())},
        **(settings_tags or {}),
    }
    return tags
