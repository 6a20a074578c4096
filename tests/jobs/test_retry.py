"""What a user sees when Azure answers with a transient error: which errors are retried, how long
it waits, how often it tries, and the line it prints before each wait."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError, ServiceRequestError, ServiceResponseError

from jobs.azure.retry import retry


def http_error(status: int) -> HttpResponseError:
    error = HttpResponseError(message=f"status {status}")
    error.status_code = status
    return error


class Script:
    """A call that raises the scripted errors in turn, then returns "done"."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


def run(call: Script) -> tuple[str, list[float], list[str]]:
    sleeps: list[float] = []
    said: list[str] = []
    return retry(call, "Submitting the job", sleep=sleeps.append, say=said.append), sleeps, said


@pytest.mark.parametrize(
    "error",
    [
        http_error(408),
        http_error(429),
        http_error(500),
        http_error(502),
        http_error(503),
        http_error(504),
        ServiceRequestError("connection reset"),
        ServiceResponseError("no response"),
        TimeoutError(),
        ConnectionError(),
    ],
)
def test_each_transient_error_is_retried(error):
    call = Script(error)
    result, sleeps, _ = run(call)
    assert (result, call.calls, sleeps) == ("done", 2, [2.0])


def test_the_delays_double_from_two_seconds_and_each_wait_is_announced():
    call = Script(http_error(503), ServiceRequestError("reset"), http_error(429), http_error(500))
    result, sleeps, said = run(call)
    assert result == "done"
    assert sleeps == [2.0, 4.0, 8.0, 16.0]
    assert said == [
        "Submitting the job: transient error (503), retrying in 2 s (attempt 2 of 5)",
        "Submitting the job: transient error (ServiceRequestError), retrying in 4 s (attempt 3 of 5)",
        "Submitting the job: transient error (429), retrying in 8 s (attempt 4 of 5)",
        "Submitting the job: transient error (500), retrying in 16 s (attempt 5 of 5)",
    ]


def test_after_five_attempts_the_last_error_is_raised_as_it_came():
    last = http_error(504)
    call = Script(*[http_error(503)] * 4, last)
    sleeps: list[float] = []
    with pytest.raises(HttpResponseError) as caught:
        retry(call, "Submitting the job", sleep=sleeps.append, say=lambda _: None)
    assert caught.value is last
    assert call.calls == 5
    assert sleeps == [2.0, 4.0, 8.0, 16.0]


@pytest.mark.parametrize("error", [http_error(400), http_error(403), ResourceNotFoundError("gone"), ValueError("bad")])
def test_other_errors_are_raised_at_once(error):
    call = Script(error)
    sleeps: list[float] = []
    said: list[str] = []
    with pytest.raises(type(error)) as caught:
        retry(call, "Submitting the job", sleep=sleeps.append, say=said.append)
    assert caught.value is error
    assert (call.calls, sleeps, said) == (1, [], [])


def test_ctrl_c_is_never_retried():
    call = Script(KeyboardInterrupt())
    sleeps: list[float] = []
    with pytest.raises(KeyboardInterrupt):
        retry(call, "Submitting the job", sleep=sleeps.append, say=lambda _: None)
    assert (call.calls, sleeps) == (1, [])


def test_fewer_attempts_and_another_base_delay():
    call = Script(http_error(503), http_error(503), http_error(503))
    sleeps: list[float] = []
    said: list[str] = []
    with pytest.raises(HttpResponseError):
        retry(call, "Reading the model", attempts=3, base_delay_s=0.5, sleep=sleeps.append, say=said.append)
    assert call.calls == 3
    assert sleeps == [0.5, 1.0]
    assert said[-1] == "Reading the model: transient error (503), retrying in 1 s (attempt 3 of 3)"
