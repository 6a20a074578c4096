"""Files a user hands us (a request, saved stack outputs, the training CSV), all read the same tolerant way.

Windows tools add what a strict reader refuses: PowerShell's `Out-File` and Excel's "CSV UTF-8"
start the file with a UTF-8 byte-order mark, and Excel ends lines with CRLF. Both are accepted
here, once, for every file: the BOM is dropped, any line ending is a line ending. The endpoint
accepts a BOM too, so a file `invoke --file` sends is read the way the server would read it.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from jobs.errors import JobsError

BOM = b"\xef\xbb\xbf"


def read_text(path: Path, what: str) -> str:
    """The file's text: UTF-8 with or without a BOM, CRLF or CR line endings turned into LF.

    `what` names the file in messages (e.g. "--file request.json"). Raises JobsError when the
    file cannot be read or is not UTF-8 text (with the byte offset and what to do).
    """
    try:
        raw = Path(path).read_bytes()
    except OSError as error:
        raise JobsError(f"cannot read {what}: {error.strerror or error}") from None
    try:
        # utf-8-sig drops one leading BOM and is plain UTF-8 otherwise.
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise JobsError(f"{what} is not UTF-8 text (byte {error.start} is {raw[error.start]:#04x}); save it as "
                        "UTF-8 (in Excel: \"CSV UTF-8\"; in PowerShell: `-Encoding utf8`)") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_json(path: Path, what: str) -> Any:
    """The file's JSON value, read as by read_text; JobsError naming the line and column when it is not JSON."""
    text = read_text(path, what)
    try:
        return json.loads(text)
    except ValueError as error:
        raise JobsError(f"{what} is not JSON: {error}") from None


def read_csv_rows(path: Path, what: str) -> list[list[str]]:
    """Every row of a CSV file as strings (header first), read as by read_text.

    Empty header cells get pandas' names (`Unnamed: 0` for the first column), so that both
    targets, and every message, call a column by the same name. Raises JobsError for a file
    without a header row or one that is not CSV.
    """
    text = read_text(path, what)
    try:
        rows = [row for row in csv.reader(io.StringIO(text)) if row]
    except csv.Error as error:
        raise JobsError(f"{what} is not a readable CSV: {error}") from None
    if not rows:
        raise JobsError(f"{what} is empty; expected a CSV with a header row")
    rows[0] = [cell or f"Unnamed: {index}" for index, cell in enumerate(rows[0])]
    return rows


def normalized_csv(path: Path, what: str) -> str:
    """The CSV rewritten the way Azure ML's MLTable reader is sure to read it: UTF-8 without a BOM, LF
    line endings, empty header cells named as pandas names them (see read_csv_rows)."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(read_csv_rows(path, what))
    return out.getvalue()
