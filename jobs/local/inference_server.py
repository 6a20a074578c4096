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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from jobs.paths import ROOT  # standard library only, as this module must stay

ENTRY_SCRIPT = ROOT / "scoring" / "score.py"

# The host every local server binds and every client calls, and the entry script's route
# (azmlinfsrv serves run() at /score: azureml-inference-server-http's server/routes.py).
HOST = "127.0.0.1"
SCORE_PATH = "/score"


# azmlinfsrv always binds 0.0.0.0; a local demo has no business listening beyond loopback.
# The launcher sets the server's own default host before its CLI reads it, and is otherwise
# exactly `azmlinfsrv --entry_script ... --model_dir ... --port ...`.
_LAUNCHER = (
    f"import sys, azureml_inference_server_http.constants as c; c.DEFAULT_HOST = {HOST!r}; "
    "from azureml_inference_server_http.amlserver import run; sys.argv[0] = 'azmlinfsrv'; sys.exit(run())"
)


# Server worker processes (gunicorn sync workers, one request each at a time). Measured with
# bench/scoring.py on a 2-core machine: see docs/testing.md.
DEFAULT_WORKERS = 2


def base_url(port: int) -> str:
    """The server's root URL on this machine, e.g. "http://127.0.0.1:5001" (no trailing slash)."""
    return f"http://{HOST}:{port}"


def score_url(port: int) -> str:
    """The URL that scores a request: base_url(port) + "/score"."""
    return base_url(port) + SCORE_PATH


class ServerError(RuntimeError):
    """The server did not start or answer; the message says why, with the log's tail."""


@dataclass(frozen=True)
class RunningServer:
    pid: int
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return base_url(self.port)

    @property
    def score_url(self) -> str:
        return score_url(self.port)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]  # (host, port) for AF_INET
        return port


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex((HOST, port)) == 0


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def start(
    python: Path,
    model_dir: Path,
    port: int,
    log_path: Path,
    workers: int = DEFAULT_WORKERS,
    timeout_s: float = 60.0,
    entry_script: Path = ENTRY_SCRIPT,
    on_spawn: Callable[[int], None] | None = None,
    extra_env: dict[str, str] | None = None,
) -> RunningServer:
    """Start the server in its own process group and wait until its liveness route answers.

    The process group's id is the server's pid. `on_spawn(pid)` is called as soon as the process
    exists, before the wait, so that a caller can record it; if the wait ends in any exception
    (Ctrl-C included), the server is stopped before the exception goes on. `extra_env` is added to
    the server's environment (jobs deploy --collect sets scoring/collect.py's variables there).
    """
    if port_in_use(port):
        raise ServerError(f"port {port} on {HOST} is already in use; choose another with --port")
    # The deployment's own settings come only from extra_env: a SCORING_THRESHOLD left in the user's shell
    # must not change the operating point of a server deployed without one.
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SCORING_THRESHOLD")},
        "WORKER_COUNT": str(workers),
        # gunicorn keeps a control socket under $HOME/.gunicorn; keep it out of the user's home.
        "HOME": str(log_path.parent),
        **(extra_env or {}),
    }
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                str(python),
                "-c",
                _LAUNCHER,
                "--entry_script",
                str(entry_script),
                "--model_dir",
                str(model_dir),
                "--port",
                str(port),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(entry_script.parent),
            start_new_session=True,
        )
    server = RunningServer(process.pid, port, log_path)
    try:
        if on_spawn is not None:
            on_spawn(process.pid)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise ServerError(
                    f"the inference server exited with code {process.returncode} before it was "
                    "ready:\n" + log_tail(log_path)
                )
            if is_live(server.url):
                return server
            time.sleep(0.2)
        raise ServerError(f"the inference server was not live after {timeout_s:.0f} s:\n" + log_tail(log_path))
    except BaseException:
        # Nobody else knows this server yet: an interrupted or failed start must not leave it running.
        stop(process.pid)
        raise


def is_live(url: str) -> bool:
    # Here, not at the top: urllib.request brings http.client, email and ssl; `status` and `stop` rarely probe.
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url + "/", timeout=2) as response:  # noqa: S310 (loopback URL we built)
            status: int = response.status
            return status == 200
    except (urllib.error.URLError, OSError):
        return False


def _proc_state(pid: int) -> str | None:
    """The process's state letter from /proc (Linux), or None where /proc is not available."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[0]


def _any_thread_alive(proc_dir: Path) -> bool:
    """True while any thread of the process under `proc_dir` (/proc/<pid>) is neither a zombie nor dead.

    The process's own state is its main thread's: a multi-threaded process shows Z as soon as its main
    thread has exited, while its other threads are still exiting and holding the file table, the server's
    listening socket included (Linux frees it with the last thread). Seen here under load: a gunicorn
    worker (4 threads) showed Z beside a thread still running, its port still answering and no pid owning
    it, which deploy then reported as a port taken by another program (issue 21).
    """
    try:
        tasks = list((proc_dir / "task").iterdir())
    except OSError:
        return False  # gone between the listing of /proc and now
    for task in tasks:
        try:
            state = (task / "stat").read_text().rpartition(")")[2].split()[0]
        except (OSError, IndexError):
            continue  # that thread is gone
        if state not in ("Z", "X"):
            return True
    return False


def is_running(pid: int) -> bool:
    """True if the process exists and some thread of it runs: not a zombie (a killed process whose parent
    has not reaped it still answers `kill -0`; in a container whose init does not reap, it stays that way),
    nor a process whose main thread has exited while its last threads finish (see _any_thread_alive)."""
    _reap(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if _proc_state(pid) is None:
        return True  # no /proc to look at: kill -0 is all there is
    return _any_thread_alive(Path(f"/proc/{pid}"))


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    for entry in proc.iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            # fields: state, ppid, pgrp, ...
            if len(fields) > 2 and fields[2] == str(pgid) and _any_thread_alive(entry):
                return True
    return False


def stop(pid: int, timeout_s: float = 15.0, kill_timeout_s: float = 10.0) -> bool:
    """Stop the server's whole process group (gunicorn master and workers), also when the master is gone
    and only workers are left. True if any of it was running.

    SIGTERM first; whatever still runs after `timeout_s` seconds gets SIGKILL. Returns once no thread of the
    group runs any more (so its port is free for the next server), or after a further `kill_timeout_s`.
    """
    try:
        os.killpg(pid, signal.SIGTERM)
        # A stopped (SIGSTOP, Ctrl-Z) process acts on SIGTERM only once continued.
        os.killpg(pid, signal.SIGCONT)
    except ProcessLookupError:
        return False
    if _gone(pid, timeout_s):
        return True
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    # SIGKILL is delivered, not done: the group's threads still have to exit and release the port.
    _gone(pid, kill_timeout_s)
    return True


def _gone(pgid: int, timeout_s: float) -> bool:
    """Wait up to `timeout_s` seconds for process group `pgid` to have no running thread; True if it has none."""
    deadline = time.monotonic() + timeout_s
    while True:
        _reap(pgid)
        if not _group_alive(pgid):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)


def _reap(pid: int) -> None:
    # A child of this process stays a zombie (and "running" to kill -0) until waited for.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
