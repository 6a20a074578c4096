"""The local endpoint's records, without a real server: what status and stop do with what they find."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import psutil
import pytest

from jobs.errors import JobsError
from jobs.local import processes
from jobs.local.backend import LocalBackend


def backend(tmp_path) -> tuple[LocalBackend, list[str]]:
    said: list[str] = []
    return LocalBackend(tmp_path / ".local", tmp_path / "runs", say=said.append), said


def start_in_own_session(*extra: str) -> subprocess.Popen[bytes]:
    """A sleeping process in a process group of its own; `extra` ends up in its command line."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", *extra], start_new_session=True)


def record(home, process: subprocess.Popen[bytes], port: int = 5999) -> None:
    servers = home / ".local" / "servers"
    servers.mkdir(parents=True, exist_ok=True)
    (servers / f"{process.pid}.json").write_text(json.dumps({
        "pid": process.pid, "port": port, "model_version": 3, "log": "x.log",
        "started": processes.create_time(process.pid)}))


def wait_gone(process: subprocess.Popen[bytes]) -> bool:
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        return False
    return True


def test_an_unreadable_state_file_is_named_and_stop_clears_it(tmp_path):
    local, _ = backend(tmp_path)
    (tmp_path / ".local").mkdir()
    (tmp_path / ".local" / "endpoint.json").write_text("{half a file")
    with pytest.raises(JobsError) as error:
        local.status()
    assert "endpoint.json is unreadable" in str(error.value)
    assert "`.venv/bin/python -m jobs stop` ends every server this project started" in str(error.value)
    assert local.stop() == "nothing was running"
    assert not (tmp_path / ".local" / "endpoint.json").exists()
    assert local.status() == "nothing is deployed locally"


def test_a_server_left_by_an_interrupted_command_is_listed_and_stopped(tmp_path):
    local, said = backend(tmp_path)
    # Stands for a server a killed deploy started: a recorded group that runs the inference server.
    left = start_in_own_session(processes.MARKER)
    try:
        record(tmp_path, left)
        deadline = time.monotonic() + 10
        while not processes.group(left.pid).alive:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        status = local.status()
        assert status.startswith("nothing is deployed locally")
        assert (f"also running, not serving: a server left by an interrupted command (version 3, port 5999, pids "
                f"{left.pid})") in status
        assert local.stop() == "nothing was deployed"
        assert wait_gone(left)
        assert any(f"pids {left.pid}" in line for line in said)
        assert list((tmp_path / ".local" / "servers").iterdir()) == []
    finally:
        left.kill()
        left.wait()


def test_only_processes_that_run_the_server_are_touched(tmp_path):
    local, _ = backend(tmp_path)
    # A recorded group id now used by something else (not the inference server): left alone.
    other = start_in_own_session()
    try:
        record(tmp_path, other)
        assert local.status() == "nothing is deployed locally"
        assert local.stop() == "nothing was running"
        assert psutil.Process(other.pid).status() != psutil.STATUS_ZOMBIE and other.poll() is None
    finally:
        other.kill()
        other.wait()
