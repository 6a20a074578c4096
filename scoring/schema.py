"""The request schema of the scoring endpoint: the lesson's 12 features, their types and bounds.

Pure Python (no numpy, no pandas) so that validation is cheap and can be imported anywhere.
Every problem in a request is collected, not only the first, so a client fixes them in one go.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_RECORDS = 1000
MAX_LISTED_ERRORS = 100
METHODS = ("predict", "predict_proba")
# A numeric string longer than this is not a value a client meant to send (the longest
# plausible one, "263358.03" or "1.40e+00", is about ten characters).
MAX_NUMBER_CHARS = 40


@dataclass(frozen=True)
class Unit:
    """Another unit clients use for a field: `factor` converts a value in it to the field's unit."""

    name: str
    factor: float


@dataclass(frozen=True)
class Feature:
    name: str
    kind: str  # "boolean", "integer" or "number"
    minimum: float = 0.0
    maximum: float = 1.0
    description: str = ""
    unit: str = ""
    # Units a mistaken client sends instead; a value impossible in `unit` but possible once
    # converted from one of these gets an error that says so.
    other_units: tuple[Unit, ...] = ()


# Bounds are what a living patient can have, not the training range: a value outside them is
# a unit mistake, a placeholder or a typo, never a rare patient. Sources: README, "The scoring API".
FEATURES: tuple[Feature, ...] = (
    Feature(
        "age",
        "number",
        0,
        130,
        "Age in years (the oldest verified human lived 122).",
        "years",
        (Unit("months", 1 / 12),),
    ),
    Feature("anaemia", "boolean", description="Decrease of red blood cells or hemoglobin."),
    # No living patient has no CK activity at all: 0 is a placeholder. Rheumatoid arthritis
    # patients average about 13 U/L, so 1 leaves room for every measured value. Survived
    # rhabdomyolysis has been reported above 700,000 U/L.
    Feature(
        "creatinine_phosphokinase",
        "integer",
        1,
        1_000_000,
        "CPK enzyme in the blood, mcg/L (U/L; normal 10-120; survived rhabdomyolysis above 700,000).",
        "U/L",
        (Unit("µkat/L", 60),),
    ),
    Feature("diabetes", "boolean", description="The patient has diabetes."),
    # Patients with an ejection fraction at or below 10% have been followed for years; 0 is no
    # heartbeat, and a value below 1 is a fraction, not a percentage.
    Feature(
        "ejection_fraction",
        "integer",
        5,
        100,
        "Percentage of blood leaving the heart at each contraction.",
        "%",
        (Unit("a fraction", 100),),
    ),
    Feature("high_blood_pressure", "boolean", description="The patient has hypertension."),
    # Counts below 5,000/µL occur in severe immune thrombocytopenia; analysers report down to
    # about 1,000/µL. Below that, the value is in thousands per µL (10³/µL, the same number as 10⁹/L).
    Feature(
        "platelets",
        "number",
        1_000,
        3_000_000,
        "Platelets per µL (the dataset's kiloplatelets/mL; normal 150,000-450,000; extreme thrombocytosis "
        "stays below 3,000,000).",
        "platelets per µL",
        (Unit("thousands per µL (10³/µL or 10⁹/L)", 1000),),
    ),
    # The lowest creatinine of a living adult, with very little muscle, is about 0.1-0.2 mg/dL.
    Feature(
        "serum_creatinine",
        "number",
        0.1,
        40,
        "Serum creatinine, mg/dL (normal 0.6-1.3; end-stage renal failure rarely exceeds 20).",
        "mg/dL",
        (Unit("µmol/L", 1 / 88.4), Unit("mmol/L", 1000 / 88.4)),
    ),
    # The lowest sodium a patient has survived is 98-99 mmol/L (case reports); the highest about 190.
    Feature(
        "serum_sodium",
        "integer",
        80,
        200,
        "Serum sodium, mEq/L (normal 135-145; survived extremes are about 98 and 190).",
        "mEq/L",
        (Unit("mg/dL", 10 / 22.99), Unit("mg/L", 1 / 22.99)),
    ),
    Feature("sex", "boolean", description="true for man, false for woman (the dataset's 1 and 0)."),
    Feature("smoking", "boolean", description="The patient smokes."),
    # Weeks or months can be neither told from days nor refused: 4 months is 4 possible days.
    Feature("time", "integer", 0, 3650, "Follow-up period in days (at most ten years).", "days"),
)
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
_BY_NAME = {f.name: f for f in FEATURES}
_TRUE = {"true", "yes"}
_FALSE = {"false", "no"}
_FLAG_ALLOWED = (
    'expected true/false, 1/0 (as JSON numbers or numeric strings such as "1.0"), or the strings '
    '"true"/"false"/"yes"/"no"'
)
# A numeric string is a JSON number with an optional "+" and optional surrounding whitespace
# (ASCII only). Python's float() alone would also take "1_000", "١٢", "nan" and "infinity".
_NUMERIC = re.compile(r"\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\s*", re.ASCII)
_NUMBER_RULE = 'digits with an optional sign, decimal point and exponent, such as "38", "1.40" or "2.6e5"'

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


