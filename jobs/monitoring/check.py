"""`jobs monitor`: compare a window of collected records with the deployed model's training data.

Signals, as Azure ML model monitoring names them: data drift (one metric per feature: numerical or
categorical), prediction drift (the predicted DEATH_EVENT against the model's answers on its own
training data), and the share of records the request schema refused. Each has a threshold; any
one crossed makes `jobs monitor` exit 1, so a scheduled job or CI can act on it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobs.dataset import default_schema
from jobs.errors import JobsError
from jobs.monitoring import drift
from jobs.options import problems as bound_problems

# The shipped dataset's fields: what monitoring compares (a model of another dataset is not monitored yet).
FEATURES = default_schema().features

# numpy and pandas load only where records are read or compared: the command line and every backend
# import Thresholds, and `status`, `stop`, `invoke` must start at once (issue 22).
if TYPE_CHECKING:
    import numpy as np

CATEGORICAL = tuple(f.name for f in FEATURES if f.kind == "boolean")
PREDICTION = "DEATH_EVENT"
DEFAULT_WINDOW_HOURS = 24 * 7
DEFAULT_MAX_REFUSED_SHARE = 0.05
# With 299 training rows and Azure's default thresholds, windows drawn from the training data itself
# flag some feature in 100% of draws at 100 records, 37% at 400, 18% at 600 and 1% at 1000 (100 draws
# each, measured for docs/monitoring.md): fewer records than this and "drift" is mostly sampling noise.
DEFAULT_MIN_RECORDS = 1000


@dataclass(frozen=True)
class Thresholds:
    """What counts as drift. Defaults: Azure ML's (see drift.py) and a 5% refused share."""

    numerical_metric: str = drift.DEFAULT_NUMERICAL[0]
    numerical: float = drift.DEFAULT_NUMERICAL[1]
    categorical_metric: str = drift.DEFAULT_CATEGORICAL[0]
    categorical: float = drift.DEFAULT_CATEGORICAL[1]
    prediction: float = drift.DEFAULT_CATEGORICAL[1]  # the categorical metric, on the predicted label
    max_refused_share: float = DEFAULT_MAX_REFUSED_SHARE
    min_records: int = DEFAULT_MIN_RECORDS

    def flag_values(self) -> dict[str, float]:
        """The bounded values by the command line's names for them (jobs/options.py declares their bounds)."""
        return {
            "numerical_threshold": self.numerical,
            "categorical_threshold": self.categorical,
            "prediction_threshold": self.prediction,
            "max_refused_share": self.max_refused_share,
            "min_records": self.min_records,
        }

    def problems(self) -> list[str]:
        """Every value a user could get wrong, each naming its flag and what is allowed."""
        found = []
        if self.numerical_metric not in drift.NUMERICAL_METRICS:
            found.append(
                f"--numerical-metric {self.numerical_metric!r} is not one of " + ", ".join(drift.NUMERICAL_METRICS)
            )
        if self.categorical_metric not in drift.CATEGORICAL_METRICS:
            found.append(
                f"--categorical-metric {self.categorical_metric!r} is not one of "
                + ", ".join(drift.CATEGORICAL_METRICS)
            )
        found += bound_problems(self.flag_values())  # each bound declared once, in jobs/options.py
        # A p-value is at most 1: a higher threshold would report drift on every window.
        for flag, metric, value in (
            ("--numerical-threshold", self.numerical_metric, self.numerical),
            ("--categorical-threshold", self.categorical_metric, self.categorical),
            ("--prediction-threshold", self.categorical_metric, self.prediction),
        ):
            if metric in drift.P_VALUE_METRICS and value > 1:
                found.append(f"{flag} {value:g} is a p-value for {metric}; allowed: above 0 and at most 1")
        return found


