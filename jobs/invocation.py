"""What `invoke` sends and how an answer is checked; the same for both targets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jobs.errors import JobsError
from jobs.paths import ROOT
from jobs.user_files import parse_json, parse_json_lines, read_text

SAMPLE_FILE = ROOT / "scoring" / "sample-request.json"
SAMPLE_REQUEST: dict[str, Any] = json.loads(SAMPLE_FILE.read_text())
# JSON Lines by name (jsonlines.org: .jsonl; ndjson's .ndjson); another name is JSON Lines when its text is.
JSON_LINES_SUFFIXES = (".jsonl", ".ndjson")


def contract_request(model_dir: Path) -> dict[str, Any]:
    """{"data": [example]} with the example record of the model's contract (scoring/contract.py) in `model_dir`;
    the lesson's sample when the model carries no contract."""
    from scoring.contract import CONTRACT_FILE
    from scoring.schema import DatasetSchema, SchemaError

    try:
        document = json.loads((model_dir / CONTRACT_FILE).read_text(encoding="utf-8"))
        example: dict[str, Any] = DatasetSchema.from_dict(document.get("dataset")).example
        return {"data": [example]}
    except (OSError, ValueError, SchemaError, AttributeError):
        sample: dict[str, Any] = json.loads(json.dumps(SAMPLE_REQUEST))
        return sample


def build_request(
    file: Path | None = None,
    records: list[str] | None = None,
    probability: bool = False,
    sample: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The request `invoke` sends: `sample` (the lesson's by default), or the records of a file, with --set applied.

    `file` holds a request (a JSON object in one of the endpoint's forms), an array of records, or
    JSON Lines: one record per line, or the lines data collection writes (scoring/collect.py's
    scored.jsonl: each scored line's `features` is its record; its `refused` lines carry no values
    and are skipped). `records` are --set's FIELD=VALUE items: without a file they change the
    sample's one record; with a file they change every record in it (the same value for each, so a
    what-if over a whole file is one flag). Raises JobsError naming the file, the line or the --set item.
    """
    sample = sample if sample is not None else SAMPLE_REQUEST
    if file is not None:
        payload = _file_request(Path(file))
        if records:
            _set_in_every_record(payload, records, f"--file {file}")
    elif records:
        record = dict(sample["data"][0])
        for key, value in _assignments(records, list(record)):
            record[key] = value
        payload = {"data": [record]}
    else:
        payload = json.loads(json.dumps(sample))
    if probability:
        payload["GlobalParameters"] = {"method": "predict_proba"}
    return payload


def _file_request(path: Path) -> dict[str, Any]:
    what = f"--file {path}"
    # BOM and CRLF are fine (PowerShell writes a BOM), as they are for the endpoint.
    text = read_text(path, what)
    lines = parse_json_lines(text, what, by_name=path.suffix.lower() in JSON_LINES_SUFFIXES)
    if lines is not None:
        return {"data": _json_lines_records(lines, what)}
    loaded = parse_json(text, what)
    if isinstance(loaded, list):
        loaded = {"data": loaded}
    if not isinstance(loaded, dict):
        raise JobsError(f"{what} must hold a JSON object (a request), an array of records, or JSON Lines")
    return loaded


def _json_lines_records(lines: list[tuple[int, Any]], what: str) -> list[Any]:
    records: list[Any] = []
    refused = 0
    for number, value in lines:
        if not isinstance(value, dict):
            raise JobsError(
                f"{what} line {number} holds a JSON {type(value).__name__}, not a record; in JSON Lines "
                "each line is one record, a JSON object of field: value"
            )
        kind = value.get("kind")
        if kind == "scored" and isinstance(value.get("features"), dict):
            records.append(value["features"])  # a line data collection wrote: the record as the model saw it
        elif kind == "refused" and "features" not in value:
            refused += 1
        else:
            records.append(value)
    if not records:
        raise JobsError(
            f"{what} holds no record to send: its {refused} line(s) are data collection's summaries of "
            "refused requests, which carry no values"
        )
    return records


def _assignments(items: list[str], fields: list[str]) -> list[tuple[str, str]]:
    """--set's FIELD=VALUE items as pairs; JobsError for one without '=' or with a field not in `fields`."""
    pairs = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in fields:
            raise JobsError(f"--set {item!r}: expected FIELD=VALUE with FIELD one of {', '.join(fields)}")
        pairs.append((key, value))
    return pairs


def _set_in_every_record(payload: dict[str, Any], items: list[str], what: str) -> None:
    """Apply --set to every record of a file's request, in whichever of the endpoint's forms it is."""
    split = payload.get("input_data")
    inputs = payload.get("Inputs")
    if isinstance(payload.get("data"), list):
        records, where = payload["data"], "data"
    elif isinstance(inputs, dict) and isinstance(inputs.get("data"), list):
        records, where = inputs["data"], "Inputs.data"
    elif isinstance(split, dict) and isinstance(split.get("columns"), list) and isinstance(split.get("data"), list):
        _set_in_split(split, items, what)
        return
    else:
        raise JobsError(
            f"--set applies to every record of {what}, but it has no array of records (under data, "
            "Inputs.data or input_data); fix the file, or leave --set out"
        )
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise JobsError(f"--set cannot change record {index} of {what} ({where}[{index}] is not a JSON object)")
    fields = _fields([key for record in records for key in record])
    for key, value in _assignments(items, fields):
        for record in records:
            record[key] = value


def _set_in_split(split: dict[str, Any], items: list[str], what: str) -> None:
    """--set in Azure ML's split form: the column's value in every row (a column the file lacks is added)."""
    columns: list[Any] = split["columns"]
    rows: list[Any] = split["data"]
    for index, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != len(columns):
            raise JobsError(
                f"--set cannot change row {index} of {what} (input_data.data[{index}] is not one value per column)"
            )
    for key, value in _assignments(items, _fields([str(column) for column in columns])):
        if key not in columns:
            columns.append(key)
            for row in rows:
                row.append(value)
        else:
            at = columns.index(key)
            for row in rows:
                row[at] = value


def _fields(found: list[str]) -> list[str]:
    """The fields --set may name for a file: those its records have, then the sample's (to add one it lacks)."""
    return list(dict.fromkeys([*found, *SAMPLE_REQUEST["data"][0]]))


def check_answer(answer: Any, records: int) -> None:
    """A smoke test's pass condition: per record sent a boolean `result` and a `probability` from 0 to 1, and
    the `threshold` that decided them (scoring/score.py's answer)."""
    answer = answer if isinstance(answer, dict) else {}
    result, probability, threshold = answer.get("result"), answer.get("probability"), answer.get("threshold")
    if not (
        isinstance(result, list)
        and len(result) == records
        and all(isinstance(r, bool) for r in result)
        and isinstance(probability, list)
        and len(probability) == records
        and all(isinstance(p, (int, float)) and 0 <= p <= 1 for p in probability)
        and isinstance(threshold, (int, float))
    ):
        raise JobsError(f"unexpected answer to the sample request: {json.dumps(answer)[:300]}")
