"""Retries for transient Azure errors, and polling of long operations with a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from jobs.errors import JobsError

T = TypeVar("T")
TRANSIENT_STATUS = {408, 429, 500, 502, 503, 504}


def is_transient(error: BaseException) -> bool:
    """True for a failure worth retrying: no connection or no response, or an HTTP status in TRANSIENT_STATUS."""
    if isinstance(error, (ServiceRequestError, ServiceResponseError, TimeoutError, ConnectionError)):
        return True
    return isinstance(error, HttpResponseError) and getattr(error, "status_code", None) in TRANSIENT_STATUS


def retry(
    call: Callable[[], T],
    what: str,
    attempts: int = 5,
    base_delay_s: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
    say: Callable[[str], None] = print,
) -> T:
    """Call, retrying transient failures with exponential backoff (2, 4, 8, 16 s by default).

    `call` runs at most `attempts` times; before each retry `say` gets one line
    ("<what>: transient error (503), retrying in 2 s (attempt 2 of 5)") and `sleep` the delay in
    seconds. A failure that is not transient (`is_transient`), or the last one, is raised as it came,
    and so is anything that is not an `Exception` (Ctrl-C). Tenacity runs the loop; the SDK's own
    azure-core RetryPolicy works per HTTP request inside its pipeline, this wraps a whole SDK call.
    """

    def announce(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        delay = state.next_action.sleep if state.next_action else 0.0
        status = getattr(error, "status_code", None) or type(error).__name__
        say(
            f"{what}: transient error ({status}), retrying in {delay:.0f} s "
            f"(attempt {state.attempt_number + 1} of {attempts})"
        )

    retrying = Retrying(
        # `Exception` only, as a bare `except Exception` would: Ctrl-C is never retried.
        retry=retry_if_exception(lambda error: isinstance(error, Exception) and is_transient(error)),
        stop=stop_after_attempt(attempts),
        # base_delay_s * 2 ** (attempt - 1): 2, 4, 8, 16 s.
        wait=wait_exponential(multiplier=base_delay_s, exp_base=2),
        sleep=sleep,
        before_sleep=announce,
        reraise=True,
    )
    return retrying(call)


def wait_for(
    poller: Any,
    what: str,
    timeout_s: float,
    still_there: str,
    step_s: float = 15.0,
    clock: Callable[[], float] = time.monotonic,
) -> Any:
    """Wait for a long-running operation; past the deadline, say what is still running in Azure."""
    deadline = clock() + timeout_s
    while not poller.done():
        if clock() >= deadline:
            raise JobsError(f"{what} did not finish within {timeout_s / 60:.0f} minutes. {still_there}")
        poller.wait(timeout=step_s)
    return poller.result()
