"""A dataset's schema as data, and the request contract of a model trained on it.

The schema of a dataset lives in one JSON file beside its CSV (`<name>.schema.json`, format 1): the label,
every feature's name, kind, possible bounds, unit and the other units a mistaken client sends, the columns
known to leak the outcome, the cohort facts and intended use a model card shows, the subgroups its figures
are broken down by, and an example record. `DatasetSchema.load` reads and checks it (every problem listed);
training checks the CSV against it, and it travels inside each trained model's contract.

A model's request contract (`RequestSchema`) is the dataset schema seen through the model: the fields the
model uses (its MLflow signature) are required; the dataset's other fields are optional, checked like any
other when sent and not used; any other field is refused.

Pure Python (no numpy, no pandas) so that validation is cheap and can be imported anywhere; it runs on
Python 3.9 inside Azure's scoring image. Every problem in a request is collected, not only the first, so
a client fixes them in one go.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAX_RECORDS = 1000
MAX_LISTED_ERRORS = 100
METHODS = ("predict", "predict_proba")
# A numeric string longer than this is not a value a client meant to send (the longest
# plausible one, "263358.03" or "1.40e+00", is about ten characters).
MAX_NUMBER_CHARS = 40
SCHEMA_FORMAT = 1
KINDS = ("boolean", "integer", "number")
SCHEMA_SUFFIX = ".schema.json"


@dataclass(frozen=True)
class Unit:
    """Another unit clients use for a field: `factor` converts a value in it to the field's unit."""

    name: str
    factor: float


@dataclass(frozen=True)
class Feature:
    """One field of a dataset: kind "boolean" (0/1), "integer" or "number", and the bounds of what is
    possible (a value outside them is a unit mistake, a placeholder or a typo, never a rare patient)."""

    name: str
    kind: str
    minimum: float = 0.0
    maximum: float = 1.0
    description: str = ""
    unit: str = ""
    # Units a mistaken client sends instead; a value impossible in `unit` but possible once
    # converted from one of these gets an error that says so.
    other_units: tuple[Unit, ...] = ()


class SchemaError(ValueError):
    """A schema file that cannot be used; `problems` lists every one, each naming where and what is allowed."""

    def __init__(self, where: str, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"{where}: " + "; ".join(problems))


def _finite(value: Any) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


def _feature(entry: Any, at: str, problems: list[str]) -> Feature | None:
    """One `features` entry as a Feature; None (with problems noted) when it cannot be one."""
    if not isinstance(entry, dict):
        problems.append(f"{at} must be an object with name and kind")
        return None
    name, kind = entry.get("name"), entry.get("kind")
    if not isinstance(name, str) or not name.strip():
        problems.append(f"{at}.name must be a non-empty string")
        return None
    if kind not in KINDS:
        problems.append(f"{at} ({name}): kind {kind!r} is not one of {', '.join(KINDS)}")
        return None
    if kind == "boolean":
        return Feature(name, kind, 0.0, 1.0, str(entry.get("description", "")))
    low: Any = entry.get("minimum")
    high: Any = entry.get("maximum")
    if not (_finite(low) and _finite(high)) or float(low) > float(high):
        problems.append(f"{at} ({name}): minimum and maximum must be finite numbers with minimum <= maximum")
        return None
    units = []
    for index, unit in enumerate(entry.get("other_units") or ()):
        if not (isinstance(unit, dict) and isinstance(unit.get("name"), str) and _finite(unit.get("factor"))):
            problems.append(f"{at}.other_units[{index}] ({name}) must be an object with a name and a numeric factor")
            continue
        units.append(Unit(unit["name"], float(unit["factor"])))
    return Feature(
        name,
        kind,
        float(low),
        float(high),
        str(entry.get("description", "")),
        str(entry.get("unit", "")),
        tuple(units),
    )


