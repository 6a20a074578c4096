"""`python -m jobs` and the installed `heart-failure` command: first check that this Python is the
project's (it has the packages) and that the code runs from its checkout, then run.

Outside the project's venv the first heavy import would end in a traceback; instead, one line
says how to run the command line.
"""

import importlib.util
import sys

from jobs.commands import not_set_up_message, outside_checkout_message
from jobs.paths import ROOT

# One module from each group of requirements the commands import (config, locks, processes,
# training, Azure); a Python that has these was set up from requirements.txt.
REQUIRED = ("yaml", "filelock", "psutil", "pandas", "flaml", "mlflow", "azure.ai.ml", "azure.identity")


def _missing() -> str | None:
    for name in REQUIRED:
        try:
            found = importlib.util.find_spec(name)
        except ModuleNotFoundError:  # a parent package (azure) is missing
            found = None
        if found is None:
            return name
    return None


def main() -> int:
    """The command line's entry point (pyproject.toml [project.scripts]); returns the exit code."""
    # A copy installed without `-e` (into site-packages) has no data/, scoring/conda.yaml or .local/ beside it.
    if not (ROOT / "scoring" / "conda.yaml").is_file():
        print(outside_checkout_message(ROOT), file=sys.stderr)
        return 2
    missing = _missing()
    if missing is not None:
        print(not_set_up_message(missing), file=sys.stderr)
        return 2

    from jobs.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
