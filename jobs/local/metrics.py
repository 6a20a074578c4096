"""Azure AutoML's metric names computed from probabilities of the positive class (DEATH_EVENT)."""

from __future__ import annotations

from typing import Any

import pandas as pd


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


def primary_score(metric: str, y: Any, proba: Any) -> float:
    from sklearn.metrics import accuracy_score, average_precision_score, roc_auc_score

    if metric == "accuracy":
        return float(accuracy_score(y, (proba >= 0.5).astype(int)))
    if metric == "average_precision_score_weighted":
        return float(average_precision_score(y, proba, average="weighted"))
    return float(roc_auc_score(y, proba, average="weighted"))