class BodyError(ValueError):
    """The HTTP body is not a JSON document we can read; the message says why and where."""


@dataclass(frozen=True)
class ScoringRequest:
    rows: list[list[float]]  # one row per record, in FEATURE_NAMES order
    method: str  # "predict" or "predict_proba"


class _Bad(Exception):
    """One field's problem, raised from the per-value converters (the rare path)."""


def _problem(record: int | None, field: str | None, problem: str) -> dict[str, Any]:
    return {"record": record, "field": field, "problem": problem}


def _shown(value: Any) -> str:
    """A short description of a JSON value for an error message; never the repr of a container."""
    if isinstance(value, str):
        return f"the string {value[:40]!r}" + ("..." if len(value) > 40 else "")
    if isinstance(value, (dict, list)) or value is None:
        return _json_type(value)
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    return f"the number {_format(value)}"


def _format(number: float | int) -> str:
    if isinstance(number, int) and not isinstance(number, bool):
        text = str(number) if number.bit_length() < 128 else f"a number of {len(str(abs(number)))} digits"
        return text
    return f"{number:g}"


_STRING_NUMBERS: dict[str, float] = {}


def _string_number(text: str) -> float:
    """The value of a numeric string (see _NUMERIC), or _Bad saying what is wrong with it."""
    cached = _STRING_NUMBERS.get(text)
    if cached is not None:
        return cached
    if len(text) > MAX_NUMBER_CHARS:
        raise _Bad(f"expected a number, got a string of {len(text)} characters")
    # float() alone also takes underscores, other scripts' digits, "nan" and "inf"; without
    # those, a finite float() is exactly _NUMERIC, and cheaper than the regex.
    try:
        number = float(text) if text.isascii() and "_" not in text else None
    except ValueError:
        number = None
    if number is not None and not math.isfinite(number) and _NUMERIC.fullmatch(text) is None:
        number = None  # "nan", "inf" ("1e999" is a decimal, only too large: the range check says so)
    if number is None:
        stripped = text.strip().lower().lstrip("+-")
        if stripped in ("nan", "inf", "infinity"):
            raise _Bad("NaN and infinity are not allowed")
        if "," in text:
            raise _Bad(
                f"expected a number, got the string {text!r}: use a dot for decimals and no thousands separators"
            )
        raise _Bad(f"expected a number ({_NUMBER_RULE}), got the string {text!r}")
    # Requests repeat their strings (flags, small whole numbers); a bounded memo keeps
    # validation of a 1000-record request to a dictionary lookup per value.
    if len(_STRING_NUMBERS) >= 10_000:
        _STRING_NUMBERS.clear()
    _STRING_NUMBERS[text] = number
    return number


