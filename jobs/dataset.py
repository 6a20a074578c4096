"""The training data: where the shipped CSV is, its schema, its content hash (its version), its columns and their check.

Every CSV is read through jobs/user_files.py (a byte-order mark and CRLF line endings are fine). Its
schema is the JSON file beside it (scoring/schema.py, `<name>.schema.json`): the shipped data's is
data/heart_failure_clinical_records_dataset.schema.json; for a CSV without one, `train --label COLUMN`
infers one (infer_schema) and writes it for the user to review. The columns and values are checked against
the schema before any compute is spent, on both targets and in --dry-run: a model trained on a column the
requests do not carry (an index, an ID, a header written `Age`) registers fine and then cannot serve.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import re
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobs.errors import JobsError
from jobs.paths import ROOT
from jobs.user_files import read_csv_lines, read_csv_rows, refuse_url
from scoring.schema import MAX_RECORDS, DatasetSchema, RequestError, SchemaError, schema_path

DATA_DIR = ROOT / "data"
CSV_NAME = "heart_failure_clinical_records_dataset.csv"
DEFAULT_CSV = DATA_DIR / CSV_NAME
ASSET_NAME = "heart-failure-records"
DEFAULT_SCHEMA_FILE = schema_path(DEFAULT_CSV)
# An inferred schema's possible bounds: the observed range widened by this share of its span on each side
# (never below 0 for a column whose values are all at least 0).
INFER_WIDEN = 0.5
# At most this many problems are listed (the rest are counted), and this many rows named per problem.
MAX_LISTED = 25
ROWS_NAMED = 5
# Flags written as words: the endpoint takes them in requests, but a model trained on the words (Azure
# AutoML featurizes them as text) is then sent 1.0/0.0 by scoring/score.py.
_FLAG_WORDS = {"yes", "no", "y", "n", "true", "false"}
# pandas names an empty header cell `Unnamed: <position>`; read_csv_rows does the same.
_INDEX_COLUMN = re.compile(r"Unnamed: \d+$")


def require(path: Path) -> Path:
    """`path` if it is a file; JobsError saying what it is instead (a URL, missing, a directory) and what to pass."""
    refuse_url(path, f"data file {path}")
    if path.is_dir():
        raise JobsError(
            f"data file {path} is a directory; pass --data PATH to the CSV file itself (with a "
            f"DEATH_EVENT column), such as {path / CSV_NAME}"
        )
    if not path.is_file():
        raise JobsError(
            f"data file {path} does not exist; pass --data PATH to a CSV with a DEATH_EVENT column, "
            f"or restore the shipped copy with `git checkout -- data/{CSV_NAME}`"
        )
    return path


def content_version(path: Path, drop: tuple[str, ...] = ()) -> str:
    """The data asset's version: 12 hex digits of the SHA-256 of the CSV (and of the dropped columns).

    Re-registering unchanged data names the version that exists; changed data gets a new one.
    """
    digest = hashlib.sha256(require(path).read_bytes())
    if drop:
        digest.update(("\0drop:" + ",".join(sorted(drop))).encode())
    return digest.hexdigest()[:12]


def rows(path: Path) -> list[list[str]]:
    """Every row of a CSV as strings, header first, as both targets read it (BOM dropped, empty header
    cells `Unnamed: N`)."""
    return read_csv_rows(require(path), f"data file {path}")


def columns(path: Path) -> list[str]:
    """The header of a CSV, as both targets name its columns."""
    return rows(path)[0]


def load_schema(csv: Path) -> DatasetSchema:
    """The schema beside `csv` (scoring/schema.py schema_path); for a CSV without one, the shipped dataset's
    (a copy of the heart-failure records, re-saved or edited elsewhere, keeps its bounds and unit hints).
    JobsError when the schema file is invalid."""
    path = schema_path(csv)
    if not path.is_file():
        path = DEFAULT_SCHEMA_FILE
    try:
        return DatasetSchema.load(path)
    except SchemaError as error:
        raise JobsError("invalid schema file " + str(path) + ":\n  - " + "\n  - ".join(error.problems)) from None


def default_schema() -> DatasetSchema:
    """The shipped dataset's schema (data/heart_failure_clinical_records_dataset.schema.json)."""
    return load_schema(DEFAULT_CSV)


