"""The request schema of the scoring endpoint: the lesson's 12 features, their types and bounds.

Pure Python (no numpy, no pandas) so that validation is cheap and can be imported anywhere.
Every problem in a request is collected, not only the first, so a client fixes them in one go.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_RECORDS = 1000
MAX_LISTED_ERRORS = 100
METHODS = ("predict", "predict_proba")


@dataclass(frozen=True)
class Feature:
    name: str
    kind: str  # "boolean", "integer" or "number"
    minimum: float = 0.0
    maximum: float = 1.0
    description: str = ""


# Bounds are what is physically possible in a living patient, not the training range: a
# value outside them is a unit mistake or a typo, never a rare patient.
FEATURES: tuple[Feature, ...] = (
    Feature("age", "number", 0, 130, "Age in years (the oldest verified human lived 122)."),
    Feature("anaemia", "boolean", description="Decrease of red blood cells or hemoglobin."),
    Feature("creatinine_phosphokinase", "integer", 0, 500_000,
            "CPK enzyme in the blood, mcg/L (normal 10-120; severe rhabdomyolysis reaches 100,000s)."),
    Feature("diabetes", "boolean", description="The patient has diabetes."),
    Feature("ejection_fraction", "integer", 0, 100, "Percentage of blood leaving the heart at each contraction."),
    Feature("high_blood_pressure", "boolean", description="The patient has hypertension."),
    Feature("platelets", "number", 0, 3_000_000,
            "Platelets, kiloplatelets/mL (normal 150,000-450,000; extreme thrombocytosis stays below 3,000,000)."),
    Feature("serum_creatinine", "number", 0, 40,
            "Serum creatinine, mg/dL (normal 0.6-1.3; end-stage renal failure rarely exceeds 20)."),
    Feature("serum_sodium", "integer", 80, 200,
            "Serum sodium, mEq/L (normal 135-145; survived extremes are about 95 and 190)."),
    Feature("sex", "boolean", description="true for man, false for woman (the dataset's 1 and 0)."),
    Feature("smoking", "boolean", description="The patient smokes."),
    Feature("time", "integer", 0, 3650, "Follow-up period in days (at most ten years)."),
)
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
_BY_NAME = {f.name: f for f in FEATURES}
_TRUE = {"true", "yes", "1"}
_FALSE = {"false", "no", "0"}

# The lesson's request, as the lesson sends it (every value a string); `jobs invoke` sends it too.
SAMPLE_REQUEST_FILE = Path(__file__).resolve().parent / "sample-request.json"
SAMPLE_RECORD: dict[str, str] = json.loads(SAMPLE_REQUEST_FILE.read_text())["data"][0]


class RequestError(ValueError):
    """The request is malformed; `errors` says where (record index, field) and what is wrong."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors
        super().__init__(f"{len(errors)} problem(s) in the request")

    def body(self) -> dict[str, Any]:
        listed = self.errors[:MAX_LISTED_ERRORS]
        body: dict[str, Any] = {"message": f"invalid request: {len(self.errors)} problem(s)", "errors": listed}
        if len(self.errors) > len(listed):
            body["errors_not_listed"] = len(self.errors) - len(listed)
        return body


@dataclass(frozen=True)
class ScoringRequest:
    rows: list[list[float]]  # one row per record, in FEATURE_NAMES order
    method: str  # "predict" or "predict_proba"


def _problem(record: int | None, field: str | None, problem: str) -> dict[str, Any]:
    return {"record": record, "field": field, "problem": problem}


def _number(feature: Feature, value: Any) -> tuple[float | None, str | None]:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None, f"expected a number, got {_json_type(value)}"
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None, f"expected a number, got the string {value[:40]!r}"
    else:
        number = float(value)
    if math.isnan(number) or math.isinf(number):
        return None, "NaN and infinity are not allowed"
    if feature.kind == "integer" and not number.is_integer():
        return None, f"expected a whole number, got {number:g}"
    if not feature.minimum <= number <= feature.maximum:
        return None, f"{number:g} is outside the possible range {feature.minimum:g} to {feature.maximum:g}"
    return number, None


def _boolean(value: Any) -> tuple[float | None, str | None]:
    allowed = "expected true/false, 1/0, or the strings \"true\"/\"false\"/\"yes\"/\"no\""
    if isinstance(value, bool):
        return float(value), None
    if isinstance(value, (int, float)) and value in (0, 1):
        return float(value), None
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return 1.0, None
        if lowered in _FALSE:
            return 0.0, None
        return None, f"{allowed}, got the string {value[:40]!r}"
    return None, f"{allowed}, got {_json_type(value)} {value!r}"[:200]


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(type(value), "a number")