def _g(number: float) -> str:
    """A number for a message: whole numbers without exponent (3000000, not 3e+06)."""
    number = float(number)
    return str(int(number)) if number.is_integer() and abs(number) < 1e15 else f"{number:.6g}"


def _unit_hint(feature: Feature, number: float) -> str:
    for unit in feature.other_units:
        converted = number * unit.factor
        if feature.minimum <= converted <= feature.maximum:
            return (
                f"; {feature.name} is in {feature.unit}, and {_g(number)} looks like {unit.name}, which would be "
                f"{_g(float(f'{converted:.3g}'))} {feature.unit}"
            )
    return ""


def _out_of_range(feature: Feature, shown: str) -> str:
    return f"{shown} is outside the possible range {_g(feature.minimum)} to {_g(feature.maximum)} {feature.unit}"


def _number(feature: Feature, value: Any) -> float:
    kind = type(value)
    if kind is str:
        number = _string_number(value)
    elif kind is float:
        number = value
    elif kind is int:
        try:
            number = float(value)
        except OverflowError:  # a JSON integer beyond 1e308
            raise _Bad(_out_of_range(feature, _format(value))) from None
    else:
        raise _Bad(f"expected a number, got {_shown(value)}")
    if feature.minimum <= number <= feature.maximum:
        if feature.kind == "integer" and not number.is_integer():
            raise _Bad(f"expected a whole number of {feature.unit}, got {_g(number)}" + _unit_hint(feature, number))
        return number
    if number != number or number in (math.inf, -math.inf):
        if kind is str and number == number:  # "1e999" overflows to infinity: a number, just far too large
            raise _Bad(_out_of_range(feature, value.strip()))
        raise _Bad("NaN and infinity are not allowed")
    raise _Bad(_out_of_range(feature, _g(number)) + _unit_hint(feature, number))


_FLAG_STRINGS: dict[str, float] = {}


def _boolean(value: Any) -> float:
    kind = type(value)
    if kind is bool:
        return 1.0 if value else 0.0
    if kind is str:
        known = _FLAG_STRINGS.get(value)
        if known is not None:
            return known
        lowered = value.strip().lower()
        if lowered in _TRUE:
            flag = 1.0
        elif lowered in _FALSE:
            flag = 0.0
        else:
            # The same numeric strings a number field takes, when they equal 1 or 0: clients
            # that write the lesson's all-string records from a float column send "1.0".
            try:
                flag = _string_number(value)
            except _Bad:
                raise _Bad(f"{_FLAG_ALLOWED}, got {_shown(value)}") from None
            if flag not in (0.0, 1.0):
                raise _Bad(f"{_FLAG_ALLOWED}, got {_shown(value)}")
            flag = abs(flag)  # "-0" is 0
        if len(_FLAG_STRINGS) < 1000:
            _FLAG_STRINGS[value] = flag
        return flag
    if (kind is int or kind is float) and value in (0, 1):
        return float(abs(value))
    raise _Bad(f"{_FLAG_ALLOWED}, got {_shown(value)}")


def _converter(feature: Feature) -> tuple[Any, dict[str, float]]:
    """The feature's value converter, and its memo of strings already validated for it."""
    memo: dict[str, float] = {}
    check = _boolean if feature.kind == "boolean" else (lambda value: _number(feature, value))

    def convert(value: Any) -> float:
        number = check(value)
        if type(value) is str:  # never numbers: True == 1 would find 1's entry
            if len(memo) >= 4096:
                memo.clear()
            memo[value] = number
        return number

    return convert, memo


_CONVERTERS: tuple[tuple[str, Any, dict[str, float]], ...] = tuple((f.name, *_converter(f)) for f in FEATURES)


