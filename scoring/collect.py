"""Opt-in production data collection for score.py: what was scored, and why requests were refused.

Off unless the deployment sets HEART_FAILURE_COLLECT:

- ``local``: every scored record becomes one JSON line in ``$HEART_FAILURE_COLLECT_DIR/scored.jsonl``
  (rotated to ``scored-<UTC time>-<pid>.jsonl`` past ``HEART_FAILURE_COLLECT_MAX_BYTES``, at most
  ``HEART_FAILURE_COLLECT_KEEP`` rotated files kept), and every refused request one line of field
  names and reasons, without values.
- ``azure``: the deployment's data collector, fed the documented way (azureml-ai-monitoring's
  ``Collector`` named ``model_inputs`` and ``model_outputs``, the names model monitoring recognises;
  source: Azure ML docs, how-to-collect-production-data, "Perform custom logging for model
  monitoring"). Refusals go to the deployment's log (Application Insights) as counts, without values.

What is stored, per scored record: the model's input fields as the model saw them, each with the type of
the data the model was trained on (whole_number_columns: flags and whole-number fields as integers, the
others as floats, so Azure's monitor compares them with the training MLTable's int64 and float64 columns
category for category), the answer as 0/1 (DEATH_EVENT's own type in the training data), its probability
and threshold, the fields that lay outside the training data's range, a UTC
timestamp, a correlation id per request, the record's index in it, and the model version. Nothing else:
no header, no client address, no field the client sent that the model does not use.

Collection never changes the answer, never fails a request and never makes it wait for the disk: a
request only queues its records; one writer thread per process formats and appends them, in batches (as
Azure's own ``Collector`` queues in memory). Every failure is logged (without the data) and counted in
``failures``. A process that exits normally writes what is queued first (``flush`` at exit); a hard kill
can lose the records of its last moments, never leave a half-written one. Standard library only in
the local mode (the scoring environment has no filelock: fcntl.flock serialises writers across the
server's workers).
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import queue
import threading
import time
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

try:  # imported as scoring.collect by the jobs; as a neighbour of score.py (`collect`) in the endpoint
    from .schema import PROBLEM_KINDS  # type: ignore[import-not-found,unused-ignore]  # no package here
except ImportError:
    from schema import PROBLEM_KINDS  # type: ignore[no-redef,import-not-found,unused-ignore]  # flat name

logger = logging.getLogger("heart_failure_scoring.collect")

MODE_VARIABLE = "HEART_FAILURE_COLLECT"
DIR_VARIABLE = "HEART_FAILURE_COLLECT_DIR"
MAX_BYTES_VARIABLE = "HEART_FAILURE_COLLECT_MAX_BYTES"
KEEP_VARIABLE = "HEART_FAILURE_COLLECT_KEEP"
MODEL_VARIABLE = "HEART_FAILURE_COLLECT_MODEL"
CURRENT_FILE = "scored.jsonl"
LOCK_FILE = ".collect.lock"
DEFAULT_MAX_BYTES = 16 * 1024 * 1024
DEFAULT_KEEP = 50
# The names Azure ML model monitoring recognises without further configuration (docs above).
AZURE_INPUTS, AZURE_OUTPUTS = "model_inputs", "model_outputs"


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def whole_number_columns(
    names: Sequence[str], kinds: Mapping[str, str], dtype_kinds: Sequence[str] = ()
) -> tuple[bool, ...]:
    """Per column of `names`, whether the training data holds it as whole numbers.

    `kinds` maps a field to its dataset-schema kind (scoring/schema.py: "boolean", "integer", "number");
    `dtype_kinds` are the numpy kind characters of the model's signature columns, in `names` order
    ("i"/"u"/"b" integer or boolean, "f" float), empty when unknown. A column is whole when either says
    so: the schema's flags and integers are int64 in the CSV, and a signature that records int64 (MLflow
    "long", as Azure AutoML's does) was inferred from the same training frame. Monitoring compares the
    collected values with that data; Azure ML model monitoring's categorical metrics compare category
    values (1 against 1, not 1.0 against 1: the azure-review.md N4 finding; the how-to-collect-production-data
    batching example logs integer fields as integers, "SEX":2).
    """
    whole = []
    for index, name in enumerate(names):
        dtype_kind = dtype_kinds[index] if index < len(dtype_kinds) else "f"
        whole.append(kinds.get(name) in ("boolean", "integer") or dtype_kind in "iub")
    return tuple(whole)


def typed_row(row: Sequence[float], whole: Sequence[bool]) -> list[int | float]:
    """`row` with each whole-number column as an int, the others as floats; a whole column's value that is
    not whole (the schema refuses those, so never from score.py) stays a float rather than being cut."""
    return [
        int(value) if is_whole and float(value).is_integer() else float(value) for value, is_whole in zip(row, whole)
    ] + [float(value) for value in row[len(whole) :]]


def refusal_reason(problem: dict[str, Any], feature_names: tuple[str, ...]) -> tuple[str, str]:
    """(field, reason) for one schema problem, with no value in either.

    The problem text quotes the client's value ("131 is outside ..."), and an unknown field's
    name is the client's text too, so neither is kept: a field is one of the model's or a placeholder,
    a reason the problem's kind (scoring/schema.py PROBLEM_KINDS), or "invalid" for an item without one.
    """
    field = problem.get("field")
    kind = problem.get("kind")
    reason = kind if isinstance(kind, str) and kind in PROBLEM_KINDS else "invalid"
    if field in feature_names:
        where = str(field)
    elif reason == "unknown_field":
        where = "(unknown field)"
    else:
        where = "(request)"
    return where, reason


class Collector:
    """Appends records for one scoring process; thread-safe, and safe across processes."""

    def __init__(
        self,
        mode: str | None,
        folder: Path | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        keep: int = DEFAULT_KEEP,
        model: str = "",
    ) -> None:
        self.mode = mode
        self.folder = folder
        self.max_bytes = max_bytes
        self.keep = keep
        self.model = model
        self.failures = 0
        self.collected = 0
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._azure: tuple[Any, Any] | None = None
        self._queue: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self._writer: threading.Thread | None = None
        self._writer_pid = 0
        self._start_lock = threading.Lock()

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None) -> Collector:
        """The collector the deployment asked for; off (mode None) when HEART_FAILURE_COLLECT is unset.

        A setting that cannot work (local without a folder, an unknown mode) is logged and turns
        collection off: the endpoint must still serve.
        """
        env = os.environ if environ is None else environ
        mode = env.get(MODE_VARIABLE, "").strip().lower() or None
        try:
            max_bytes = int(env.get(MAX_BYTES_VARIABLE, DEFAULT_MAX_BYTES))
            keep = int(env.get(KEEP_VARIABLE, DEFAULT_KEEP))
        except ValueError:
            logger.error("%s and %s must be whole numbers; data collection is off", MAX_BYTES_VARIABLE, KEEP_VARIABLE)
            return cls(None)
        if mode == "local":
            if not env.get(DIR_VARIABLE):
                logger.error("%s=local needs %s (a folder); data collection is off", MODE_VARIABLE, DIR_VARIABLE)
                return cls(None)
            return cls(
                "local", Path(env[DIR_VARIABLE]), max(max_bytes, 4096), max(keep, 1), env.get(MODEL_VARIABLE, "")
            )
        if mode == "azure":
            return cls("azure", model=env.get(MODEL_VARIABLE, ""))
        if mode is not None:
            logger.error("%s=%r is not 'local' or 'azure'; data collection is off", MODE_VARIABLE, mode)
        return cls(None)

    @property
    def enabled(self) -> bool:
        return self.mode is not None

    # -- the two calls score.py makes -----------------------------------------------------------

    def scored(
        self,
        rows: list[list[float]],
        feature_names: tuple[str, ...],
        answer: Any,
        whole: Sequence[bool] = (),
    ) -> None:
        """Collect one answered request: rows in feature_names order, the dict run() returns, and per column
        whether it is stored as whole numbers (whole_number_columns; empty: every column as a float)."""
        if self.mode is None:
            return
        try:
            if self.mode == "azure":
                self._azure_collect(rows, feature_names, answer, tuple(whole))
                return
            # The request only queues; the writer thread formats and writes (see the module's docstring).
            self._enqueue(
                (
                    "scored",
                    _now(),
                    uuid.uuid4().hex,
                    rows,
                    feature_names,
                    answer["result"],
                    answer.get("probability"),
                    answer.get("threshold"),
                    answer.get("outside_training_range"),
                    tuple(whole),
                )
            )
        except Exception as error:  # collection must never fail the request
            self._failed(error)

    def refused(self, problems: list[dict[str, Any]], feature_names: tuple[str, ...]) -> None:
        """Collect one refused request: how many records, and (field, reason) counts; never a value."""
        if self.mode is None:
            return
        try:
            reasons = Counter(refusal_reason(problem, feature_names) for problem in problems)
            records = len({p["record"] for p in problems if p.get("record") is not None}) or 1
            summary = [
                {"field": field, "reason": reason, "count": count} for (field, reason), count in sorted(reasons.items())
            ]
            if self.mode == "azure":
                logger.warning("request refused: %d record(s); %s", records, json.dumps(summary))
                return
            self._enqueue(
                (
                    "line",
                    json.dumps(
                        {
                            "kind": "refused",
                            "time": _now(),
                            "correlation_id": uuid.uuid4().hex,
                            "model": self.model,
                            "records": records,
                            "reasons": summary,
                        },
                        separators=(",", ":"),
                    ),
                )
            )
        except Exception as error:
            self._failed(error)

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until every queued record is written (or failed); False if timeout_s (seconds) passed first."""
        deadline = time.monotonic() + timeout_s
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline or self._writer is None or not self._writer.is_alive():
                return False
            time.sleep(0.002)
        return True

    # -- the writer thread ------------------------------------------------------------------------

    def _enqueue(self, item: tuple[Any, ...]) -> None:
        if self._writer is None or self._writer_pid != os.getpid() or not self._writer.is_alive():
            with self._start_lock:
                if self._writer_pid != os.getpid():
                    # A forked worker inherits the queue and the file but not the thread: start afresh.
                    self._queue = queue.Queue()
                    self._fd = None
                    atexit.register(self.flush)
                if self._writer is None or self._writer_pid != os.getpid() or not self._writer.is_alive():
                    self._writer = threading.Thread(target=self._drain, name="collect-writer", daemon=True)
                    self._writer_pid = os.getpid()
                    self._writer.start()
        self._queue.put(item)

    def _drain(self) -> None:
        """Write what requests queued, everything that is waiting at once under one lock."""
        while True:
            batch = [self._queue.get()]
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                lines: list[str] = []
                scored = 0
                for item in batch:
                    if item[0] == "line":
                        lines.append(item[1])
                    else:
                        lines += self._scored_lines(*item[1:])
                        scored += len(item[3])
                for chunk in self._chunks(lines):
                    self._append(chunk)
                self.collected += scored
            except Exception as error:  # collection must never fail the request, nor stop the writer
                self._failed(error)
            finally:
                for _ in batch:
                    self._queue.task_done()

    def _chunks(self, lines: list[str]) -> list[list[str]]:
        """Whole lines in groups of at most max_bytes (a longer line alone), so a file never outgrows it."""
        chunks: list[list[str]] = [[]]
        size = 0
        for line in lines:
            length = len(line.encode()) + 1
            if chunks[-1] and size + length > self.max_bytes:
                chunks.append([])
                size = 0
            chunks[-1].append(line)
            size += length
        return chunks

    def _scored_lines(
        self,
        now: str,
        correlation_id: str,
        rows: list[list[float]],
        feature_names: tuple[str, ...],
        results: list[Any],
        probabilities: list[Any] | None,
        threshold: float | None = None,
        outside: list[list[str]] | None = None,
        whole: tuple[bool, ...] = (),
    ) -> list[str]:
        chances = probabilities or [None] * len(rows)
        flags = outside or [[] for _ in rows]
        # One format string per request instead of json.dumps per record: a third of the cost
        # on a 1000-record request (bench/collection.py). The values are finite floats (the
        # schema refuses NaN and infinity; %r of an int is its JSON too), 0/1 and None, fixed below.
        head = '{"kind":"scored","time":"%s","correlation_id":"%s","record":' % (now, correlation_id)  # noqa: UP031
        tail_format = (
            ',"model":%s,"features":{%s},"prediction":%%d,"probability":%%s,"threshold":%s,'
            '"outside_training_range":%%s}'
        )
        tail = tail_format % (
            json.dumps(self.model).replace("%", "%%"),
            ",".join(f'"{name}":%r' for name in feature_names),
            "null" if threshold is None else repr(float(threshold)),
        )
        template = head + "%d" + tail
        return [
            template
            % (
                index,
                *(typed_row(row, whole) if whole else map(float, row)),
                1 if results[index] else 0,
                "null" if chances[index] is None else repr(float(chances[index])),
                json.dumps(flags[index]) if flags[index] else "[]",
            )
            for index, row in enumerate(rows)
        ]

    # -- local: whole lines, under a lock ----------------------------------------------------------

    def _append(self, lines: list[str]) -> None:
        """Append whole lines to scored.jsonl; rotate it past max_bytes.

        One flock'ed critical section per request: appends from the server's workers (processes)
        and threads never interleave. A writer killed mid-write can leave a torn last line; the
        next writer cuts it off before appending, and readers skip a line that does not parse.
        """
        data = ("\n".join(lines) + "\n").encode()
        assert self.folder is not None
        with self._lock:
            self.folder.mkdir(parents=True, exist_ok=True)
            lock_fd = os.open(self.folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX)
                fd = self._current_fd()
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    size = self._cut_torn_line(fd, size)
                if size and size + len(data) > self.max_bytes:
                    self._rotate()
                    fd = self._current_fd()
                view = memoryview(data)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
            finally:
                os.close(lock_fd)  # closing releases the flock

    def _current_fd(self) -> int:
        """The open scored.jsonl, reopened when another worker rotated it away."""
        assert self.folder is not None  # only _write calls it, and only when collecting to a folder
        path = self.folder / CURRENT_FILE
        if self._fd is not None:
            try:
                if os.stat(path).st_ino == os.fstat(self._fd).st_ino:
                    return self._fd
            except FileNotFoundError:
                pass
            # Forgotten before the open: if the open fails, the next request tries again instead of
            # writing to a closed (or, worse, reused) descriptor number.
            stale, self._fd = self._fd, None
            os.close(stale)
        self._fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        return self._fd

    def _cut_torn_line(self, fd: int, size: int) -> int:
        start = max(0, size - 65536)
        tail = os.pread(fd, size - start, start)
        keep = start + tail.rfind(b"\n") + 1 if b"\n" in tail else start
        os.ftruncate(fd, keep)
        logger.warning("cut a torn last line (%d bytes) from %s", size - keep, CURRENT_FILE)
        return keep

    def _rotate(self) -> None:
        folder = self.folder
        assert folder is not None
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        os.replace(folder / CURRENT_FILE, folder / f"scored-{stamp}-{os.getpid()}.jsonl")
        rotated = sorted(folder.glob("scored-*.jsonl"))
        for old in rotated[: -self.keep]:
            with contextlib.suppress(FileNotFoundError):
                old.unlink()

    # -- Azure: the deployment's data collector ----------------------------------------------------

    def _azure_collect(
        self, rows: list[list[float]], feature_names: tuple[str, ...], answer: Any, whole: tuple[bool, ...] = ()
    ) -> None:
        import pandas as pd

        if self._azure is None:
            try:
                from azureml.ai.monitoring import Collector as AzureCollector  # only in a --collect environment
            except ImportError:
                # Said once, then off: a missing package would otherwise log on every request.
                self.mode = None
                raise

            self._azure = (
                AzureCollector(name=AZURE_INPUTS, on_error=self._failed),
                AzureCollector(name=AZURE_OUTPUTS, on_error=self._failed),
            )
        inputs, outputs = self._azure
        features = pd.DataFrame(rows, columns=list(feature_names), dtype="float64")
        for name, is_whole in zip(feature_names, whole):
            column = features[name]
            if is_whole and bool((column == column.round()).all()):
                features[name] = column.astype("int64")  # the training MLTable's type for this column
        context = inputs.collect(features)
        # int64 0/1, as DEATH_EVENT is in the training data (the prediction drift signal's target_column).
        frame: dict[str, Any] = {"DEATH_EVENT": pd.array([1 if v else 0 for v in answer["result"]], dtype="int64")}
        if answer.get("probability") is not None:
            frame["probability"] = answer["probability"]
        if answer.get("outside_training_range") is not None:
            # A flat string column: the fields of the record outside the training data's range, "" for none.
            frame["outside_training_range"] = [",".join(names) for names in answer["outside_training_range"]]
        outputs.collect(pd.DataFrame(frame), context)
        self.collected += len(rows)

    def _failed(self, error: BaseException) -> None:
        # The type and message of an I/O or SDK error, never the rows.
        self.failures += 1
        logger.error(
            "data collection failed (%d failure(s) so far; the request was answered): %s: %s",
            self.failures,
            type(error).__name__,
            str(error)[:200],
        )


collector = Collector.from_environment()