def parse_records(records: Any, where: str) -> list[list[float]]:
    """Validate a list of feature records; raise RequestError listing every problem."""
    if not isinstance(records, list):
        raise RequestError([_problem(None, where, f"expected an array of records, got {_json_type(records)}")])
    if not records:
        raise RequestError([_problem(None, where, "the array of records is empty; send 1 to "
                                     f"{MAX_RECORDS} records")])
    if len(records) > MAX_RECORDS:
        raise RequestError([_problem(None, where, f"{len(records)} records is more than the limit of "
                                     f"{MAX_RECORDS} per request; split the request")])
    errors: list[dict[str, Any]] = []
    rows: list[list[float]] = []
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            errors.append(_problem(index, None, f"expected an object of features, got {_json_type(record)}"))
            continue
        row: list[float] = []
        for feature in FEATURES:
            if feature.name not in record:
                errors.append(_problem(index, feature.name, "missing"))
                continue
            value, problem = (_boolean(record[feature.name]) if feature.kind == "boolean"
                              else _number(feature, record[feature.name]))
            if problem:
                errors.append(_problem(index, feature.name, problem))
            else:
                row.append(value)  # type: ignore[arg-type]
        # Unknown fields are rejected: a misspelt or extra column (a label, an ID) usually means
        # the client's schema is not ours, and silently ignoring it would hide that.
        for name in record:
            if name not in _BY_NAME:
                errors.append(_problem(index, str(name)[:100], "unknown field; allowed fields are "
                                       + ", ".join(FEATURE_NAMES)))
        rows.append(row)
    if errors:
        raise RequestError(errors)
    return rows


def _split_to_records(split: Any) -> list[Any]:
    """Azure ML's MLflow form: {"columns": [...], "index": [...], "data": [[...], ...]}."""
    if isinstance(split, list):  # a list of records is accepted here too
        return split
    if not isinstance(split, dict):
        raise RequestError([_problem(None, "input_data", "expected an object with columns and data, got "
                                     + _json_type(split))])
    columns, data = split.get("columns"), split.get("data")
    problems = []
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        problems.append(_problem(None, "input_data.columns", "expected an array of column names"))
    elif len(set(columns)) != len(columns):
        problems.append(_problem(None, "input_data.columns", "column names repeat"))
    if not isinstance(data, list):
        problems.append(_problem(None, "input_data.data", "expected an array of rows"))
    if problems:
        raise RequestError(problems)
    records: list[Any] = []
    bad_rows = []
    for index, row in enumerate(data):
        if isinstance(row, list) and len(row) == len(columns):
            records.append(dict(zip(columns, row)))
        else:
            bad_rows.append(_problem(index, None, f"expected a row of {len(columns)} values, one per column"))
    if bad_rows:
        raise RequestError(bad_rows)
    return records


def _method(global_parameters: Any) -> str:
    if global_parameters is None:
        return "predict"
    if not isinstance(global_parameters, dict):
        raise RequestError([_problem(None, "GlobalParameters", "expected an object such as "
                                     '{"method": "predict_proba"}')])
    method = global_parameters.get("method", "predict")
    if method not in METHODS:
        raise RequestError([_problem(None, "GlobalParameters.method", f"{str(method)[:40]!r} is not one of "
                                     + ", ".join(METHODS))])
    return method


def parse_request(
    data: Any = None, input_data: Any = None, inputs: Any = None, global_parameters: Any = None
) -> ScoringRequest:
    """Turn one of the three accepted request forms into validated rows.

    - the lesson's: {"data": [record, ...]}
    - Azure ML's MLflow form: {"input_data": {"columns": [...], "index": [...], "data": [[...]]}}
    - AutoML's generated scoring file: {"Inputs": {"data": [record, ...]}, "GlobalParameters": {...}}
    """
    given = [name for name, value in (("data", data), ("input_data", input_data), ("Inputs", inputs))
             if value is not None]
    if len(given) != 1:
        found = ", ".join(given) if given else "none of them"
        raise RequestError([_problem(None, None, "expected exactly one of the keys data, input_data or Inputs "
                                     f"in the JSON body; found {found}")])
    method = _method(global_parameters)
    if data is not None:
        return ScoringRequest(parse_records(data, "data"), method)
    if input_data is not None:
        return ScoringRequest(parse_records(_split_to_records(input_data), "input_data"), method)
    if not isinstance(inputs, dict) or "data" not in inputs:
        raise RequestError([_problem(None, "Inputs", 'expected an object {"data": [record, ...]}')])
    return ScoringRequest(parse_records(inputs["data"], "Inputs.data"), method)


def swagger_records_schema() -> dict[str, Any]:
    """OpenAPI schema of an array of records, with the lesson's sample as its example."""
    properties: dict[str, Any] = {}
    for f in FEATURES:
        if f.kind == "boolean":
            properties[f.name] = {"type": "boolean", "description": f.description
                                  + " Also accepted: 1/0 and the strings true/false/yes/no in any case."}
        else:
            properties[f.name] = {"type": f.kind, "minimum": f.minimum, "maximum": f.maximum,
                                  "description": f.description + " Also accepted as a numeric string."}
    return {
        "type": "array",
        "minItems": 1,
        "maxItems": MAX_RECORDS,
        "items": {"type": "object", "required": list(FEATURE_NAMES), "properties": properties,
                  "additionalProperties": False},
        "example": [SAMPLE_RECORD],
    }
