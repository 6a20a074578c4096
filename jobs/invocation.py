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


def build_request(
    file: Path | None = None, records: list[str] | None = None, probability: bool = False
) -> dict[str, Any]:
    """The lesson's sample, or records from a JSON file, or one record from key=value arguments."""
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
        record = dict(SAMPLE_REQUEST["data"][0])
        for item in records:
            key, sep, value = item.partition("=")
            if not sep or key not in record:
                raise JobsError(f"--set {item!r}: expected FIELD=VALUE with FIELD one of {', '.join(record)}")
            record[key] = value
        payload = {"data": [record]}
    else:
        payload = json.loads(json.dumps(SAMPLE_REQUEST))
    if probability:
        payload["GlobalParameters"] = {"method": "predict_proba"}
    return payload


def check_answer(answer: Any, records: int) -> None:
    """A smoke test's pass condition: one boolean per record sent."""
    result = answer.get("result") if isinstance(answer, dict) else None
    if not (isinstance(result, list) and len(result) == records and all(isinstance(r, bool) for r in result)):
        raise JobsError(f"unexpected answer to the lesson's sample: {json.dumps(answer)[:300]}")