@dataclass(frozen=True)
class DatasetSchema:
    """A dataset's schema (see the module docstring); `document` is the file's content as read."""

    name: str
    label: str
    features: tuple[Feature, ...]
    leaking: dict[str, str] = field(default_factory=dict)
    document: dict[str, Any] = field(default_factory=dict)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    @property
    def example(self) -> dict[str, Any]:
        """An example record (the document's `example`, else each feature's midpoint), for swagger and `invoke`."""
        example = self.document.get("example")
        if isinstance(example, dict) and example:
            return dict(example)
        return {f.name: _midpoint(f) for f in self.features}

    @classmethod
    def from_dict(cls, document: Any, where: str = "schema") -> DatasetSchema:
        """The schema of `document` (a parsed schema file); SchemaError listing every problem."""
        if not isinstance(document, dict):
            raise SchemaError(where, ["expected a JSON object with format, label and features"])
        problems: list[str] = []
        if document.get("format") != SCHEMA_FORMAT:
            problems.append(f"format must be {SCHEMA_FORMAT}, got {document.get('format')!r}")
        label = document.get("label")
        label_name = label.get("name") if isinstance(label, dict) else label
        if not isinstance(label_name, str) or not label_name:
            problems.append('label must be the label column\'s name, or an object {"name": ...}')
            label_name = ""
        entries = document.get("features")
        if not isinstance(entries, list) or not entries:
            problems.append("features must be a non-empty array of {name, kind, ...}")
            entries = []
        features = [f for i, e in enumerate(entries) if (f := _feature(e, f"features[{i}]", problems)) is not None]
        names = [f.name for f in features]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            problems.append(f"features named more than once: {', '.join(repeated)}")
        if label_name in names:
            problems.append(f"the label {label_name} is also listed as a feature")
        leaking = document.get("leaking_columns") or {}
        if not isinstance(leaking, dict) or not all(isinstance(v, str) for v in leaking.values()):
            problems.append('leaking_columns must be an object {"column": "why it leaks the outcome"}')
            leaking = {}
        unknown = [c for c in leaking if c not in names]
        if unknown:
            problems.append(f"leaking_columns names columns that are not features: {', '.join(unknown)}")
        if problems:
            raise SchemaError(where, problems)
        return cls(str(document.get("name") or label_name), label_name, tuple(features), dict(leaking), document)

    @classmethod
    def load(cls, path: Path) -> DatasetSchema:
        """The schema file at `path`; SchemaError when it is unreadable, not JSON or not a valid schema."""
        return cls.from_dict(read_document(path), str(path))

    def request_schema(self, required: Sequence[str] | None = None) -> RequestSchema:
        """The request contract of a model that uses `required` (its signature's columns; all when None)."""
        return RequestSchema(self, required)


def read_document(path: Path) -> Any:
    """The JSON document in the file at `path` (UTF-8); SchemaError naming the file when unreadable or not JSON."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise SchemaError(str(path), [f"cannot read it ({error.strerror or error})"]) from None
    except ValueError as error:
        raise SchemaError(str(path), [f"not valid JSON ({error})"]) from None


def _midpoint(feature: Feature) -> Any:
    if feature.kind == "boolean":
        return 0
    middle = (feature.minimum + feature.maximum) / 2
    return round(middle) if feature.kind == "integer" else float(f"{middle:.4g}")


def schema_path(csv: Path) -> Path:
    """Where the schema of the dataset in `csv` lives: beside it, `<stem>.schema.json` (`.csv`, `.gz`, `.zip` off)."""
    name = csv.name
    for suffix in (".gz", ".zip", ".csv", ".txt"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return csv.with_name(name + SCHEMA_SUFFIX)


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


# The kind of each refused item: the machine-readable part of a 400's `errors` (a client, and this project's own
# checks and counters, branch on it, never on the English `problem`). Declared once: kind -> what it means.
PROBLEM_KINDS: dict[str, str] = {
    "missing": "a field the model needs is not in the record",
    "unknown_field": "a field the dataset does not have",
    "out_of_range": "a value outside the feature's possible range",
    "not_finite": "NaN or infinity",
    "not_whole": "a fraction where the feature takes whole numbers",
    "wrong_type": "a value of another JSON type, or a string that is not a number",
    "invalid": "the request itself: its form, its arrays, its size",
}


class _Bad(Exception):
    """One field's problem, raised from the per-value converters (the rare path); `kind` is a PROBLEM_KINDS key."""

    def __init__(self, message: str, kind: str = "wrong_type") -> None:
        super().__init__(message)
        self.kind = kind


