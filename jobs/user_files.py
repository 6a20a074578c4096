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
    utf16 = raw.startswith((b"\xff\xfe", b"\xfe\xff")) or (len(raw) >= 2 and b"\x00" in raw[:200])
    if utf16:
        # UTF-16 without a BOM decodes as "valid" UTF-8 full of NUL characters; name it for what it is.
        raise JobsError(
            f"{what} is not UTF-8 text: it looks like UTF-16 (NUL bytes between the characters, as "
            "Windows PowerShell 5.1's `>` and Notepad's \"Unicode\" write); save it as UTF-8 (in "
            'Excel: "CSV UTF-8"; in PowerShell: `-Encoding utf8`)'
        )
    try:
        # utf-8-sig drops one leading BOM and is plain UTF-8 otherwise.
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise JobsError(
            f"{what} is not UTF-8 text (byte {error.start} is {raw[error.start]:#04x}); save it as "
            'UTF-8 (in Excel: "CSV UTF-8"; in PowerShell: `-Encoding utf8`)'
        ) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


class _RepeatedKey(ValueError):
    pass


def _no_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object hook that refuses a key given twice: JSON leaves its meaning open, and the endpoint
    (scoring/schema.py parse_body) answers 400 for it, so a file we read must not pick one silently."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _RepeatedKey(key)
            seen.add(key)
    return obj


def read_json(path: Path, what: str) -> Any:
    """The file's JSON value, read as by read_text.

    Raises JobsError when the file is empty, is not JSON (with the line and column), or has an object
    with a repeated key (the key named: the endpoint refuses those bodies too).
    """
    return parse_json(read_text(path, what), what)


def parse_json(text: str, what: str) -> Any:
    """JSON text (a file's, or a command's output) as read_json reads it; `what` names it in messages."""
    if not text.strip():
        raise JobsError(f"{what} is empty; expected a JSON document")
    try:
        return json.loads(text, object_pairs_hook=_no_repeated_keys)
    except _RepeatedKey as repeated:
        raise JobsError(
            f"{what}: the key {str(repeated)[:100]!r} appears more than once in one object; which "
            "value is meant is ambiguous, so keep one"
        ) from None
    except RecursionError:
        raise JobsError(f"{what} nests arrays or objects too deeply") from None
    except json.JSONDecodeError as error:
        raise JobsError(f"{what} is not JSON: {error.msg} at line {error.lineno} column {error.colno}") from None
    except ValueError as error:  # an integer beyond Python's int-str conversion limit
        raise JobsError(f"{what} is not JSON we can read: {str(error)[:100]}") from None


def read_csv_lines(path: Path, what: str) -> list[tuple[int, list[str]]]:
    """Every non-blank row of a CSV file as (line number, cells), header first, read as by read_text.

    The line number is where the row starts in the file (1 for the header), as an editor shows it.
    Empty header cells get pandas' names (`Unnamed: 0` for the first column), so that both targets,
    and every message, call a column by the same name. Raises JobsError for an empty file or one
    that is not CSV.
    """
    text = read_text(path, what)
    reader = csv.reader(io.StringIO(text))
    rows: list[tuple[int, list[str]]] = []
    try:
        start = 1
        for row in reader:
            if row:
                rows.append((start, row))
            start = reader.line_num + 1
    except csv.Error as error:
        raise JobsError(f"{what} is not a readable CSV (line {reader.line_num}): {error}") from None
    if not rows:
        raise JobsError(f"{what} is empty; expected a CSV with a header row")
    rows[0] = (1, [cell or f"Unnamed: {index}" for index, cell in enumerate(rows[0][1])])
    return rows


def read_csv_rows(path: Path, what: str) -> list[list[str]]:
    """Every row of a CSV file as strings (header first); see read_csv_lines."""
    return [row for _, row in read_csv_lines(path, what)]


def normalized_csv(path: Path, what: str) -> str:
    """The CSV rewritten the way Azure ML's MLTable reader is sure to read it: UTF-8 without a BOM, LF
    line endings, empty header cells named as pandas names them (see read_csv_rows)."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(read_csv_rows(path, what))
    return out.getvalue()