def ensure_schema(csv: Path, label: str | None, say: Callable[[str], None] = print) -> DatasetSchema:
    """The schema of `csv`: the file beside it; when there is none and `label` names the label column, one
    inferred from the data (infer_schema), written beside it for the user to review; when there is none and no
    label, the shipped dataset's (load_schema).

    JobsError when `label` differs from the schema's, or when the data cannot be described (a text column, a
    label that is not a column).
    """
    path = schema_path(require(csv))
    if path.is_file() or label is None:
        schema = load_schema(csv)
        if label is not None and label != schema.label:
            raise JobsError(
                f"--label {label} differs from the label {schema.label} of the schema file {path}; leave --label "
                "out, or change the schema's label"
            )
        return schema
    table = load(csv)
    document = infer_schema(table, label)
    # A label that is not 0/1 makes no schema worth writing: say so before anything is left on disk.
    bad_label = label_value_problem(table.column(label), label, table.lines)
    if bad_label:
        raise JobsError(f"--label {label}: {bad_label}; no schema was written")
    try:
        path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    except OSError as error:
        raise JobsError(f"cannot write the inferred schema {path} ({error.strerror or error})") from None
    say(
        f"wrote {path}: a schema inferred from {csv.name} ({len(document['features'])} features, label {label}). "
        "Review it before relying on the model: each feature's kind and possible bounds (the observed range "
        f"widened by {INFER_WIDEN:.0%} of its span on each side), leaking_columns, cohort and intended_use"
    )
    return DatasetSchema.from_dict(document, str(path))


def infer_schema(table: Table, label: str) -> dict[str, Any]:
    """A schema document (format 1) describing `table` with `label` as its label column.

    Kinds: a column of only 0 and 1 is boolean, of whole numbers integer, else number. Possible bounds:
    the observed minimum and maximum widened by INFER_WIDEN of the span on each side (not below 0 when
    no value is negative). The example record is each feature's median (no row of the data is copied).
    Raises JobsError for a label that is not a column and for a column that is not numeric.
    """
    if label not in table.header:
        raise JobsError(f"--label {label}: no such column in {table.path}; columns are {', '.join(table.header)}")
    features, example, problems = [], {}, []
    for name in table.header:
        if name == label:
            continue
        cells = [cell.strip() for cell in table.column(name) if cell.strip()]
        numbers = []
        for line, cell in zip(table.lines, table.column(name), strict=True):
            try:
                value = float(cell) if cell.strip() else None
            except ValueError:
                problems.append(
                    f"column {name!r} is not numeric (line {line}: {cell.strip()[:40]!r}); the models here train on "
                    f"numbers: encode it as numbers, or leave it out with --drop {_quoted(name)}"
                )
                break
            if value is not None:
                numbers.append(value)
        else:
            if not numbers or not all(math.isfinite(v) for v in numbers):
                problems.append(f"column {name!r} has no finite numbers; leave it out with --drop {_quoted(name)}")
                continue
            features.append(_inferred_feature(name, numbers, cells))
            example[name] = features[-1]["example"]
            del features[-1]["example"]
    if problems:
        raise JobsError("cannot infer a schema:\n  - " + "\n  - ".join(capped(problems)))
    return {
        "format": 1,
        "name": table.path.name.split(".")[0],
        "title": f"{table.path.name} (schema inferred by train; review it)",
        "label": {"name": label},
        "features": features,
        "leaking_columns": {},
        "cohort": {"note": "inferred: say who these rows are (setting, period, inclusion criteria, outcome, horizon)"},
        "intended_use": "not stated (inferred schema): say what the model is for, and for whom, before anyone uses it",
        "subgroups": [],
        "inferred": {
            "from": table.path.name,
            "rows": len(table.rows),
            "rule": f"kind from the values (only 0/1: boolean; whole numbers: integer; else number); bounds: the "
            f"observed range widened by {INFER_WIDEN:g} of its span on each side, not below 0 when no value is",
        },
        "example": example,
    }


def _inferred_feature(name: str, numbers: list[float], cells: list[str]) -> dict[str, Any]:
    low, high = min(numbers), max(numbers)
    middle = statistics.median(numbers)
    if set(numbers) <= {0.0, 1.0}:
        return {"name": name, "kind": "boolean", "description": "inferred: 0/1", "example": round(middle)}
    whole = all(v.is_integer() for v in numbers) and not any("." in c or "e" in c.lower() for c in cells)
    span = (high - low) or abs(high) or 1.0
    minimum, maximum = low - INFER_WIDEN * span, high + INFER_WIDEN * span
    if low >= 0:
        minimum = max(0.0, minimum)
    if whole:
        minimum, maximum = math.floor(minimum), math.ceil(maximum)
    else:
        minimum, maximum = _outward(minimum, math.floor), _outward(maximum, math.ceil)
    return {
        "name": name,
        "kind": "integer" if whole else "number",
        "minimum": minimum,
        "maximum": maximum,
        "unit": "",
        "description": f"inferred: observed {low:g} to {high:g}",
        "example": round(middle) if whole else float(f"{middle:.6g}"),
    }


