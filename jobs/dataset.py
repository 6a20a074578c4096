"""The shipped dataset: where it is, its content hash (its version), its columns."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

from jobs.errors import JobsError

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "data"
CSV_NAME = "heart_failure_clinical_records_dataset.csv"
DEFAULT_CSV = DATA_DIR / CSV_NAME
ASSET_NAME = "heart-failure-records"


def require(path: Path) -> Path:
    if not path.is_file():
        raise JobsError(f"data file {path} does not exist; pass --data PATH to a CSV with a DEATH_EVENT column, "
                        f"or restore the shipped copy with `git checkout -- data/{CSV_NAME}`")
    return path


def content_version(path: Path, drop: tuple[str, ...] = ()) -> str:
    """The data asset's version: 12 hex digits of the SHA-256 of the CSV (and of the dropped columns).

    Re-registering unchanged data names the version that exists; changed data gets a new one.
    """
    digest = hashlib.sha256(require(path).read_bytes())
    if drop:
        digest.update(("\0drop:" + ",".join(sorted(drop))).encode())
    return digest.hexdigest()[:12]


def columns(path: Path) -> list[str]:
    with require(path).open(newline="") as handle:
        header = next(csv.reader(handle), None)
    if not header:
        raise JobsError(f"data file {path} is empty; expected a CSV with a header row")
    return header
