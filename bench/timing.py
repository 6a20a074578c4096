"""Timing helpers shared by the bench scripts: percentiles of samples and timed repeated calls.

Imported as `timing` by the scripts in this folder (run as `python bench/<script>.py`, whose folder is
on sys.path first); nothing outside bench/ uses it.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable


def percentiles(samples_s: list[float]) -> tuple[float, float]:
    """(p50 ms, p99 ms) of samples given in seconds."""
    ordered = sorted(samples_s)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p99 * 1000


def time_calls(call: Callable[[], object], count: int, warm_up: bool = True) -> tuple[float, float, float]:
    """(p50 ms, p99 ms, calls per second) of `count` calls, after a warm-up unless told not to."""
    for _ in range(min(20, count) if warm_up else 0):
        call()
    samples = []
    started = time.perf_counter()
    for _ in range(count):
        t0 = time.perf_counter()
        call()
        samples.append(time.perf_counter() - t0)
    p50, p99 = percentiles(samples)
    return p50, p99, count / (time.perf_counter() - started)


def at_least(low: float, kind: type = int) -> Callable[[str], float]:
    """An argparse type: a finite number of `kind` that is at least `low` (a bench flag)."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {'whole ' if kind is int else ''}number") from None
        if not math.isfinite(value) or value < low:
            raise argparse.ArgumentTypeError(f"{text} is not allowed; it must be at least {low:g}")
        return value

    return parse


def counts(text: str) -> list[int]:
    """An argparse type: a comma-separated list of whole numbers of at least 1 (e.g. "1,2,4")."""
    parse = at_least(1)
    return [int(parse(part.strip())) for part in text.split(",")]