def _outward(value: float, rounding: Callable[[float], int]) -> float:
    """`value` rounded away from the observed range at 4 significant digits."""
    if value == 0:
        return 0.0
    scale = 10 ** (math.floor(math.log10(abs(value))) - 3)
    return float(f"{rounding(value / scale) * scale:.6g}")


# How a 0/1 label may be written in a CSV.
_LABELS = {"0": "0", "1": "1", "0.0": "0", "1.0": "1"}


def label_value_problem(labels: list[str], target: str, lines: list[int] | None = None) -> str | None:
    """Why the label column is not a 0/1 label (its first bad values and their lines), or None."""
    bad = [
        f"{value.strip() or 'empty'} (line {number})"
        for number, value in zip(lines or range(2, len(labels) + 2), labels, strict=True)
        if value.strip() not in _LABELS
    ]
    if not bad:
        return None
    return f"the label {target} must be 0 or 1; found {', '.join(bad[:5])}" + (" ..." if len(bad) > 5 else "")


def label_problems(labels: list[str], target: str, folds: int, lines: list[int] | None = None) -> list[str]:
    """What keeps this label column from training a binary classifier with `folds`-fold cross-validation.

    Every value must be 0 or 1 (the endpoint answers true/false), and each class needs at least
    one row per fold: stratified cross-validation puts one of each in every fold, and fewer ends in
    a learner's error minutes into the run (or, on Azure, after the cluster has started). The problem
    gives each class's count and what would do: how many more rows of the short class, and a lower
    --cv-folds only where one would help (down to the smaller class's count, never below 2, the
    fewest the flag allows).
    """
    not_binary = label_value_problem(labels, target, lines)
    if not_binary:
        return [not_binary]
    counts = {"0": 0, "1": 0}
    for value in labels:
        counts[_LABELS[value.strip()]] += 1
    fewest = min(counts.values())
    if fewest >= folds:
        return []
    short = [label for label in ("1", "0") if counts[label] < folds]
    add = " and ".join(f"at least {folds - counts[label]} more row(s) of {label}" for label in short)
    found = f"the label {target} has {counts['1']} row(s) of 1 and {counts['0']} of 0"
    needs = f"{folds}-fold cross-validation needs at least {folds} of each"
    if fewest == 0:
        missing = next(label for label in ("1", "0") if counts[label] == 0)
        # No number of folds helps: with one class there is nothing to tell apart.
        return [
            f"{found}; {needs}, and a classifier needs rows of both: the file has no row of {missing} (is it "
            f"cut from a file sorted by {target}?). Add {add}"
        ]
    if fewest >= 2:
        return [f"{found}; {needs}: add {add}, or lower --cv-folds to {fewest} (the smaller class's count)"]
    two = " and ".join(f"{2 - counts[label]} more row(s) of {label}" for label in short if counts[label] < 2)
    if folds == 2:
        return [f"{found}; {needs}: add {add} (--cv-folds cannot go lower than 2)"]
    return [f"{found}; {needs}: add {add}, or add {two} and pass --cv-folds 2 (the fewest it allows)"]


