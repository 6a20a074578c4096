"""A trained model's contract: what travels with it to every deployment, read by score.py at init().

`model-contract.json` (format 1) sits in the MLflow model's folder (local training writes it there), or, for a
model Azure AutoML wrote, in the deployment's code folder (`jobs deploy --target azure` stages it beside
score.py). One file, one source:

- `dataset`: the dataset's schema (scoring/schema.py), which decides what a request may carry;
- `inputs`: the model's input fields, as its MLflow signature names them;
- `training_ranges`: per input, the lowest and highest value in the training rows: an answer for a record
  outside them is given and flagged (`outside_training_range`), never refused;
- `operating_point`: the probability at or above which `result` is true, with the rule that chose it;
- `accuracy_table`: out-of-fold [threshold, TP, FP, TN, FN] rows (Azure AutoML's `accuracy_table` idea), so
  that a deploy can choose another operating point by sensitivity without the training data;
- `leaking_columns_used`: columns known to leak the outcome that the model uses anyway (the lesson's opt-in).

A deployment may override the operating point with SCORING_THRESHOLD and SCORING_THRESHOLD_RULE (what
`jobs deploy --threshold/--min-sensitivity` sets). Standard library only: it runs on Python 3.9.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:  # imported as scoring.contract by the jobs; as a neighbour of score.py (`contract`) in the endpoint
    from .schema import DatasetSchema, SchemaError, read_document  # type: ignore[import-not-found,unused-ignore]  # no package here
except ImportError:
    from schema import DatasetSchema, SchemaError, read_document  # type: ignore[no-redef,import-not-found,unused-ignore]  # flat name

CONTRACT_FILE = "model-contract.json"
CONTRACT_FORMAT = 1
THRESHOLD_VARIABLE = "SCORING_THRESHOLD"
THRESHOLD_RULE_VARIABLE = "SCORING_THRESHOLD_RULE"
# The default operating point: the highest threshold that keeps out-of-fold sensitivity at or above this.
DEFAULT_MIN_SENSITIVITY = 0.90


@dataclass(frozen=True)
class OperatingPoint:
    """`result` is true when the probability is at or above `threshold` (0 < threshold < 1); `rule` says who
    or what chose it, in words."""

    threshold: float
    rule: str


# An operating threshold lies strictly between these: at 0 every patient is flagged, at 1 none. Declared here
# (the endpoint checks SCORING_THRESHOLD with it) and read by the command line's --threshold (jobs/options.py).
THRESHOLD_ABOVE, THRESHOLD_BELOW = 0.0, 1.0


def threshold_problem(value: Any) -> str | None:
    """Why `value` cannot be an operating threshold; None when it can (a finite number above 0 and below 1)."""
    if type(value) not in (int, float) or not math.isfinite(value) or not THRESHOLD_ABOVE < value < THRESHOLD_BELOW:
        return f"{value!r} is not a threshold: expected a number above 0 and below 1"
    return None


def sensitivity_point(table: Sequence[Sequence[float]], min_sensitivity: float) -> OperatingPoint | None:
    """The highest threshold of an accuracy table whose sensitivity is at least `min_sensitivity`; None if none.

    `table` rows are [threshold, TP, FP, TN, FN], counted out-of-fold. The highest such threshold is the most
    specific one that still flags that share of the positives.
    """
    best = None
    for threshold, tp, _fp, _tn, fn in table:
        if tp + fn and tp / (tp + fn) >= min_sensitivity and 0 < threshold < 1:
            best = threshold if best is None else max(best, threshold)
    if best is None:
        return None
    return OperatingPoint(float(best), sensitivity_rule(min_sensitivity))


def sensitivity_rule(min_sensitivity: float) -> str:
    """The default rule's words, for a target sensitivity (0.9 -> "... at least 0.9")."""
    return f"highest threshold whose out-of-fold sensitivity is at least {min_sensitivity:g}"


