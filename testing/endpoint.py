"""A stand-in for a locally deployed model: an HTTP server that `jobs invoke`, `status` and `stop` take
for the real one, without the scoring venv or a trained model, started in well under a second.

It answers GET / (the liveness probe) with 200 and POST /score with {"result": [false]} for any body.
It is recorded in the local home the way jobs/local/endpoint.py records a deployment (endpoint.json
and servers/<pid>.json) and runs in a session of its own, so that its pid is its process group's id.
Its command line carries jobs.local.processes.MARKER, which is how jobs/local/processes.py tells a
server of ours from any other process. tests/jobs/test_cli_startup.py and bench/startup.py use it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from jobs.local import inference_server, processes

_SERVER = """
import http.server, json, sys

class Handler(http.server.BaseHTTPRequestHandler):
    def _answer(self, body):
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self._answer("Healthy")

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._answer({"result": [False]})

    def log_message(self, *args):
        pass

server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


@contextmanager
def stand_in_endpoint(home: Path, model_version: int = 1) -> Iterator[int]:
    """Run the stand-in and record it as version `model_version` deployed under `home` (a JOBS_LOCAL_HOME);
    yield its port. Its whole process group is killed at the end, whatever `jobs stop` did to it."""
    server = subprocess.Popen(
        [sys.executable, "-c", _SERVER, processes.MARKER], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        state = {
            "pid": server.pid,
            "port": port,
            "model_name": "heart-failure-automl",
            "model_version": model_version,
            "log": str(home / f"server-v{model_version}.log"),
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "started": processes.create_time(server.pid),
            "collect_dir": None,
        }
        (home / "servers").mkdir(parents=True, exist_ok=True)
        (home / "servers" / f"{server.pid}.json").write_text(
            json.dumps({key: state[key] for key in ("pid", "port", "model_version", "log", "started")})
        )
        (home / "endpoint.json").write_text(json.dumps(state))
        if not inference_server.is_live(inference_server.base_url(port)):
            raise RuntimeError(f"the stand-in endpoint on port {port} does not answer")
        yield port
    finally:
        with suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        server.wait()