def _problem(record: int | None, field: str | None, problem: str, kind: str = "invalid") -> dict[str, Any]:
    """One item of a refusal's `errors`: where (record index, field name; None for the whole request), what
    (English, for a person) and its kind (a PROBLEM_KINDS key, for a program)."""
    return {"record": record, "field": field, "problem": problem, "kind": kind}


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
            raise _Bad("NaN and infinity are not allowed", "not_finite")
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
            raise _Bad(_out_of_range(feature, _format(value)), "out_of_range") from None
    else:
        raise _Bad(f"expected a number, got {_shown(value)}")
    if feature.minimum <= number <= feature.maximum:
        if feature.kind == "integer" and not number.is_integer():
            why = f"expected a whole number of {feature.unit}, got {_g(number)}" + _unit_hint(feature, number)
            raise _Bad(why, "not_whole")
        return number
    if number != number or number in (math.inf, -math.inf):
        if kind is str and number == number:  # "1e999" overflows to infinity: a number, just far too large
            raise _Bad(_out_of_range(feature, value.strip()), "out_of_range")
        raise _Bad("NaN and infinity are not allowed", "not_finite")
    raise _Bad(_out_of_range(feature, _g(number)) + _unit_hint(feature, number), "out_of_range")


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


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(type(value), "a number")


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


@dataclass(frozen=True)
class ScoringRequest:
    rows: list[list[float]]  # one row per record, the model's fields in RequestSchema.required order
    method: str  # "predict" or "predict_proba"


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