def _typed_column(feature: Feature, column: list[Any]) -> list[float] | None:
    """A column of JSON numbers (and booleans, for a flag) checked as a whole; None if any value fails."""
    kinds = set(map(type, column))
    if feature.kind == "boolean":
        if not kinds <= {bool, int, float} or not all(value == 0 or value == 1 for value in column):
            return None
        return [1.0 if value else 0.0 for value in column]
    if not kinds <= {int, float}:
        return None
    try:
        numbers = list(map(float, column))
    except OverflowError:
        return None
    low, high = feature.minimum, feature.maximum
    if not all(low <= number <= high for number in numbers):  # NaN fails too
        return None
    if feature.kind == "integer" and not all(map(float.is_integer, numbers)):
        return None
    return numbers


def _rows_fast(records: list[Any]) -> list[list[float]] | None:
    """Rows of a request whose records are all plain objects of exactly the 12 fields, column by column.

    A column whose strings were all seen before costs one dictionary lookup per value. Returns
    None at the first problem of any kind: the record-by-record path then finds and words them all.
    """
    width = len(_CONVERTERS)
    for record in records:
        if type(record) is not dict or len(record) != width:
            return None
    columns = []
    try:
        for feature, (name, convert, memo) in zip(FEATURES, _CONVERTERS):
            column = [record[name] for record in records]
            if type(column[0]) is str:
                try:
                    columns.append([memo[value] if value in memo else convert(value) for value in column])
                    continue
                except TypeError:  # an unhashable value (a list) further down
                    pass
            else:
                typed = _typed_column(feature, column)
                if typed is not None:
                    columns.append(typed)
                    continue
            columns.append([convert(value) for value in column])
    except (KeyError, _Bad):
        return None
    return [list(row) for row in zip(*columns)]


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(type(value), "a number")


def parse_records(records: Any, where: str) -> list[list[float]]:
    """Validate a list of feature records into rows of floats in FEATURE_NAMES order.

    Raises RequestError listing every problem (record index, field, what is allowed).
    """
    if not isinstance(records, list):
        raise RequestError([_problem(None, where, f"expected an array of records, got {_json_type(records)}")])
    if not records:
        raise RequestError([_problem(None, where, f"the array of records is empty; send 1 to {MAX_RECORDS} records")])
    if len(records) > MAX_RECORDS:
        raise RequestError(
            [
                _problem(
                    None,
                    where,
                    f"{len(records)} records is more than the limit of {MAX_RECORDS} per request; split the request",
                )
            ]
        )
    fast = _rows_fast(records)
    if fast is not None:
        return fast
    errors: list[dict[str, Any]] = []
    rows: list[list[float]] = []
    width = len(_CONVERTERS)
    for index, record in enumerate(records):
        if type(record) is not dict:
            errors.append(_problem(index, None, f"expected an object of features, got {_json_type(record)}"))
            continue
        row: list[float] = []
        for name, convert, _memo in _CONVERTERS:
            try:
                row.append(convert(record[name]))
            except KeyError:
                errors.append(_problem(index, name, "missing"))
            except _Bad as bad:
                errors.append(_problem(index, name, str(bad)))
        if len(record) != width or len(row) != width:
            # Unknown fields are rejected: a misspelt or extra column (a label, an ID) usually
            # means the client's schema is not ours, and silently ignoring it would hide that.
            for name in record:
                if name not in _BY_NAME:
                    errors.append(
                        _problem(
                            index, str(name)[:100], "unknown field; allowed fields are " + ", ".join(FEATURE_NAMES)
                        )
                    )
        rows.append(row)
    if errors:
        raise RequestError(errors)
    return rows


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise BodyError(
                    f"the key {key[:100]!r} appears more than once in one object; which value is meant is ambiguous"
                )
            seen.add(key)
    return obj


