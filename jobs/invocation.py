"""What `invoke` sends and how an answer is checked; the same for both targets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jobs.errors import JobsError
from jobs.paths import ROOT
from jobs.user_files import read_json

SAMPLE_FILE = ROOT / "scoring" / "sample-request.json"
SAMPLE_REQUEST: dict[str, Any] = json.loads(SAMPLE_FILE.read_text())


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
    """`sample` (the lesson's by default), or records from a JSON file, or the sample with key=value changes."""
    sample = sample if sample is not None else SAMPLE_REQUEST
    if file is not None and records:
        raise JobsError("give either --file or --set, not both")
    if file is not None:
        # BOM and CRLF are fine (PowerShell writes a BOM), as they are for the endpoint.
        loaded = read_json(Path(file), f"--file {file}")
        if isinstance(loaded, list):
            loaded = {"data": loaded}
        if not isinstance(loaded, dict):
            raise JobsError(f"--file {file} must hold a JSON object (a request) or an array of records")
        payload: dict[str, Any] = loaded
    elif records:
        record = dict(sample["data"][0])
        for item in records:
            key, sep, value = item.partition("=")
            if not sep or key not in record:
                raise JobsError(f"--set {item!r}: expected FIELD=VALUE with FIELD one of {', '.join(record)}")
            record[key] = value
        payload = {"data": [record]}
    else:
        payload = json.loads(json.dumps(sample))
    if probability:
        payload["GlobalParameters"] = {"method": "predict_proba"}
    return payload


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