class RequestSchema:
    """What a model trained on `dataset` accepts: its `required` fields, the dataset's others as optional.

    `required` is the model's input columns in its signature's order (all the dataset's features when
    None); each must be a feature of the dataset (ValueError otherwise). Rows come out in that order.
    """

    def __init__(self, dataset: DatasetSchema, required: Sequence[str] | None = None) -> None:
        by_name = {f.name: f for f in dataset.features}
        required = tuple(dataset.feature_names if required is None else required)
        unknown = [name for name in required if name not in by_name]
        if unknown:
            raise ValueError(f"the model uses fields the dataset schema {dataset.name} does not have: {unknown}")
        self.dataset = dataset
        self.required: tuple[str, ...] = required
        self.optional: tuple[str, ...] = tuple(n for n in dataset.feature_names if n not in required)
        self._by_name = by_name
        self._converters = {f.name: _converter(f) for f in dataset.features}
        self._allowed = (
            "allowed fields are "
            + ", ".join(self.required)
            + ("; also accepted and not used by this model: " + ", ".join(self.optional) if self.optional else "")
        )

    def _rows_fast(self, records: list[Any]) -> list[list[float]] | None:
        """Rows of a request whose records all carry the same fields, column by column.

        Every record must have as many fields as the first, and every field the first has (required
        or optional) is converted; a column whose strings were all seen before costs one dictionary
        lookup per value. Returns None at the first problem of any kind: the record-by-record path
        then finds and words them all.
        """
        first = records[0]
        if type(first) is not dict:
            return None
        width = len(first)
        if any(name not in first for name in self.required):
            return None
        checked = [name for name in first if name in self._by_name]
        if len(checked) != width:
            return None
        for record in records:
            if type(record) is not dict or len(record) != width:
                return None
        columns: dict[str, list[float]] = {}
        try:
            for name in checked:
                convert, memo = self._converters[name]
                column = [record[name] for record in records]
                if type(column[0]) is str:
                    try:
                        columns[name] = [memo[value] if value in memo else convert(value) for value in column]
                        continue
                    except TypeError:  # an unhashable value (a list) further down
                        pass
                else:
                    typed = _typed_column(self._by_name[name], column)
                    if typed is not None:
                        columns[name] = typed
                        continue
                columns[name] = [convert(value) for value in column]
        except (KeyError, _Bad):
            return None
        return [list(row) for row in zip(*(columns[name] for name in self.required))]

    def parse_records(self, records: Any, where: str) -> list[list[float]]:
        """Validate a list of records into rows of floats, the required fields in order.

        Raises RequestError listing every problem (record index, field, what is allowed): a required
        field missing, any sent field's value (optional ones too) outside its rules, an unknown field.
        """
        if not isinstance(records, list):
            raise RequestError([_problem(None, where, f"expected an array of records, got {_json_type(records)}")])
        if not records:
            raise RequestError(
                [_problem(None, where, f"the array of records is empty; send 1 to {MAX_RECORDS} records")]
            )
        if len(records) > MAX_RECORDS:
            raise RequestError(
                [
                    _problem(
                        None,
                        where,
                        f"{len(records)} records is more than the limit of {MAX_RECORDS} per request; "
                        "split the request",
                    )
                ]
            )
        fast = self._rows_fast(records)
        if fast is not None:
            return fast
        errors: list[dict[str, Any]] = []
        rows: list[list[float]] = []
        for index, record in enumerate(records):
            if type(record) is not dict:
                errors.append(_problem(index, None, f"expected an object of features, got {_json_type(record)}"))
                continue
            values: dict[str, float] = {}
            for name, value in record.items():
                converter = self._converters.get(name)
                if converter is None:
                    # Unknown fields are rejected: a misspelt or extra column (a label, an ID) usually
                    # means the client's schema is not ours, and silently ignoring it would hide that.
                    errors.append(_problem(index, str(name)[:100], "unknown field; " + self._allowed, "unknown_field"))
                    continue
                try:
                    values[name] = converter[0](value)
                except _Bad as bad:
                    errors.append(_problem(index, name, str(bad), bad.kind))
            errors.extend(_problem(index, name, "missing", "missing") for name in self.required if name not in record)
            rows.append([values.get(name, math.nan) for name in self.required])
        if errors:
            raise RequestError(errors)
        return rows

    def parse_request(
        self, data: Any = None, input_data: Any = None, inputs: Any = None, global_parameters: Any = None
    ) -> ScoringRequest:
        """Turn one of the three accepted request forms into validated rows.

        - the lesson's: {"data": [record, ...]}
        - Azure ML's MLflow form: {"input_data": {"columns": [...], "index": [...], "data": [[...]]}}
        - AutoML's generated scoring file: {"Inputs": {"data": [record, ...]}, "GlobalParameters": {...}}
        """
        given = [
            name
            for name, value in (("data", data), ("input_data", input_data), ("Inputs", inputs))
            if value is not None
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
            return ScoringRequest(self.parse_records(data, "data"), method)
        if input_data is not None:
            return ScoringRequest(self.parse_records(_split_to_records(input_data), "input_data"), method)
        if not isinstance(inputs, dict) or "data" not in inputs:
            raise RequestError([_problem(None, "Inputs", 'expected an object {"data": [record, ...]}')])
        return ScoringRequest(self.parse_records(inputs["data"], "Inputs.data"), method)

    def swagger_records_schema(self) -> dict[str, Any]:
        """OpenAPI schema of an array of records: the model's fields required, the dataset's others optional."""
        properties: dict[str, Any] = {}
        for f in self.dataset.features:
            unused = "" if f.name in self.required else " Optional: this model does not use it."
            if f.kind == "boolean":
                properties[f.name] = {
                    "type": "boolean",
                    "description": f.description
                    + " Also accepted: 1/0 and the strings true/false/yes/no in any case."
                    + unused,
                }
            else:
                properties[f.name] = {
                    "type": f.kind,
                    "minimum": f.minimum,
                    "maximum": f.maximum,
                    "description": f.description + " Also accepted as a numeric string." + unused,
                }
        return {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_RECORDS,
            "items": {
                "type": "object",
                "required": list(self.required),
                "properties": properties,
                "additionalProperties": False,
            },
            "example": [self.dataset.example],
        }
