"""The local "online endpoint": azmlinfsrv on 127.0.0.1, with a state file saying what runs.

    .local/endpoint.json  {"pid", "port", "model_name", "model_version", "log", "started_at"}

The state file is written only after the server answers its liveness probe and the lesson's
sample, and removed when the server is stopped, so it never names a server that is not there.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from jobs import inference_server
from jobs.errors import JobsError
from jobs.local.registry import ModelVersion

DEFAULT_PORT = 5001


@dataclass(frozen=True)
class EndpointState:
    pid: int
    port: int
    model_name: str
    model_version: int
    log: str
    started_at: str
    collect_dir: str | None = None  # where scored records go (deploy --collect), else None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class LocalEndpoint:
    def __init__(self, home: Path, scoring_python: Path | None = None, say: Callable[[str], None] = print) -> None:
        self.home = home
        self.state_file = home / "endpoint.json"
        self._scoring_python = scoring_python
        self.say = say
        self._collect_env: dict[str, str] = {}

    def scoring_python(self) -> Path:
        if self._scoring_python is None:
            from jobs.scoring_env import DEFAULT_VENV, ScoringEnvError, ensure_scoring_venv, is_current

            if not is_current():
                self.say(f"building {DEFAULT_VENV.name} from scoring/conda.yaml (missing or stale; about a minute)")
            try:
                self._scoring_python = ensure_scoring_venv()
            except ScoringEnvError as error:
                raise JobsError(str(error)) from None
        return self._scoring_python

    def state(self) -> EndpointState | None:
        """What runs, or None. A state file whose process has died is cleaned up here."""
        if not self.state_file.exists():
            return None
        try:
            state = EndpointState(**json.loads(self.state_file.read_text()))
        except (ValueError, TypeError) as error:
            raise JobsError(f"{self.state_file} is unreadable ({error}); stop any azmlinfsrv process by hand "
                            "and delete the file") from None
        if not inference_server.is_running(state.pid):
            self.state_file.unlink()
            return None
        return state

    def deploy(self, model: ModelVersion, port: int = DEFAULT_PORT, collect: bool = False) -> EndpointState:
        """Blue/green on one machine: the new server must pass the smoke test before the old one stops."""
        if not 1024 <= port <= 65535:
            raise JobsError(f"--port {port} is not a usable port; choose one from 1024 to 65535")
        python = self.scoring_python()
        self._collect_env = collection_env(self.home, model) if collect else {}
        old = self.state()
        if (old is None or old.port != port) and inference_server.port_in_use(port):
            raise JobsError(f"port {port} on 127.0.0.1 is already in use by another program; choose another "
                            "with --port")
        log = self.home / f"server-v{model.version}.log"
        unchanged = (f"The running version {old.model_version} is untouched." if old is not None
                     else "Nothing was deployed.")
        if old is not None and old.port == port:
            # The port is taken by the running version: prove the new one on a spare port first.
            candidate = self._proven(python, model, inference_server.free_port(), log, unchanged)
            inference_server.stop(candidate.pid)
            inference_server.stop(old.pid)
            self.state_file.unlink(missing_ok=True)
            try:
                final = self._start_and_smoke_test(python, model, port, log)
            except JobsError as error:
                # Proven on a spare port a moment ago, so this is rare (the port was taken in between).
                raise JobsError(f"{error}\nThe previous version {old.model_version} was stopped to free port {port}; "
                                f"bring it back with `python -m jobs deploy --version {old.model_version}`.") from None
        else:
            final = self._proven(python, model, port, log, unchanged)
            if old is not None:
                inference_server.stop(old.pid)
        state = EndpointState(final.pid, port, model.name, model.version, str(log),
                              time.strftime("%Y-%m-%dT%H:%M:%S%z"), self._collect_env.get(COLLECT_DIR_VARIABLE))
        self.home.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(state), indent=2))
        tmp.replace(self.state_file)
        return state

    def _proven(self, python: Path, model: ModelVersion, port: int, log: Path,
                unchanged: str) -> inference_server.RunningServer:
        try:
            return self._start_and_smoke_test(python, model, port, log)
        except JobsError as error:
            raise JobsError(f"{error}\n{unchanged}") from None

    def _start_and_smoke_test(self, python: Path, model: ModelVersion, port: int,
                              log: Path) -> inference_server.RunningServer:
        from jobs.invocation import SAMPLE_REQUEST, check_answer

        try:
            server = inference_server.start(python, model.model_dir, port, log,
                                            extra_env=self._collect_env)
        except inference_server.ServerError as error:
            raise JobsError(f"version {model.version} did not start. {error}") from None
        try:
            check_answer(post_json(server.url + "/score", SAMPLE_REQUEST), records=1)
        except JobsError as error:
            inference_server.stop(server.pid)
            raise JobsError(f"version {model.version} failed its smoke test. {error}\n"
                            + inference_server.log_tail(log)) from None
        return server

    def stop(self) -> EndpointState | None:
        state = self.state()
        if state is not None:
            inference_server.stop(state.pid)
            self.state_file.unlink(missing_ok=True)
        return state

    def invoke(self, payload: dict[str, Any]) -> Any:
        state = self.state()
        if state is None:
            raise JobsError("nothing is deployed locally; run `python -m jobs deploy --target local` first")
        return post_json(state.url + "/score", payload)


COLLECT_DIR_VARIABLE = "HEART_FAILURE_COLLECT_DIR"


def collection_env(home: Path, model: ModelVersion) -> dict[str, str]:
    """The variables that turn on scoring/collect.py's local mode: records under <home>/collected."""
    return {"HEART_FAILURE_COLLECT": "local", COLLECT_DIR_VARIABLE: str(home / "collected"),
            "HEART_FAILURE_COLLECT_MODEL": f"{model.name}:{model.version}"}


def post_json(url: str, payload: Any, timeout_s: float = 30.0) -> Any:
    """POST JSON and return the decoded answer; a 4xx answer is returned too (the client's mistake)."""
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",  # noqa: S310
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 (loopback URL)
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        body = error.read().decode(errors="replace")
        if 400 <= error.code < 500:
            try:
                return {"status": error.code, **json.loads(body)}
            except ValueError:
                return {"status": error.code, "message": body[:500]}
        raise JobsError(f"the endpoint answered {error.code}: {body[:500]}") from None
    except (urllib.error.URLError, OSError) as error:
        raise JobsError(f"could not reach {url}: {error}") from None