def column_problems(
    found: list[str], target: str, drop: tuple[str, ...] = (), schema: DatasetSchema | None = None
) -> list[str]:
    """What keeps these CSV columns from training a model the endpoint can serve; [] when nothing does.

    The columns left after the label and `drop` must be the schema's features (the shipped dataset's
    when `schema` is None), each once. Every feature must be there, unless it is in `drop` (training
    without a field on purpose, as `--drop time` does). Each problem names the column, the closest
    feature when one is close, and `--drop` as the way out.
    """
    names = (schema or default_schema()).feature_names
    problems = []
    seen: set[str] = set()
    meant: set[str] = set()  # request fields a misspelt column stands for: reported once, with the column
    for position, name in enumerate(found, start=1):
        if name in seen and name not in drop:
            problems.append(f"column {name!r} appears more than once in the header (columns {_positions(found, name)})")
        seen.add(name)
        if name == target or name in drop or name in names:
            continue
        if _INDEX_COLUMN.match(name) and position > 1:
            problems.append(
                f"column {position} has no name in the header; name it, or leave it out with --drop {_quoted(name)}"
            )
            continue
        if _INDEX_COLUMN.match(name):
            problems.append(
                f"column {position} has no name in the header ({name!r}): it is the row index that pandas' "
                "to_csv writes without index=False (or R's write.csv without row.names=FALSE). Save the "
                f"file without it, or leave it out with --drop {_quoted(name)}"
            )
            continue
        suggestion = _closest(name, names)
        meant.add(suggestion or "")
        hint = (
            f"did you mean {suggestion!r}? Rename it in the header, or"
            if suggestion
            else f"the endpoint's requests carry only {', '.join(names)}; if it is an ID or a note,"
        )
        problems.append(f"column {name!r} is not a request field: {hint} leave it out with --drop {_quoted(name)}")
    missing = [name for name in names if name not in seen | meant and name not in drop]
    if missing:
        problems.append(
            f"the data lacks the request field(s) {', '.join(missing)}, which every request carries; add "
            f"them, or train without them on purpose with " + " ".join(f"--drop {name}" for name in missing)
        )
    return problems


def _closest(name: str, names: tuple[str, ...]) -> str | None:
    """The request field a column name most likely means (case, spaces and hyphens aside)."""
    key = re.sub(r"[\s\-.]+", "_", name.strip().lower())
    if key in names:
        return key
    found = difflib.get_close_matches(key, names, n=1, cutoff=0.75)
    return found[0] if found else None


def _positions(found: list[str], name: str) -> str:
    return ", ".join(str(i) for i, other in enumerate(found, start=1) if other == name)


def _quoted(name: str) -> str:
    return name if re.fullmatch(r"[\w.-]+", name) else f"'{name}'"


@dataclass(frozen=True)
class Table:
    """A training CSV as both targets read it: the header and every data row, with its line in the file."""

    path: Path
    header: list[str]
    rows: list[tuple[int, list[str]]]

    def column(self, name: str) -> list[str]:
        at = self.header.index(name)
        return [cells[at] if at < len(cells) else "" for _, cells in self.rows]

    @property
    def lines(self) -> list[int]:
        return [line for line, _ in self.rows]


def load(path: Path) -> Table:
    """The CSV at `path`, read once (jobs/user_files.py: BOM and CRLF fine, empty header cells named as
    pandas names them); JobsError for a missing, empty or unreadable file."""
    found = read_csv_lines(require(path), f"data file {path}")
    return Table(path, found[0][1], found[1:])


def shape_problems(table: Table, target: str, schema: DatasetSchema | None = None) -> list[str]:
    """What keeps the file from being read as a table of named columns; [] when nothing does.

    Checked before the columns' names and values, which mean nothing until this passes: a separator
    other than ',', spaces or tabs around column names, a header ending in a comma, rows with more or
    fewer fields than the header, a header without data rows.
    """
    header, width = table.header, len(table.header)
    raw = ",".join(header)
    for separator, name in ((";", "semicolons"), ("\t", "tabs")):
        parts = [part.strip() for part in raw.split(separator)]
        names = (schema or default_schema()).feature_names
        if len(parts) > width and (target in parts or set(parts) & set(names)):
            decimal = ""
            if separator == ";" and any(re.search(r"\d,\d", ",".join(cells)) for _, cells in table.rows[:50]):
                decimal = ", decimal=','"
            return [
                f"the file's columns are separated by {name}, not commas (its header has {len(parts)} columns "
                f"split at {separator!r}{' and its numbers have decimal commas' if decimal else ''}); "
                'both targets read comma-separated files only. Save it from Excel as "CSV UTF-8 (Comma '
                'delimited)", or convert it: python -c "import pandas as pd; '
                f"pd.read_csv({str(table.path)!r}, sep={separator!r}{decimal})"
                f'.to_csv({str(table.path.with_suffix(".comma.csv"))!r}, index=False)"'
            ]
    problems = []
    spaced = [name for name in header if name != name.strip()]
    if spaced:
        problems.append(
            f"column name(s) with spaces or tabs around them: {', '.join(repr(n) for n in spaced)}; "
            "both targets keep them as part of the name, so no request field matches. Remove the "
            "spaces after the commas (and any tab or space at the end) in the header line"
        )
    trailing = width > 1 and header[-1] == f"Unnamed: {width - 1}"
    if trailing:
        short = all(len(cells) == width - 1 for _, cells in table.rows)
        problems.append(
            f"the header ends with a comma, so column {width} has no name; remove the trailing comma "
            + ("from the header line" if short else "from the header and from every row")
        )
        if short:
            width -= 1
    ragged = [(line, len(cells)) for line, cells in table.rows if len(cells) != width]
    if ragged:
        named = ", ".join(f"line {line} has {count}" for line, count in ragged[:ROWS_NAMED])
        more = f" (and {len(ragged) - ROWS_NAMED} more rows)" if len(ragged) > ROWS_NAMED else ""
        problems.append(
            f"{len(ragged)} row(s) do not have the header's {width} fields: {named}{more}. A value "
            "with a comma inside must be in double quotes; a missing value is an empty field, "
            "but the commas stay"
        )
    if not table.rows:
        problems.append("the file has a header but no data rows")
    return problems