@dataclass
class Window:
    """The collected records of one model version inside the window."""

    features: dict[str, np.ndarray]
    predictions: np.ndarray
    refused_records: int
    refusal_reasons: Counter[tuple[str, str]]  # (field, reason) -> records refused for it
    other_models: int = 0
    unreadable_lines: int = 0
    start: str = ""
    end: str = ""

    @property
    def scored(self) -> int:
        return len(self.predictions)

    @property
    def refused_share(self) -> float:
        total = self.scored + self.refused_records
        return self.refused_records / total if total else 0.0


@dataclass
class Result:
    model: str
    window: Window
    thresholds: Thresholds
    features: list[drift.FeatureDrift]
    prediction: drift.FeatureDrift | None
    alerts: list[str] = field(default_factory=list)
    report: Path | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "window": {"start": self.window.start, "end": self.window.end},
            "scored_records": self.window.scored,
            "refused_records": self.window.refused_records,
            "refused_share": round(self.window.refused_share, 6),
            "refusal_reasons": [
                {"field": f, "reason": r, "count": c} for (f, r), c in sorted(self.window.refusal_reasons.items())
            ],
            "records_of_other_model_versions": self.window.other_models,
            "unreadable_lines": self.window.unreadable_lines,
            "features": [
                {
                    "feature": d.feature,
                    "kind": d.kind,
                    "metric": d.metric,
                    "value": round(d.value, 6),
                    "threshold": d.threshold,
                    "drifted": d.drifted,
                }
                for d in self.features
            ],
            "prediction": None
            if self.prediction is None
            else {
                "metric": self.prediction.metric,
                "value": round(self.prediction.value, 6),
                "threshold": self.prediction.threshold,
                "drifted": self.prediction.drifted,
            },
            "alerts": self.alerts,
        }


def _parse_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _number(value: Any) -> float:
    """A collected feature value: an int (flags and whole-number fields, collected since issue 20) or a float
    (every field before); anything else (a bool, a string) is not what the collector writes."""
    if type(value) not in (int, float):
        raise TypeError("a feature value is not a number")
    return float(value)


def _prediction(value: Any) -> bool:
    """A collected prediction: 0/1 (scoring/collect.py since issue 20, DEATH_EVENT's own type) or
    true/false (files collected before)."""
    if type(value) is bool:
        return value
    if type(value) is int and value in (0, 1):
        return value == 1
    raise TypeError("prediction is not 0/1 or a boolean")


def read_window(folder: Path, model: str, hours: float, now: dt.datetime | None = None) -> Window:
    """The records of `model` ("name:version") collected in the last `hours`, from every rotated file.

    A line that does not parse (a writer killed mid-line, before the next writer cut it off) is
    skipped and counted, never fatal.
    """
    import numpy as np

    now = now or dt.datetime.now(dt.UTC)
    since = now - dt.timedelta(hours=hours)
    columns: dict[str, list[float]] = {f.name: [] for f in FEATURES}
    predictions: list[bool] = []
    refused, others, unreadable = 0, 0, 0
    reasons: Counter[tuple[str, str]] = Counter()
    times: list[dt.datetime] = []
    files = [*sorted(folder.glob("scored-*.jsonl")), folder / "scored.jsonl"]
    for path in files:
        if not path.is_file():
            continue
        with path.open(encoding="utf-8", errors="replace") as handle:
            for line in handle:
                try:
                    record = json.loads(line)
                    when = _parse_time(record["time"])
                except (ValueError, KeyError, TypeError):
                    unreadable += 1
                    continue
                if not since <= when <= now:
                    continue
                if record.get("model") != model:
                    others += 1
                    continue
                # Every field read before anything is kept: a line with a wrong value type (written by
                # hand, or by another program) is skipped and counted like a torn one, never fatal.
                try:
                    if record.get("kind") == "refused":
                        count = int(record.get("records", 1))
                        found = [((r["field"], r["reason"]), int(r["count"])) for r in record.get("reasons", [])]
                        refused += count
                        for key, n in found:
                            reasons[key] += n
                    elif record.get("kind") == "scored":
                        values = {name: _number(record["features"][name]) for name in columns}
                        prediction = _prediction(record["prediction"])
                        for name, value in values.items():
                            columns[name].append(value)
                        predictions.append(prediction)
                    else:
                        raise ValueError("unknown kind")
                except (ValueError, KeyError, TypeError, AttributeError):
                    unreadable += 1
                    continue
                times.append(when)
    return Window(
        {k: np.array(v) for k, v in columns.items()},
        np.array(predictions, dtype=bool),
        refused,
        reasons,
        others,
        unreadable,
        min(times).isoformat() if times else since.isoformat(),
        max(times).isoformat() if times else now.isoformat(),
    )


