"""A model trained once per test session, for the tests that need a finished local run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from jobs.lineage import MODEL_NAME
from jobs.local.places import registry_root
from jobs.local.registry import LocalRegistry, ModelVersion

ROOT = Path(__file__).resolve().parents[2]


def run_jobs(env: dict[str, str], *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """`python -m jobs ARGS` with the project's Python, as a user runs it, in the repository root."""
    return subprocess.run(
        [sys.executable, "-m", "jobs", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def servers_of(home: Path) -> list[psutil.Process]:
    """Every inference server process (master or worker) serving a model from under `home`."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = " ".join(proc.info["cmdline"] or ())
        if (
            proc.info["status"] != psutil.STATUS_ZOMBIE
            and "azureml_inference_server_http" in cmdline
            and str(home) in cmdline
        ):
            found.append(proc)
    return found


def registry(home: Path, env: str = "dev") -> LocalRegistry:
    """The MLflow registry of `env` under `home` (the folder holding .local/)."""
    return LocalRegistry(registry_root(home / ".local", env), say=lambda _: None)


def registered(home: Path, env: str = "dev") -> list[ModelVersion]:
    """The versions of the model registered in `env` under `home`, oldest first."""
    return registry(home, env).versions(MODEL_NAME)


@pytest.fixture(scope="session")
def training(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """`jobs train` run once per session (a few seconds of FLAML): the run's folder and the command's result."""
    home = tmp_path_factory.mktemp("trained")
    env = {**os.environ, "JOBS_LOCAL_HOME": str(home / ".local"), "JOBS_RUNS_DIR": str(home / "runs")}
    result = run_jobs(env, "train", "--local-budget-seconds", "4")
    assert result.returncode == 0, result.stderr
    (run,) = (home / "runs").iterdir()
    return run, result


@pytest.fixture(scope="session")
def trained_run(training) -> Path:
    """A finished local training run: runs/<run>/ with model/, run.json and the report."""
    return training[0]


@pytest.fixture
def local_home(tmp_path, trained_run) -> tuple[Path, dict[str, str]]:
    """A fresh .local/ and runs/ holding a copy of the trained run; the environment that points jobs at them.
    Any server left behind is stopped at the end."""
    shutil.copytree(trained_run, tmp_path / "runs" / trained_run.name)
    env = {**os.environ, "JOBS_LOCAL_HOME": str(tmp_path / ".local"), "JOBS_RUNS_DIR": str(tmp_path / "runs")}
    yield tmp_path, env
    run_jobs(env, "stop")
    for proc in servers_of(tmp_path):  # what a failed test (or the code under test) left behind
        proc.kill()
