"""The local endpoint's records, without a real server: what status and stop do with what they find."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import psutil
import pytest

from jobs.commands import jobs_command
from jobs.errors import Interrupted, JobsError
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
    (servers / f"{process.pid}.json").write_text(
        json.dumps(
            {
                "pid": process.pid,
                "port": port,
                "model_version": 3,
                "log": "x.log",
                "started": processes.create_time(process.pid),
            }
        )
    )


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
    assert f"`{jobs_command('stop')}` ends every server this project started" in str(error.value)
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
        assert (
            f"also running, not serving: a server left by an interrupted command (version 3, port 5999, pids "
            f"{left.pid})"
        ) in status
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


def test_ctrl_c_after_the_new_version_took_over_finishes_the_deploy_and_says_so(tmp_path, monkeypatch):
    """The race a tester hit: Ctrl-C while the old version was being stopped, after the new one was recorded
    as serving. It said the new server was stopped (it was serving) and exited 130."""
    from pathlib import Path

    from jobs.local import endpoint as endpoint_module
    from jobs.local import inference_server
    from jobs.local.endpoint import EndpointState, LocalEndpoint
    from jobs.local.registry import ModelVersion

    said: list[str] = []
    home = tmp_path / ".local"
    local = LocalEndpoint(home, scoring_python=Path(sys.executable), say=said.append)
    old, new = start_in_own_session(processes.MARKER), start_in_own_session(processes.MARKER)
    try:
        for process in (old, new):
            deadline = time.monotonic() + 10
            while not processes.group(process.pid).alive:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        home.mkdir()
        local._write_state(
            EndpointState(old.pid, 5401, "heart-failure-automl", 1, "v1.log", "then", processes.create_time(old.pid))
        )
        record(tmp_path, old, port=5401)
        monkeypatch.setattr(local, "check_deployable", lambda port: None)
        monkeypatch.setattr(endpoint_module.inference_server, "port_in_use", lambda port: False)

        def started(python, model, port, log, unchanged, env):  # the new server, smoke-tested on 5402
            local._record(new.pid, port, model, log)
            return inference_server.RunningServer(new.pid, port, log)

        monkeypatch.setattr(local, "_proven", started)
        stop_server = local._stop_server

        def ctrl_c_while_stopping_the_old(pid):
            monkeypatch.setattr(local, "_stop_server", stop_server)
            raise KeyboardInterrupt

        monkeypatch.setattr(local, "_stop_server", ctrl_c_while_stopping_the_old)
        with pytest.raises(Interrupted) as caught:
            local.deploy(ModelVersion("heart-failure-automl", 2, tmp_path, {}), 5402)

        state = local.state()
        assert state is not None and (state.pid, state.model_version, state.port) == (new.pid, 2, 5402)
        assert wait_gone(old) and new.poll() is None
        assert not any("left by an interrupted command" in line for line in said), said
        assert caught.value.exit_code == 130
        assert str(caught.value) == (
            "interrupted after version 2 took over on port 5402: the deploy is complete "
            "(version 1 on port 5401 was stopped, as planned)"
        )
        local_backend, _ = backend(tmp_path)
        assert local_backend.status().startswith(
            "heart-failure-automl version 2 is serving at http://127.0.0.1:5402/score"
        )
    finally:
        for process in (old, new):
            process.kill()
            process.wait()


def test_status_exits_1_when_the_deployment_is_not_serving(tmp_path, monkeypatch, capsys):
    from jobs.cli import main
    from jobs.local.endpoint import EndpointState, LocalEndpoint

    monkeypatch.setenv("JOBS_LOCAL_HOME", str(tmp_path / ".local"))
    monkeypatch.setenv("JOBS_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.delenv("JOBS_TARGET", raising=False)
    assert main(["status"]) == 0  # nothing deployed is not a failure
    gone = start_in_own_session(processes.MARKER)
    started = processes.create_time(gone.pid)
    gone.kill()
    gone.wait()
    (tmp_path / ".local").mkdir(exist_ok=True)
    LocalEndpoint(tmp_path / ".local")._write_state(
        EndpointState(gone.pid, 5999, "heart-failure-automl", 1, "v1.log", "then", started)
    )
    capsys.readouterr()
    assert main(["status"]) == 1
    out, err = capsys.readouterr()
    assert "version 1's server" in out and "has exited" in out
    assert "error: the local endpoint is not serving properly" in err
