"""The one error type the command line turns into a message and a non-zero exit."""

import json
import re
from pathlib import Path
from typing import Any


class JobsError(Exception):
    """A problem the user can fix; the message says what is wrong and the command that fixes it."""

    exit_code = 2


class Interrupted(JobsError):
    """Ctrl-C: the message says what is still running in Azure and how to stop or resume it."""

    exit_code = 130


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object this project wrote itself (state, run and tags files); if someone broke it, say
    which and what to do. JobsError when it is not JSON or not an object."""
    remedy = "restore it or delete it and run the command that writes it again"
    try:
        value = json.loads(path.read_text())
    except ValueError as error:
        raise JobsError(f"{path} is not valid JSON ({error}); {remedy}") from None
    if not isinstance(value, dict):
        raise JobsError(f"{path} holds a JSON {type(value).__name__}, not the object this project writes; {remedy}")
    return value


def first_line(error: BaseException, limit: int = 300) -> str:
    """The first line of an error's message (an Azure SDK error's `message`), at most `limit` characters;
    its type's name when the message is empty."""
    text = str(getattr(error, "message", None) or error).strip()
    return (text.splitlines() or [type(error).__name__])[0][:limit]


_ERROR_LINE = re.compile(r"\b([A-Z]\w*(?:Error|Exception)\b:?.*)")
# The inference server re-raises whatever init() or the import of score.py raised inside one of these
# (azureml_inference_server_http/server/user_script.py, 1.x); the user's own error comes first in the
# chained traceback and is the one that says why.
_SERVER_WRAPPERS = ("UserScriptException", "UserScriptImportException", "UserScriptError", "AzmlinfsrvError")


def log_error(log: str) -> str | None:
    """The last error a log names (`ModuleNotFoundError: No module named 'x'`, ...); None if it names none.

    A scoring container's log ends with the server's shutdown lines after the traceback, so the
    last line that names an exception is the one that says why the model did not load, unless it is
    the server's wrapper around the script's own exception: then the last other one is.
    """
    wrapped = None
    for line in reversed(log.splitlines()):
        match = _ERROR_LINE.search(line)
        if not match:
            continue
        found = match.group(1).strip()[:300]
        if found.startswith(_SERVER_WRAPPERS):
            wrapped = wrapped or found
            continue
        return found
    return wrapped
