"""Start, probe and stop the Azure ML inference server (azmlinfsrv) on this machine.

Standard library only: the local backend (project venv) and the scoring tests (scoring venv)
both use it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENTRY_SCRIPT = ROOT / "scoring" / "score.py"

# azmlinfsrv always binds 0.0.0.0; a local demo has no business listening beyond loopback.
# The launcher sets the server's own default host before its CLI reads it, and is otherwise
# exactly `azmlinfsrv --entry_script ... --model_dir ... --port ...`.
_LAUNCHER = (
    "import sys, azureml_inference_server_http.constants as c; c.DEFAULT_HOST = '127.0.0.1'; "
    "from azureml_inference_server_http.amlserver import run; sys.argv[0] = 'azmlinfsrv'; sys.exit(run())"
)


class ServerError(RuntimeError):
    """The server did not start or answer; the message says why, with the log's tail."""


@dataclass(frozen=True)
class RunningServer:
    pid: int
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def start(python: Path, model_dir: Path, port: int, log_path: Path, workers: int = 1,
          timeout_s: float = 60.0, entry_script: Path = ENTRY_SCRIPT,
          extra_env: dict[str, str] | None = None) -> RunningServer:
    """Start the server in its own process group and wait until its liveness route answers."""
    if port_in_use(port):
        raise ServerError(f"port {port} on 127.0.0.1 is already in use; choose another with --port")
    env = {
        **os.environ,
        "WORKER_COUNT": str(workers),
        # gunicorn keeps a control socket under $HOME/.gunicorn; keep it out of the user's home.
        "HOME": str(log_path.parent),
        **(extra_env or {}),
    }
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(python), "-c", _LAUNCHER, "--entry_script", str(entry_script), "--model_dir", str(model_dir),
             "--port", str(port)],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(entry_script.parent), start_new_session=True,
        )
    server = RunningServer(process.pid, port, log_path)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerError(f"the inference server exited with code {process.returncode} before it was ready:\n"
                              + log_tail(log_path))
        if is_live(server.url):
            return server
        time.sleep(0.2)
    stop(process.pid)
    raise ServerError(f"the inference server was not live after {timeout_s:.0f} s:\n" + log_tail(log_path))


def is_live(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/", timeout=2) as response:  # noqa: S310 (loopback URL we built)
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop(pid: int, timeout_s: float = 15.0) -> bool:
    """Stop the server's whole process group (gunicorn master and workers). True if it was running."""
    if not is_running(pid):
        return False
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        _reap(pid)
        if not is_running(pid):
            return True
        time.sleep(0.1)
    os.killpg(pid, signal.SIGKILL)
    _reap(pid)
    return True


def _reap(pid: int) -> None:
    # A child of this process stays a zombie (and "running" to kill -0) until waited for.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