def value_problems(
    table: Table, target: str, drop: tuple[str, ...] = (), schema: DatasetSchema | None = None
) -> list[str]:
    """Every request field's values checked as the endpoint checks a request's; [] when all pass.

    Run once shape_problems and column_problems found nothing. A value the endpoint would refuse
    (scoring/schema.py parse_records: its bounds, whole numbers, its unit hints such as "looks like
    thousands per µL") is refused here too, so a model is never trained on values it will not be
    sent. Beyond the endpoint: a value must be there (an empty field is missing data) and a flag
    must be 1 or 0, not a word. One problem per column and kind, with its first lines.
    """
    schema = schema or default_schema()
    used = [name for name in schema.feature_names if name in table.header and name not in drop]
    lines = table.lines
    found: dict[tuple[str, str], list[tuple[int, str]]] = {}

    def note(column: str, kind: str, line: int, text: str) -> None:
        found.setdefault((column, kind), []).append((line, text))

    columns = {name: table.column(name) for name in used}
    records: list[dict[str, str]] = [{} for _ in lines]
    flags = {feature.name for feature in schema.features if feature.kind == "boolean"}
    for name, cells in columns.items():
        for record, line, cell in zip(records, lines, cells, strict=True):
            if not cell.strip():
                note(name, "empty", line, "is empty")
            elif name in flags and cell.strip().lower() in _FLAG_WORDS:
                note(name, "word", line, f"is the word {cell.strip()!r}; a flag in training data is 1 or 0")
            else:
                record[name] = cell
    # Every field optional: an empty or worded cell is reported above, not again as "missing".
    request = schema.request_schema(())
    for start in range(0, len(records), MAX_RECORDS):
        try:
            request.parse_records(records[start : start + MAX_RECORDS], "data")
        except RequestError as error:
            for item in error.errors:
                text = str(item["problem"])
                kind = str(item["kind"])  # the endpoint's own (scoring/schema.py PROBLEM_KINDS)
                index = start + int(item["record"])
                value = str(records[index].get(str(item["field"]), "")).strip()
                shown = f"{value[:40]!r}: {text}" if kind == "not_finite" else text  # the others name the value
                note(str(item["field"]), kind, lines[index], shown)
    problems = []
    hints = {
        "empty": "fill the value(s) in, or leave those rows out",
        "word": "write 1 for yes/true and 0 for no/false",
        "out_of_range": "fix the unit (or the typo) in the file; the endpoint refuses such values in requests too",
    }
    for (column, kind), hits in sorted(found.items(), key=lambda item: item[1][0][0]):
        first_line, first = hits[0]
        others = [str(line) for line, _ in hits[1:ROWS_NAMED]]
        more = (
            (
                f"; also line(s) {', '.join(others)}"
                + (" ..." if len(hits) > ROWS_NAMED else "")
                + f" ({len(hits)} rows in all)"
            )
            if others
            else ""
        )
        hint = hints.get(kind)
        problems.append(
            f"{column}, line {first_line}: {first}{more}" + (f". {hint[0].upper()}{hint[1:]}" if hint else "")
        )
    return problems


def capped(problems: list[str]) -> list[str]:
    """At most MAX_LISTED problems, the rest counted in a last line."""
    if len(problems) <= MAX_LISTED:
        return problems
    return [*problems[:MAX_LISTED], f"... and {len(problems) - MAX_LISTED} more problem(s) not listed"]
