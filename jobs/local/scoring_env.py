"""The scoring virtual environment (.venv-scoring), built from scoring/conda.yaml.

The same pip list that becomes the Azure deployment's Environment is installed here, so the
local inference server runs what Azure runs. It is rebuilt only when its inputs change.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from jobs.paths import ROOT

CONDA_FILE = ROOT / "scoring" / "conda.yaml"
CONSTRAINTS = ROOT / "scoring" / "constraints.txt"
TEST_REQUIREMENTS = ROOT / "scoring" / "requirements-test.txt"
DEFAULT_VENV = ROOT / ".venv-scoring"
PIP_VERSION = "26.3"
STAMP = ".inputs-sha256"


class ScoringEnvError(RuntimeError):
    """The scoring environment could not be built; the message says why."""


def pip_requirements(conda_file: Path = CONDA_FILE) -> list[str]:
    """The pip section of a conda environment file."""
    spec = yaml.safe_load(conda_file.read_text())
    for dep in spec.get("dependencies", []):
        if isinstance(dep, dict) and "pip" in dep:
            return [str(req) for req in dep["pip"]]
    raise ScoringEnvError(f"{conda_file} has no pip section under dependencies")


def _fingerprint() -> str:
    digest = hashlib.sha256(f"{sys.version_info[:2]}|{PIP_VERSION}".encode())
    for path in (CONDA_FILE, CONSTRAINTS, TEST_REQUIREMENTS):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def python_of(venv: Path) -> Path:
    return venv / "bin" / "python"


def is_current(venv: Path = DEFAULT_VENV) -> bool:
    stamp = venv / STAMP
    return python_of(venv).exists() and stamp.exists() and stamp.read_text().strip() == _fingerprint()


def ensure_scoring_venv(venv: Path = DEFAULT_VENV, quiet: bool = True) -> Path:
    """Create or refresh the venv when it is missing or stale; return its python.

    Two deploys from two terminals must not build it at once (one would delete what the other
    installs): the build holds a file lock beside the venv, and the second finds it current.
    """
    if is_current(venv):
        return python_of(venv)
    from filelock import FileLock

    # In the temporary folder, not beside the venv: nothing for git to see.
    key = hashlib.sha256(str(venv.resolve()).encode()).hexdigest()[:12]
    with FileLock(Path(tempfile.gettempdir()) / f"jobs-{venv.name}-{key}.lock"):
        return _build(venv, quiet)


def _build(venv: Path, quiet: bool) -> Path:
    if is_current(venv):
        return python_of(venv)
    # The stamp is written last: a build that fails halfway leaves no stamp, so the next
    # run starts over instead of trusting a half-built venv.
    shutil.rmtree(venv, ignore_errors=True)
    pip_quiet = ["-q"] if quiet else []
    python = str(python_of(venv))
    steps = [
        [sys.executable, "-m", "venv", str(venv)],
        [python, "-m", "pip", "install", *pip_quiet, f"pip=={PIP_VERSION}"],
        [
            python,
            "-m",
            "pip",
            "install",
            *pip_quiet,
            "-c",
            str(CONSTRAINTS),
            "-r",
            str(TEST_REQUIREMENTS),
            *pip_requirements(),
        ],
    ]
    for step in steps:
        result = subprocess.run(step, capture_output=quiet, text=True, check=False)
        if result.returncode != 0:
            tail = "\n".join((result.stderr or "").strip().splitlines()[-5:]) if quiet else ""
            raise ScoringEnvError(f"building {venv} failed at `{' '.join(step[2:6])} ...`\n{tail}".rstrip())
    (venv / STAMP).write_text(_fingerprint())
    return python_of(venv)


if __name__ == "__main__":
    try:
        if not is_current():
            print(f"building {DEFAULT_VENV.name} from scoring/conda.yaml (about a minute)", flush=True)
        print(ensure_scoring_venv(quiet="-v" not in sys.argv))
    except ScoringEnvError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
