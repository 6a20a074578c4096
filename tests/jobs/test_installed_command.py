"""The installed command, `heart-failure` (pyproject.toml [project.scripts]): it runs from any directory,
as cron (`monitor`) and CI call it, and its messages show a command that works there.

It is installed here as `make setup` installs it (`pip install --no-deps --no-build-isolation -e .`), into
a scratch venv that sees this Python's packages through a .pth file, as --system-site-packages would: no
download, and the project's venv is left as it is.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import jobs.__main__
from testing.endpoint import stand_in_endpoint
from tests.jobs.conftest import ROOT


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    """A scratch venv with the project installed editable: its folder (bin/heart-failure, bin/python)."""
    venv = tmp_path_factory.mktemp("installed") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    purelib = subprocess.run(
        [venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    seen = [entry for entry in sys.path if entry.endswith("site-packages")]
    Path(purelib, "project-packages.pth").write_text("\n".join(seen) + "\n")
    installed = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--quiet"),
            *("--no-deps", "--no-build-isolation", "--no-index", "--editable", str(ROOT)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    # setuptools older than 70.1 cannot build the editable wheel without the `wheel` package.
    assert installed.returncode == 0, (
        "the editable install failed; requirements.txt pins the setuptools it needs (make setup installs it):\n"
        + installed.stderr[-3000:]
    )
    return venv


def outside(tmp_path: Path, **env: str) -> dict[str, str]:
    """An environment for a run outside the checkout: the local state under `tmp_path`, PATH without the venvs."""
    path = os.pathsep.join(
        entry for entry in os.environ.get("PATH", "").split(os.pathsep) if not (Path(entry) / "heart-failure").exists()
    )
    return {
        **os.environ,
        "PATH": path,
        "JOBS_LOCAL_HOME": str(tmp_path / ".local"),
        "JOBS_RUNS_DIR": str(tmp_path / "runs"),
        **env,
    }


def run(argv: list[str | Path], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_status_and_invoke_run_from_another_directory(venv, tmp_path):
    elsewhere = tmp_path / "cron"
    elsewhere.mkdir()
    env = outside(tmp_path)
    with stand_in_endpoint(tmp_path / ".local") as port:
        status = run([venv / "bin" / "heart-failure", "status"], elsewhere, env)
        assert status.returncode == 0, status.stderr
        assert f"version 1 is serving at http://127.0.0.1:{port}/score" in status.stdout
        invoked = run([venv / "bin" / "heart-failure", "invoke", "--set", "age=75"], elsewhere, env)
        assert invoked.returncode == 0, invoked.stderr
        assert json.loads(invoked.stdout) == {"result": [False]}
    assert "No module named" not in status.stderr + invoked.stderr


def test_paths_derived_from_the_checkout_resolve_outside_it(venv, tmp_path):
    shown = run(
        [
            venv / "bin" / "python",
            "-c",
            "import json, jobs.dataset, jobs.local.inference_server as s, jobs.local.scoring_env as e, jobs.paths; "
            "print(json.dumps([str(jobs.paths.ROOT), str(jobs.dataset.DEFAULT_CSV), str(s.ENTRY_SCRIPT), "
            "str(e.CONDA_FILE)]))",
        ],
        tmp_path,
        outside(tmp_path),
    )
    assert shown.returncode == 0, shown.stderr
    root, csv, entry_script, conda = (Path(p) for p in json.loads(shown.stdout))
    assert root == ROOT
    assert csv.is_file() and csv.is_relative_to(ROOT / "data")
    assert entry_script == ROOT / "scoring" / "score.py" and conda == ROOT / "scoring" / "conda.yaml"


def test_messages_show_the_command_that_works_where_it_ran(venv, tmp_path):
    script = venv / "bin" / "heart-failure"
    # Not on PATH: the message names the script by its full path, which works from this directory.
    refused = run([script, "invoke"], tmp_path, outside(tmp_path))
    assert refused.returncode == 2
    assert f"run `{script} deploy --target local` first" in refused.stderr
    # On PATH (an activated venv, a crontab's PATH): the bare name, which also runs from here.
    on_path = outside(tmp_path)
    on_path["PATH"] = f"{venv / 'bin'}{os.pathsep}{on_path['PATH']}"
    refused = run(["heart-failure", "invoke"], tmp_path, on_path)
    assert refused.returncode == 2
    shown = re.search(r"run `(.+) deploy --target local` first", refused.stderr)
    assert shown is not None and shown.group(1) == "heart-failure", refused.stderr
    status = run([*shlex.split(shown.group(1)), "status"], tmp_path, on_path)
    assert status.returncode == 0, status.stderr
    assert status.stdout.strip() == "nothing is deployed locally"


def test_a_copy_installed_away_from_its_checkout_says_how_to_install(tmp_path, monkeypatch, capsys):
    # What `pip install .` (not editable) leaves: the package in site-packages, without data/ or scoring/conda.yaml.
    monkeypatch.setattr(jobs.__main__, "ROOT", tmp_path / "site-packages")
    assert jobs.__main__.main() == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"this copy is installed in {tmp_path / 'site-packages'}" in err
    assert "`pip install --no-deps -e CHECKOUT` (`make setup` does)" in err