def parse_body(body: bytes) -> Any:
    """Parse an HTTP body as JSON the way the endpoint accepts it, or raise BodyError saying why.

    Accepted: UTF-8 (a byte-order mark is allowed: PowerShell and Excel write one). Refused, each
    with its own message: other encodings, invalid JSON, an object with a repeated key (JSON leaves
    the meaning open), nesting deeper than Python's parser can follow, and integers longer than
    Python converts (4300 digits, sys.get_int_max_str_digits).
    """
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise BodyError(f"the body is not UTF-8 text (invalid byte at offset {error.start})") from None
    if not text.strip():
        raise BodyError('the body is empty; expected a JSON object such as {"data": [record, ...]}')
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as error:
        raise BodyError(
            f"the body is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    except RecursionError:
        raise BodyError("the body nests arrays or objects too deeply to be a request") from None
    except BodyError:
        raise
    except ValueError as error:  # the int-str conversion limit
        raise BodyError(f"the body has a number too long to read ({str(error)[:80]})") from None


def _split_to_records(split: Any) -> list[Any]:
    """Azure ML's MLflow form: {"columns": [...], "index": [...], "data": [[...], ...]}."""
    if isinstance(split, list):  # a list of records is accepted here too
        return split
    if not isinstance(split, dict):
        raise RequestError(
            [_problem(None, "input_data", "expected an object with columns and data, got " + _json_type(split))]
        )
    columns, data = split.get("columns"), split.get("data")
    problems = []
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        problems.append(_problem(None, "input_data.columns", "expected an array of column names"))
    elif len(set(columns)) != len(columns):
        problems.append(_problem(None, "input_data.columns", "column names repeat"))
    if not isinstance(data, list):
        problems.append(_problem(None, "input_data.data", "expected an array of rows"))
    # The isinstance tests only narrow the types: problems is non-empty whenever one of them is true.
    if problems or not isinstance(columns, list) or not isinstance(data, list):
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
    kind = type(global_parameters)
    if kind is int or kind is float:
        # Azure ML's AutoML "Consume" samples send "GlobalParameters": 1.0 as a placeholder
        # for "no parameters"; people copy them as they are. Source: Microsoft Learning's AI-900 lab
        # "Explore automated machine learning" test body (microsoftlearning.github.io/AI-900-AIFundamentals).
        return "predict"
    if kind is not dict:
        raise RequestError(
            [
                _problem(
                    None,
                    "GlobalParameters",
                    "expected an object such as "
                    f'{{"method": "predict_proba"}} (or a number, read as no parameters), got '
                    f"{_shown(global_parameters)}",
                )
            ]
        )
    method = global_parameters.get("method", "predict")
    if type(method) is not str or method not in METHODS:
        raise RequestError(
            [_problem(None, "GlobalParameters.method", f"{_shown(method)} is not one of " + ", ".join(METHODS))]
        )
    return method


def parse_request(
    data: Any = None, input_data: Any = None, inputs: Any = None, global_parameters: Any = None
) -> ScoringRequest:
    """Turn one of the three accepted request forms into validated rows.

    - the lesson's: {"data": [record, ...]}
    - Azure ML's MLflow form: {"input_data": {"columns": [...], "index": [...], "data": [[...]]}}
    - AutoML's generated scoring file: {"Inputs": {"data": [record, ...]}, "GlobalParameters": {...}}
    """
    given = [
        name for name, value in (("data", data), ("input_data", input_data), ("Inputs", inputs)) if value is not None
    ]
    if len(given) != 1:
        found = ", ".join(given) if given else "none of them"
        raise RequestError(
            [
                _problem(
                    None,
                    None,
                    f"expected exactly one of the keys data, input_data or Inputs in the JSON body; found {found}",
                )
            ]
        )
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
            properties[f.name] = {
                "type": "boolean",
                "description": f.description + " Also accepted: 1/0 and the strings true/false/yes/no in any case.",
            }
        else:
            properties[f.name] = {
                "type": f.kind,
                "minimum": f.minimum,
                "maximum": f.maximum,
                "description": f.description + " Also accepted as a numeric string.",
            }
    return {
        "type": "array",
        "minItems": 1,
        "maxItems": MAX_RECORDS,
        "items": {
            "type": "object",
            "required": list(FEATURE_NAMES),
            "properties": properties,
            "additionalProperties": False,
        },
        "example": [SAMPLE_RECORD],
    }
