"""The training data: where the shipped CSV is, its content hash (its version), its columns and their check.

Every CSV is read through jobs/user_files.py (a byte-order mark and CRLF line endings are fine).
Its columns are checked against the endpoint's request schema (scoring/schema.py) before any
compute is spent, on both targets and in --dry-run: a model trained on a column the requests do
not carry (an index, an ID, a header written `Age`) registers fine and then cannot serve.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from pathlib import Path

from jobs.errors import JobsError
from jobs.paths import ROOT
from jobs.user_files import read_csv_rows
from scoring.schema import FEATURE_NAMES

DATA_DIR = ROOT / "data"
CSV_NAME = "heart_failure_clinical_records_dataset.csv"
DEFAULT_CSV = DATA_DIR / CSV_NAME
ASSET_NAME = "heart-failure-records"
# pandas names an empty header cell `Unnamed: <position>`; read_csv_rows does the same.
_INDEX_COLUMN = re.compile(r"Unnamed: \d+$")


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


def rows(path: Path) -> list[list[str]]:
    """Every row of a CSV as strings, header first, as both targets read it (BOM dropped, empty header
    cells `Unnamed: N`)."""
    return read_csv_rows(require(path), f"data file {path}")


def columns(path: Path) -> list[str]:
    """The header of a CSV, as both targets name its columns."""
    return rows(path)[0]


def label_problems(labels: list[str], target: str, folds: int) -> list[str]:
    """What keeps this label column from training a binary classifier with `folds`-fold cross-validation.

    Every value must be 0 or 1 (the endpoint answers true/false), and each class needs at least
    one row per fold: stratified cross-validation puts one of each in every fold, and fewer ends in
    a learner's error minutes into the run (or, on Azure, after the cluster has started).
    """
    counts = {"0": 0, "1": 0}
    bad = []
    for number, value in enumerate(labels, start=2):
        key = {"0": "0", "1": "1", "0.0": "0", "1.0": "1"}.get(value.strip())
        if key is None:
            bad.append(f"{value.strip() or 'empty'} (row {number})")
        else:
            counts[key] += 1
    if bad:
        return [f"the label {target} must be 0 or 1; found {', '.join(bad[:5])}" + (" ..." if len(bad) > 5 else "")]
    if min(counts.values()) < folds:
        return [f"the label {target} has {counts['1']} row(s) of 1 and {counts['0']} of 0; {folds}-fold "
                f"cross-validation needs at least {folds} of each: add rows, or lower --cv-folds (2 at least)"]
    return []


def column_problems(found: list[str], target: str, drop: tuple[str, ...] = ()) -> list[str]:
    """What keeps these CSV columns from training a model the endpoint can serve; [] when nothing does.

    The columns left after the label and `drop` must be request fields (scoring/schema.py
    FEATURE_NAMES), each once. Every request field must be there, unless it is in `drop` (training
    without a field on purpose, as `--drop time` does). Each problem names the column, the closest
    request field when one is close, and `--drop` as the way out.
    """
    problems = []
    seen: set[str] = set()
    meant: set[str] = set()  # request fields a misspelt column stands for: reported once, with the column
    for position, name in enumerate(found, start=1):
        if name in seen and name not in drop:
            problems.append(f"column {name!r} appears more than once in the header (columns {_positions(found, name)})")
        seen.add(name)
        if name == target or name in drop or name in FEATURE_NAMES:
            continue
        if _INDEX_COLUMN.match(name):
            problems.append(f"column {position} has no name in the header ({name!r}): it is the row index that pandas' "
                            "to_csv writes without index=False (or R's write.csv without row.names=FALSE). Save the "
                            f"file without it, or leave it out with --drop {_quoted(name)}")
            continue
        suggestion = _closest(name)
        meant.add(suggestion or "")
        hint = (f"did you mean {suggestion!r}? Rename it in the header, or" if suggestion
                else f"the endpoint's requests carry only {', '.join(FEATURE_NAMES)}; if it is an ID or a note,")
        problems.append(f"column {name!r} is not a request field: {hint} leave it out with --drop {_quoted(name)}")
    missing = [name for name in FEATURE_NAMES if name not in seen | meant and name not in drop]
    if missing:
        problems.append(f"the data lacks the request field(s) {', '.join(missing)}, which every request carries; add "
                        f"them, or train without them on purpose with "
                        + " ".join(f"--drop {name}" for name in missing))
    return problems


def _closest(name: str) -> str | None:
    """The request field a column name most likely means (case, spaces and hyphens aside)."""
    key = re.sub(r"[\s\-.]+", "_", name.strip().lower())
    if key in FEATURE_NAMES:
        return key
    found = difflib.get_close_matches(key, FEATURE_NAMES, n=1, cutoff=0.75)
    return found[0] if found else None


def _positions(found: list[str], name: str) -> str:
    return ", ".join(str(i) for i, other in enumerate(found, start=1) if other == name)


def _quoted(name: str) -> str:
    return name if re.fullmatch(r"[\w.-]+", name) else f"'{name}'"