@dataclass(frozen=True)
class ModelContract:
    """A model's contract (see the module docstring); `document` is the file's content."""

    dataset: DatasetSchema
    inputs: tuple[str, ...]
    training_ranges: dict[str, tuple[float, float]]
    operating_point: OperatingPoint | None
    accuracy_table: tuple[tuple[float, int, int, int, int], ...] = ()
    leaking_columns_used: tuple[str, ...] = ()
    document: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, document: Any, where: str = CONTRACT_FILE) -> ModelContract:
        """The contract in `document`; SchemaError listing what is wrong with it."""
        if not isinstance(document, dict) or document.get("format") != CONTRACT_FORMAT:
            raise SchemaError(where, [f"expected a model contract object with format {CONTRACT_FORMAT}"])
        dataset = DatasetSchema.from_dict(document.get("dataset"), f"{where} dataset")
        problems = []
        inputs = document.get("inputs")
        if not isinstance(inputs, list) or not all(isinstance(name, str) for name in inputs):
            problems.append("inputs must be the model's input field names")
            inputs = []
        unknown = [name for name in inputs if name not in dataset.feature_names]
        if unknown:
            problems.append(f"inputs {', '.join(unknown)} are not fields of the dataset schema")
        ranges: dict[str, tuple[float, float]] = {}
        for name, bounds in (document.get("training_ranges") or {}).items():
            if isinstance(bounds, list) and len(bounds) == 2 and all(type(b) in (int, float) for b in bounds):
                ranges[name] = (float(bounds[0]), float(bounds[1]))
            else:
                problems.append(f"training_ranges.{name} must be [lowest, highest]")
        point = None
        raw_point = document.get("operating_point")
        if raw_point is not None:
            threshold = raw_point.get("threshold") if isinstance(raw_point, dict) else None
            problem = threshold_problem(threshold)
            if problem:
                problems.append(f"operating_point.threshold: {problem}")
            else:
                assert isinstance(raw_point, dict)  # threshold_problem passed: a number from an object
                point = OperatingPoint(float(threshold or 0), str(raw_point.get("rule", "recorded with the model")))
        table = []
        for row in document.get("accuracy_table") or ():
            if isinstance(row, list) and len(row) == 5:
                table.append((float(row[0]), int(row[1]), int(row[2]), int(row[3]), int(row[4])))
            else:
                problems.append("accuracy_table rows must be [threshold, TP, FP, TN, FN]")
                break
        if problems:
            raise SchemaError(where, problems)
        return cls(
            dataset,
            tuple(inputs),
            ranges,
            point,
            tuple(table),
            tuple(document.get("leaking_columns_used") or ()),
            document,
        )

    @classmethod
    def load(cls, path: Path) -> ModelContract:
        """The contract file at `path`; SchemaError when it is unreadable or invalid."""
        return cls.from_dict(read_document(path), str(path))

    def deployed_point(self, environ: Mapping[str, str] | None = None) -> OperatingPoint:
        """The operating point this deployment answers at: the deployment's override (SCORING_THRESHOLD), else
        the model's own. SchemaError when the override is not a threshold or there is neither."""
        environ = os.environ if environ is None else environ
        text = environ.get(THRESHOLD_VARIABLE)
        if text:
            try:
                value = float(text)
            except ValueError:
                value = math.nan
            problem = threshold_problem(value)
            if problem:
                raise SchemaError(
                    THRESHOLD_VARIABLE, [f"{text!r} is not a threshold: expected a number above 0 and below 1"]
                )
            return OperatingPoint(value, environ.get(THRESHOLD_RULE_VARIABLE) or "set at deploy time")
        if self.operating_point is None:
            raise SchemaError(
                CONTRACT_FILE,
                [
                    "the model records no operating point and the deployment sets none; deploy with --threshold T "
                    "(0 < T < 1) or --min-sensitivity S"
                ],
            )
        return self.operating_point


def find_contract(model_dir: Path, code_dir: Path) -> Path | None:
    """The contract that travels with this deployment: in the model's folder, else beside score.py; None if neither."""
    for folder in (model_dir, code_dir):
        if (folder / CONTRACT_FILE).is_file():
            return folder / CONTRACT_FILE
    return None
