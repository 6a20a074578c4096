"""Startup: how long the commands that do no ML work take, against `python -c pass`, in one run.

    .venv/bin/python bench/startup.py [--rounds 15]

Each round runs, in turn, `python -c pass` (the floor: the interpreter's own start) and
`python -m jobs COMMAND` for `--help`, `status`, `invoke` and `stop`, all with this Python, from the
repository root, in a scratch local home (JOBS_LOCAL_HOME). `status` and `invoke` find a deployed
endpoint there: testing/endpoint.py's stand-in, which answers at once, so that `invoke` includes its
HTTP call and the figure is what a user waits for beyond the model. `stop` runs in an empty home
(it stops nothing: the wait for a real server to exit is not startup). Taking the commands in turns
puts the same machine load on the floor and on each command. Bytecode is cached, as in a user's
checkout, but in the scratch folder (PYTHONPYCACHEPREFIX; PYTHONDONTWRITEBYTECODE is unset for the
runs): a start that compiles every module it imports measures the compiler, not the imports. It
prints each one's median wall time, its ratio to the floor's median and, against issue 22's target
(at most 15 times `python -c pass`), MET or MISSED.
Nothing here is asserted by the tests (tests/jobs/test_cli_startup.py checks the imports instead).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from timing import at_least

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from testing.endpoint import stand_in_endpoint  # noqa: E402

TARGET_RATIO = 15.0
# (arguments, whether the command finds the stand-in deployed)
COMMANDS = ((("--help",), False), (("status",), True), (("invoke", "--set", "age=75"), True), (("stop",), False))


def wall_s(argv: list[str], env: dict[str, str]) -> float:
    """Seconds from start to exit of one run of `argv` (its output discarded); a failed run ends the bench."""
    started = time.perf_counter()
    result = subprocess.run(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    took = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"`{' '.join(argv[1:])}` failed (exit {result.returncode}):\n{result.stderr[-2000:]}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--rounds", type=at_least(3), default=15, help="runs of each command, taken in turns (default 15)"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-startup-") as scratch:
        work = Path(scratch)
        base = {
            **{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
            "PYTHONPYCACHEPREFIX": str(work / "pycache"),
            "JOBS_RUNS_DIR": str(work / "runs"),
        }
        deployed = {**base, "JOBS_LOCAL_HOME": str(work / "deployed")}
        empty = {**base, "JOBS_LOCAL_HOME": str(work / "empty")}
        runs: dict[str, list[float]] = {"python -c pass": []}
        for command, _ in COMMANDS:
            runs["jobs " + command[0]] = []
        with stand_in_endpoint(work / "deployed"):
            # One untimed round first: it writes the bytecode cache.
            for round_ in range(args.rounds + 1):
                samples = [wall_s([sys.executable, "-c", "pass"], base)]
                for command, on_deployed in COMMANDS:
                    samples.append(wall_s([sys.executable, "-m", "jobs", *command], deployed if on_deployed else empty))
                if round_:
                    for name, sample in zip(runs, samples, strict=True):
                        runs[name].append(sample)

    floor = statistics.median(runs["python -c pass"])
    print(f"{args.rounds} rounds, commands taken in turns; median wall time (ratio to `python -c pass`)")
    verdicts = []
    for name, samples in runs.items():
        median = statistics.median(samples)
        line = f"  {name:<16} {median * 1000:7.1f} ms"
        if name != "python -c pass":
            ratio = median / floor
            verdicts.append(ratio <= TARGET_RATIO)
            line += f"  {ratio:5.1f}x  {'MET' if verdicts[-1] else 'MISSED'} (target: at most {TARGET_RATIO:g}x)"
        print(line)
    print(f"startup of --help, status, stop, invoke: {'MET' if all(verdicts) else 'MISSED'}")


if __name__ == "__main__":
    main()
