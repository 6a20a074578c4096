"""`jobs ui`: MLflow's own UI on one environment's store (jobs/local/registry.py), on 127.0.0.1, until Ctrl-C.

The UI is not in mlflow-skinny, the pinned package (no server, no web pages): it is the full `mlflow` package of
the same version, the optional extra `ui` (pyproject.toml), which `make ui-setup` installs into .venv under
requirements.txt's pins (`pip install -c requirements.txt`), so nothing the project runs on changes version.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from jobs.commands import jobs_command
from jobs.errors import JobsError
from jobs.local.registry import LocalRegistry

INSTALL = "make ui-setup"


def ui_installed() -> bool:
    """Whether this Python has MLflow's UI: the full package's server with its built web pages, and Flask."""
    spec = importlib.util.find_spec("mlflow")
    if spec is None or spec.origin is None:
        return False
    pages = Path(spec.origin).parent / "server" / "js" / "build" / "index.html"
    return pages.is_file() and importlib.util.find_spec("flask") is not None


def ui_command(root: Path, port: int) -> list[str]:
    """The `mlflow ui` command line for the store under `root`, listening on 127.0.0.1:`port` only."""
    registry = LocalRegistry(root)
    return [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        registry.uri,
        "--default-artifact-root",
        registry.artifacts.resolve().as_uri(),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]


def serve(root: Path, port: int) -> int:
    """Run MLflow's UI on the store under `root` until it ends; return its exit code.

    JobsError, before anything starts, when the UI is not installed (saying how to install it), when the
    store does not exist yet, or when the port is taken.
    """
    from jobs.local import inference_server

    if not ui_installed():
        raise JobsError(
            "MLflow's UI is not installed: this project pins mlflow-skinny, which has no UI. Install the optional "
            f"extra `ui` (the full mlflow package, same version, under the project's pins) with `{INSTALL}`, then "
            "run this command again"
        )
    registry = LocalRegistry(root)
    if not registry.db.is_file():
        raise JobsError(
            f"there is no MLflow store in {root} yet; `{jobs_command('train')}` logs the first run into dev's, "
            f"`{jobs_command('promote --version N --to prod')}` the first version into prod's"
        )
    if inference_server.port_in_use(port):
        raise JobsError(f"port {port} on 127.0.0.1 is already in use; choose another with --port")
    print(f"MLflow UI on {registry.uri}: http://127.0.0.1:{port} (Ctrl-C stops it)", flush=True)
    environment = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    return subprocess.run(ui_command(root, port), env=environment, check=False).returncode
