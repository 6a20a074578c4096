"""Building a model's contract (scoring/contract.py reads it in the endpoint): one document, one source.

Local training writes it into the MLflow model's folder, so it is registered and deployed with the model;
`jobs deploy --target azure` stages it beside score.py for a model Azure AutoML wrote.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jobs.errors import JobsError
from jobs.options import OPTIONS
from scoring.contract import (
    CONTRACT_FILE,
    CONTRACT_FORMAT,
    DEFAULT_MIN_SENSITIVITY,
    OperatingPoint,
    sensitivity_point,
    threshold_problem,
)
from scoring.schema import DatasetSchema

# Out-of-fold probabilities are rounded to this many places for the accuracy table's thresholds: finer
# steps change no patient's side of the line for a table of a few hundred rows.
THRESHOLD_DECIMALS = 4


def accuracy_table(y: Any, proba: Any) -> list[list[float]]:
    """[threshold, TP, FP, TN, FN] at every distinct out-of-fold probability (rounded to THRESHOLD_DECIMALS),
    lowest threshold first; "positive" means probability >= threshold. y: 0/1 labels; proba: one per label."""
    y = np.asarray(y).astype(int)
    proba = np.asarray(proba, dtype=float)
    rows = []
    positives = int(y.sum())
    for threshold in np.unique(np.round(proba, THRESHOLD_DECIMALS)):
        flagged = proba >= threshold
        tp = int(np.sum(flagged & (y == 1)))
        fp = int(np.sum(flagged & (y == 0)))
        rows.append([float(threshold), tp, fp, len(y) - positives - fp, positives - tp])
    return rows


def training_ranges(frame: Any, columns: Sequence[str]) -> dict[str, list[float]]:
    """{column: [lowest, highest]} of the training rows, for the model's input columns (a pandas frame)."""
    return {name: [float(frame[name].min()), float(frame[name].max())] for name in columns}


def default_point(table: Sequence[Sequence[float]], min_sensitivity: float = DEFAULT_MIN_SENSITIVITY) -> OperatingPoint:
    """The operating point `train` records: the highest threshold whose out-of-fold sensitivity is at least
    `min_sensitivity`; when none above 0 reaches it, the lowest threshold above 0, with a rule that says so.
    JobsError when the model gives no probability strictly between 0 and 1."""
    point = sensitivity_point(table, min_sensitivity)
    if point is not None:
        return point
    # Probabilities of 0 for some who died (a model that is sure of them): no threshold above 0 flags enough.
    # The lowest one flags the most; the rule says what it reaches.
    usable = [row for row in table if 0 < row[0] < 1 and row[1] + row[4]]
    if not usable:
        raise JobsError("the model gives no probability strictly between 0 and 1: it cannot have an operating point")
    threshold, tp, _fp, _tn, fn = min(usable, key=lambda row: row[0])
    return OperatingPoint(
        float(threshold),
        f"lowest threshold above 0 (out-of-fold sensitivity {tp / (tp + fn):.2f}; none reaches {min_sensitivity:g})",
    )


BOTH_POINT_FLAGS = "give --threshold or --min-sensitivity, not both: each chooses the operating point"


def point_flag_problems(threshold: float | None, min_sensitivity: float | None) -> list[str]:
    """Why --threshold and --min-sensitivity cannot be used as given ([] when they can): outside (0, 1), outside
    (0, 1], or both given."""
    problems = []
    if threshold is not None and min_sensitivity is not None:
        problems.append(BOTH_POINT_FLAGS)
    problem = threshold_problem(threshold) if threshold is not None else None
    if problem:
        problems.append(f"--threshold {problem}")
    problem = OPTIONS["min_sensitivity"].problem(min_sensitivity)
    if problem:
        problems.append(problem)
    return problems


def check_point_flags(threshold: float | None, min_sensitivity: float | None) -> None:
    """JobsError for --threshold outside (0, 1), --min-sensitivity outside (0, 1], or both given."""
    problems = point_flag_problems(threshold, min_sensitivity)
    if problems:
        raise JobsError("; ".join(problems))


def chosen_point(
    threshold: float | None, min_sensitivity: float | None, table: Sequence[Sequence[float]], recorded: Any
) -> OperatingPoint | None:
    """The operating point a deploy asks for: --threshold as given, or --min-sensitivity applied to the model's
    out-of-fold accuracy table; None when neither is given (the model's own then serves).

    JobsError for a threshold outside (0, 1), a sensitivity outside (0, 1], both given, or --min-sensitivity for
    a model without an accuracy table (`recorded` names where the model came from, for the message).
    """
    check_point_flags(threshold, min_sensitivity)
    if threshold is not None:
        return OperatingPoint(float(threshold), f"--threshold {threshold:g}, chosen at deploy time")
    if min_sensitivity is None:
        return None
    if not table:
        raise JobsError(
            f"--min-sensitivity needs the model's out-of-fold accuracy table, and {recorded} has none; "
            "give --threshold T instead"
        )
    point = sensitivity_point(table, min_sensitivity)
    if point is None:
        raise JobsError(f"no threshold of {recorded} reaches an out-of-fold sensitivity of {min_sensitivity:g}")
    return OperatingPoint(point.threshold, point.rule + ", chosen at deploy time")


def contract_document(
    schema: DatasetSchema,
    inputs: Sequence[str],
    ranges: dict[str, list[float]],
    point: OperatingPoint | None,
    table: Sequence[Sequence[float]] = (),
    leaking_used: Sequence[str] = (),
) -> dict[str, Any]:
    """The contract (scoring/contract.py, format 1) as a JSON-ready document."""
    return {
        "format": CONTRACT_FORMAT,
        "dataset": schema.document,
        "inputs": list(inputs),
        "training_ranges": ranges,
        "operating_point": None if point is None else {"threshold": point.threshold, "rule": point.rule},
        "accuracy_table": [list(row) for row in table],
        "leaking_columns_used": list(leaking_used),
    }


def write_contract(folder: Path, document: dict[str, Any]) -> Path:
    """Write `document` as folder/model-contract.json; return its path."""
    path = folder / CONTRACT_FILE
    path.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