def compare(
    model: str,
    window: Window,
    reference: dict[str, np.ndarray],
    reference_predictions: np.ndarray,
    thresholds: Thresholds,
) -> Result:
    """Every signal; `alerts` lists, in words, each threshold the window crossed."""
    results, alerts = [], []
    if window.scored >= thresholds.min_records:
        for name, values in reference.items():
            if name in CATEGORICAL:
                value = drift.categorical(thresholds.categorical_metric, values, window.features[name])
                results.append(
                    drift.FeatureDrift(
                        name, "categorical", thresholds.categorical_metric, value, thresholds.categorical
                    )
                )
            else:
                value = drift.numerical(thresholds.numerical_metric, values, window.features[name])
                results.append(
                    drift.FeatureDrift(name, "numerical", thresholds.numerical_metric, value, thresholds.numerical)
                )
        value = drift.categorical(thresholds.categorical_metric, reference_predictions, window.predictions)
        prediction = drift.FeatureDrift(
            PREDICTION, "categorical", thresholds.categorical_metric, value, thresholds.prediction
        )
        for d in [*results, prediction]:
            if d.drifted:
                side = "below" if d.metric in drift.P_VALUE_METRICS else "above"
                what = "prediction drift" if d is prediction else "data drift"
                alerts.append(f"{what}: {d.feature} {d.metric} {d.value:.4f} is {side} the threshold {d.threshold:g}")
    else:
        prediction = None
    if window.refused_share > thresholds.max_refused_share:
        alerts.append(
            f"refused records: {window.refused_share:.1%} of {window.scored + window.refused_records} "
            f"records were refused by the request schema, above {thresholds.max_refused_share:.1%}"
        )
    return Result(model, window, thresholds, results, prediction, alerts)


def load_reference(
    csv: Path, expected_version: str | None, drop: tuple[str, ...], given: str | None = None
) -> dict[str, np.ndarray]:
    """The training data's feature columns, after checking the file is the version the model was trained on.

    `expected_version` is the model's `data_version` lineage tag (jobs/dataset.py content_version);
    None skips the check (the model has no such tag). `given` names the flag the file came from, if any.
    """
    import pandas as pd

    from jobs.dataset import content_version

    if not csv.is_file():
        raise JobsError(f"the model's training data {csv} is gone; pass the same file with --reference FILE")
    found = content_version(csv, drop)
    if expected_version is not None and found != expected_version:
        if given:
            raise JobsError(
                f"{given} {csv} is data version {found}, but the model was trained on version {expected_version} "
                "(its data_version tag): it is another file, and drift against it would only measure the "
                "difference between the two; pass the file the model was trained on"
            )
        raise JobsError(
            f"{csv} is data version {found}, but the model was trained on version {expected_version} "
            "(its data_version tag): it changed since; pass the file the model was trained on with "
            "--reference FILE"
        )
    try:
        frame = pd.read_csv(csv, encoding="utf-8-sig")
    except (ValueError, UnicodeDecodeError) as error:
        raise JobsError(f"{csv} is not a readable CSV ({error})") from None
    # A file trained with --drop may lack a field; the others are still compared.
    if not any(f.name in frame.columns for f in FEATURES):
        raise JobsError(
            f"{csv} has none of the request fields ({', '.join(f.name for f in FEATURES)}); the "
            "reference must be the training CSV"
        )
    return {f.name: frame[f.name].astype(float).to_numpy() for f in FEATURES if f.name in frame.columns}
