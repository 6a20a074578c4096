"""One function run in a fresh Python process while this one does other work (the baselines beside FLAML).

    with Background(score_baselines, settings, X, y, splits) as beside:
        ...                      # this process goes on (FLAML's search uses one core)
        scored = beside.result() # waits for the answer; the child's exception is raised here

The child is started with multiprocessing's "spawn" (a new interpreter, nothing inherited but the
arguments), not "fork": the parent has threads (the progress watcher) and may have started OpenMP,
and a forked child of such a process can deadlock (docs.python.org/3/library/multiprocessing.html,
"Contexts and start methods"). Leaving the block, by an error or Ctrl-C, ends a child still running:
nothing runs on after the command that started it, and a child whose parent was killed outright
(SIGKILL, no clean-up) ends itself within a second. The child ignores Ctrl-C itself (the parent
ends it), so one Ctrl-C prints one message, not a second traceback from the child.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, Generic, TypeVar

from jobs.errors import JobsError

T = TypeVar("T")


def _end_when_orphaned(parent: int) -> None:
    """A parent killed with SIGKILL runs no clean-up: its child then sees another parent and ends itself."""
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(1)


def _answer(send: Connection, function: Callable[..., Any], args: tuple[Any, ...], parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_end_when_orphaned, args=(parent,), daemon=True).start()
    try:
        value = function(*args)
    except BaseException as error:  # every failure goes back to the parent, which raises it
        try:
            send.send(("error", error))
        except Exception:  # an exception that does not pickle: its text still goes back
            send.send(("error", RuntimeError(f"{type(error).__name__}: {error}")))
        return
    send.send(("ok", value))


class Background(Generic[T]):
    """`function(*args)` in a spawned process; `result()` waits for its value. Arguments and value must pickle."""

    def __init__(self, function: Callable[..., T], *args: Any) -> None:
        context = multiprocessing.get_context("spawn")
        self._receive, self._send = context.Pipe(duplex=False)
        self._name = getattr(function, "__name__", "background work")
        self._process = context.Process(target=_answer, args=(self._send, function, args, os.getpid()), daemon=True)

    def __enter__(self) -> Background[T]:
        self._process.start()
        # Only the child holds the sending end now: its death without an answer reads as end of file.
        self._send.close()
        return self

    def result(self) -> T:
        """The function's value; its exception re-raised here; JobsError when the process died without one."""
        try:
            status, value = self._receive.recv()
        except EOFError:
            self._process.join(5)
            raise JobsError(
                f"the process computing {self._name} ended without an answer (exit code {self._process.exitcode}); "
                "was it killed, or out of memory?"
            ) from None
        if status == "error":
            raise value
        answer: T = value
        return answer

    def __exit__(self, *exc: object) -> None:
        if self._process.is_alive():
            self._process.terminate()
        self._process.join(5)
        self._receive.close()
