"""How to run the command line, as it is shown in messages.

`python -m jobs` works only with the project's venv activated; a message that says it sends a
user outside the venv into a traceback. Every message that tells the user what to run uses
`jobs_command`, which names the venv's Python (the path that works from the repository root,
where `python -m jobs` has to run anyway).
"""

from __future__ import annotations

from jobs.paths import ROOT

VENV_PYTHON = ".venv/bin/python"
# The prefix every shown command starts with.
JOBS = f"{VENV_PYTHON} -m jobs"


def jobs_command(arguments: str = "") -> str:
    """The command line for `python -m jobs ARGUMENTS`, as a user can paste it in the repository root.

    >>> jobs_command("deploy --target local")
    '.venv/bin/python -m jobs deploy --target local'
    """
    return f"{JOBS} {arguments}".rstrip()


def not_set_up_message(missing: str) -> str:
    """One line for a run outside the project's venv (a dependency such as `missing` cannot be imported)."""
    return (
        f"error: this Python lacks the project's packages (no module named {missing!r}); run the commands with "
        f"the project's venv, from {ROOT}: `make setup` once, then `{jobs_command('COMMAND')}` "
        "(or `make demo`)"
    )
