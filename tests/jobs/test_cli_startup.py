"""Commands that do no ML work start at once (issue 22): they load none of the heavy libraries.

Each command runs in a fresh Python, as `python -m jobs` does, and reports at exit which heavy modules
it imported (sys.modules). Timing is bench/startup.py's job; what makes a start slow is these imports
(scipy alone took over a second under load, through jobs.monitoring.drift).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from testing.endpoint import stand_in_endpoint
from tests.jobs.conftest import ROOT

# The libraries of training, drift and Azure: each costs a noticeable part of a second or more to import.
HEAVY = (
    "scipy",
    "pandas",
    "numpy",
    "sklearn",
    "lightgbm",
    "xgboost",
    "flaml",
    "mlflow",
    "skops",
    "matplotlib",
    "azure.ai.ml",
    "azure.identity",
)

# `python -m jobs ARGS`, reporting on its last line of stderr which of HEAVY it imported, whatever the exit.
PROBE = f"""
import atexit, json, runpy, sys
atexit.register(lambda: print("HEAVY " + json.dumps([m for m in {HEAVY!r} if m in sys.modules]), file=sys.stderr))
sys.argv = ["jobs", *sys.argv[1:]]
runpy.run_module("jobs", run_name="__main__", alter_sys=True)
"""


def run_probed(env: dict[str, str], *args: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("HEAVY "), result.stderr
    return result, json.loads(last.removeprefix("HEAVY "))


@pytest.fixture
def deployed(tmp_path):
    """A stand-in endpoint recorded as deployed in a fresh local home; the environment that points jobs at it."""
    env = {**os.environ, "JOBS_LOCAL_HOME": str(tmp_path / ".local"), "JOBS_RUNS_DIR": str(tmp_path / "runs")}
    with stand_in_endpoint(tmp_path / ".local") as port:
        yield env, port


@pytest.mark.parametrize("args", [["--help"], ["invoke", "--help"], ["train", "--help"], ["monitor", "--help"]])
def test_help_loads_no_heavy_library(tmp_path, args):
    result, heavy = run_probed({**os.environ, "JOBS_LOCAL_HOME": str(tmp_path)}, *args)
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout
    assert heavy == []


def test_status_invoke_and_stop_of_a_deployed_endpoint_load_no_heavy_library(deployed):
    env, port = deployed
    status, heavy = run_probed(env, "status")
    assert status.returncode == 0, status.stderr
    assert f"version 1 is serving at http://127.0.0.1:{port}/score" in status.stdout
    assert heavy == []

    invoked, heavy = run_probed(env, "invoke", "--set", "age=75")
    assert invoked.returncode == 0, invoked.stderr
    assert json.loads(invoked.stdout) == {"result": [False]}  # the answer really came over HTTP
    assert heavy == []

    stopped, heavy = run_probed(env, "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert "stopped heart-failure-automl version 1" in stopped.stdout
    assert heavy == []


def test_status_and_stop_with_nothing_deployed_load_no_heavy_library(tmp_path):
    env = {**os.environ, "JOBS_LOCAL_HOME": str(tmp_path / ".local"), "JOBS_RUNS_DIR": str(tmp_path / "runs")}
    for command, said in (("status", "nothing is deployed locally"), ("stop", "nothing was running")):
        result, heavy = run_probed(env, command)
        assert result.returncode == 0, result.stderr
        assert said in result.stdout
        assert heavy == []
