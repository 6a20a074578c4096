"""Retries for transient Azure errors, and polling of long operations with a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

from jobs.errors import JobsError

T = TypeVar("T")
TRANSIENT_STATUS = {408, 429, 500, 502, 503, 504}


def is_transient(error: BaseException) -> bool:
    if isinstance(error, (ServiceRequestError, ServiceResponseError, TimeoutError, ConnectionError)):
        return True
    return isinstance(error, HttpResponseError) and getattr(error, "status_code", None) in TRANSIENT_STATUS


def retry(call: Callable[[], T], what: str, attempts: int = 5, base_delay_s: float = 2.0,
          sleep: Callable[[float], None] = time.sleep, say: Callable[[str], None] = print) -> T:
    """Call, retrying transient failures with exponential backoff (2, 4, 8, 16 s by default)."""
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except Exception as error:
            if not is_transient(error) or attempt == attempts:
                raise
            delay = base_delay_s * 2 ** (attempt - 1)
            status = getattr(error, "status_code", None) or type(error).__name__
            say(f"{what}: transient error ({status}), retrying in {delay:.0f} s (attempt {attempt + 1} of {attempts})")
            sleep(delay)
    raise AssertionError("unreachable")


def wait_for(poller: Any, what: str, timeout_s: float, still_there: str, step_s: float = 15.0,
             clock: Callable[[], float] = time.monotonic) -> Any:
    """Wait for a long-running operation; past the deadline, say what is still running in Azure."""
    deadline = clock() + timeout_s
    while not poller.done():
        if clock() >= deadline:
            raise JobsError(f"{what} did not finish within {timeout_s / 60:.0f} minutes. {still_there}")
        poller.wait(timeout=step_s)
    return poller.result()
