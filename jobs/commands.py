"""How to run the command line, as it is shown in messages.

Every message that tells the user what to run uses `jobs_command` (or its prefix, JOBS), which shows
a command that works where the user is:
- `heart-failure ...` when the installed command (pyproject.toml [project.scripts], installed by
  `make setup`) is the one on PATH;
- else the installed command's path: `.venv/bin/heart-failure ...` from the repository root, the
  absolute path from anywhere else (what a crontab needs);
- else, before the project is installed, `.venv/bin/python -m jobs ...`, which works from the
  repository root only (where `python -m jobs` has to run anyway).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from jobs.paths import ROOT

SCRIPT = "heart-failure"
VENV_PYTHON = ".venv/bin/python"
VENV_SCRIPT = ROOT / ".venv" / "bin" / SCRIPT  # where `make setup` installs it


def shown_prefix(executable: str | None = None, cwd: Path | None = None, path: str | None = None) -> str:
    """The prefix every shown command starts with, for a process run by `executable` (default: this Python)
    in `cwd` (default: the current directory) with `path` as $PATH (default: the environment's)."""
    # Not resolved: .venv/bin/python is a symlink to the base interpreter, whose folder has no script.
    script = Path(executable or sys.executable).parent / SCRIPT
    if not script.is_file():
        return f"{VENV_PYTHON} -m jobs"
    found = shutil.which(SCRIPT, path=path if path is not None else os.environ.get("PATH"))
    if found is not None and os.path.samefile(found, script):
        return SCRIPT
    # Relative in the repository root only, where it reads as today's `.venv/bin/...`; anywhere else a path
    # relative to the current directory would puzzle more than it saves.
    if script == VENV_SCRIPT and (cwd or Path.cwd()).resolve() == ROOT:
        return str(VENV_SCRIPT.relative_to(ROOT))
    return str(script)


# Computed once: a command's messages all show the same prefix.
JOBS = shown_prefix()


def jobs_command(arguments: str = "") -> str:
    """The command line for ARGUMENTS as the user can paste it where they are: `JOBS ARGUMENTS`, e.g.
    `.venv/bin/heart-failure deploy --target local` in the repository root of an installed checkout."""
    return f"{JOBS} {arguments}".rstrip()


def not_set_up_message(missing: str) -> str:
    """One line for a run outside the project's venv (a dependency such as `missing` cannot be imported)."""
    return (
        f"error: this Python lacks the project's packages (no module named {missing!r}); run the commands with "
        f"the project's venv: `make setup` once in {ROOT}, then `{VENV_SCRIPT} COMMAND` from any directory "
        "(or `make demo`)"
    )


def outside_checkout_message(root: Path) -> str:
    """One line for a copy of the package installed in `root`, away from its checkout (`pip install .`
    without -e): the command needs the checkout's data/, scoring/ and .local/ beside it."""
    return (
        f"error: the command runs from its repository checkout (data/, scoring/, .local/), but this copy is "
        f"installed in {root}; install the checkout editable instead: `pip install --no-deps -e CHECKOUT` "
        "(`make setup` does)"
    )
