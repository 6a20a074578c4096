"""`python -m jobs`: first check that this Python is the project's (it has the packages), then run.

Outside the project's venv the first heavy import would end in a traceback; instead, one line
says how to run the command line.
"""

import importlib.util
import sys

from jobs.commands import not_set_up_message

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


if __name__ == "__main__":
    missing = _missing()
    if missing is not None:
        print(not_set_up_message(missing), file=sys.stderr)
        sys.exit(2)

    from jobs.cli import main

    sys.exit(main())
