"""What is really running of the local servers this project started, found by process group.

Each server is azmlinfsrv: a gunicorn master and the workers it forks, all in one process group
whose id is the master's pid (the server is started in a session of its own). After `kill -9` of
the master its workers can live on, still holding the listening socket and answering on the
port, while the master's pid is gone (or a zombie, where init does not reap). So what runs is
judged by the group's members, not by the recorded pid.

Only processes we started are ever touched: members of a recorded group that were created no
earlier than its master and run the inference server (a reused group id cannot pass both).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import psutil

# Every server process runs the launcher in jobs/local/inference_server.py, which imports this package.
MARKER = "azureml_inference_server_http"


@dataclass(frozen=True)
class Group:
    """One server's process group as it is now: the master (if alive) and the other members."""

    pgid: int
    master_alive: bool
    pids: tuple[int, ...]  # every live member, the master included when alive

    @property
    def alive(self) -> bool:
        return bool(self.pids)

    @property
    def workers(self) -> tuple[int, ...]:
        return tuple(pid for pid in self.pids if pid != self.pgid)


def create_time(pid: int) -> float:
    """When the process started (seconds since the epoch, as psutil reports it), or 0.0 if it is gone."""
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return 0.0


def group(pgid: int, started: float = 0.0) -> Group:
    """The live members of process group `pgid` that run the inference server.

    `started` is the master's create time when it was recorded (0.0 when unknown): a process
    created earlier cannot belong to the server. Zombies are not members: they hold no port (a zombie
    main thread whose other threads are still exiting holds it a moment longer; inference_server.stop
    waits for those).
    """
    pids = []
    for proc in psutil.process_iter(["cmdline", "create_time", "status"]):
        try:
            if os.getpgid(proc.pid) != pgid:
                continue
        except OSError:
            continue
        info = proc.info
        if info["status"] == psutil.STATUS_ZOMBIE or info["create_time"] is None:
            continue
        # create_time is rounded differently by the kernel's clock ticks: allow a second.
        if started and info["create_time"] < started - 1:
            continue
        if not any(MARKER in part for part in info["cmdline"] or ()):
            continue
        pids.append(proc.pid)
    return Group(pgid, pgid in pids, tuple(sorted(pids)))


def listeners(port: int) -> list[tuple[int, str]]:
    """(pid, process name) of whatever listens on `port` over TCP, where the system lets us see it."""
    found: dict[int, str] = {}
    with contextlib.suppress(psutil.Error, OSError):
        for conn in psutil.net_connections("tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
                try:
                    found[conn.pid] = psutil.Process(conn.pid).name()
                except psutil.Error:
                    found[conn.pid] = "?"
    return sorted(found.items())
