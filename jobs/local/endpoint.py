"""The local "online endpoint": azmlinfsrv on 127.0.0.1, with files saying what runs.

    .local/endpoint.json          {"pid", "port", "model_name", "model_version", "log", "started_at", "started",
                                   "collect_dir"}
    .local/servers/<pid>.json     every server this project started and has not stopped yet
    .local/endpoint.lock          held by deploy and stop: one of them at a time
    .local/collected/             scored records, when deployed with --collect (scoring/collect.py)

endpoint.json is written only after the server answers its liveness probe and the lesson's
sample. A server is recorded under servers/ the moment its process exists, so a deploy that is
interrupted at any point (Ctrl-C, a closed terminal, kill -9) leaves nothing that `status` cannot
see and that the next `deploy` or `stop` does not end. What runs is judged by the server's
process group (jobs/local/processes.py), not by its recorded pid: after `kill -9` of the main
process its workers can go on holding the port.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from jobs.commands import jobs_command
from jobs.errors import Interrupted, JobsError, log_error
from jobs.local import inference_server, processes
from jobs.local.locking import exclusive, is_held
from jobs.local.registry import ModelVersion
from jobs.options import OPTIONS

DEFAULT_PORT: int = OPTIONS["port"].default


@dataclass(frozen=True)
class EndpointState:
    pid: int  # the server's main process, which is also its process group's id
    port: int
    model_name: str
    model_version: int
    log: str
    started_at: str
    started: float = 0.0  # the main process's create time (psutil): tells it from a later process with its pid
    collect_dir: str | None = None  # where scored records go (deploy --collect), else None

    @property
    def url(self) -> str:
        return inference_server.base_url(self.port)

    @property
    def score_url(self) -> str:
        return inference_server.score_url(self.port)


@dataclass(frozen=True)
class Survey:
    """What runs now: the server endpoint.json names (and its group), servers left by interrupted
    commands, and whether a deploy or stop is under way."""

    state: EndpointState | None
    serving: processes.Group | None
    strays: list[tuple[dict[str, Any], processes.Group]] = field(default_factory=list)
    busy: bool = False


def check_port(port: int) -> None:
    """Refuse a port the local endpoint cannot use (with the flag, the value and what is allowed)."""
    problem = OPTIONS["port"].problem(port)
    if problem:
        raise JobsError(f"{problem} (for `make demo`: PORT=)")


class LocalEndpoint:
    def __init__(
        self,
        home: Path,
        scoring_python: Path | None = None,
        say: Callable[[str], None] = print,
        on_change: Callable[[EndpointState | None], None] | None = None,
    ) -> None:
        """`on_change` is called, with the endpoint lock held, whenever what serves changes: with the new state
        after a deploy's switch, with None after a stop (the registry's aliases follow it: jobs/local/backend.py)."""
        self.on_change = on_change or (lambda state: None)
        self.home = home
        self.state_file = home / "endpoint.json"
        self.servers_dir = home / "servers"
        self.lock_file = home / "endpoint.lock"
        self._scoring_python = scoring_python
        self.say = say

    def scoring_python(self) -> Path:
        if self._scoring_python is None:
            from jobs.local.scoring_env import DEFAULT_VENV, ScoringEnvError, ensure_scoring_venv, is_current

            if not is_current():
                self.say(f"building {DEFAULT_VENV.name} from scoring/conda.yaml (missing or stale; about a minute)")
            try:
                self._scoring_python = ensure_scoring_venv()
            except ScoringEnvError as error:
                raise JobsError(str(error)) from None
        return self._scoring_python

    # -- what is recorded ------------------------------------------------------------------

    def _recorded_state(self) -> EndpointState | None:
        try:
            text = self.state_file.read_text()
        except FileNotFoundError:
            return None
        try:
            return EndpointState(**json.loads(text))
        except (ValueError, TypeError) as error:
            raise JobsError(
                f"{self.state_file} is unreadable ({error}); `{jobs_command('stop')}` ends every "
                "server this project started and removes the file"
            ) from None

    def _write_state(self, state: EndpointState) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_name(f".endpoint-{state.pid}.tmp")
        tmp.write_text(json.dumps(asdict(state), indent=2))
        tmp.replace(self.state_file)  # atomic: a reader sees the old file or the new one

    def _record(self, pid: int, port: int, model: ModelVersion, log: Path) -> None:
        self.servers_dir.mkdir(parents=True, exist_ok=True)
        record = {
            "pid": pid,
            "port": port,
            "model_version": model.version,
            "log": str(log),
            "started": processes.create_time(pid),
        }
        tmp = self.servers_dir / f".{pid}.tmp"
        tmp.write_text(json.dumps(record))
        tmp.replace(self.servers_dir / f"{pid}.json")

    def _forget(self, pid: int) -> None:
        (self.servers_dir / f"{pid}.json").unlink(missing_ok=True)

    def _records(self) -> list[dict[str, Any]]:
        found = []
        for path in sorted(self.servers_dir.glob("*.json")) if self.servers_dir.is_dir() else []:
            try:
                record = json.loads(path.read_text())
                found.append(
                    {
                        "pid": int(record["pid"]),
                        "port": int(record["port"]),
                        "model_version": record.get("model_version"),
                        "started": float(record["started"]),
                    }
                )
            except (OSError, ValueError, KeyError, TypeError):
                path.unlink(missing_ok=True)  # not ours to trust, and nothing to act on
        return found

    # -- what runs -------------------------------------------------------------------------

    def survey(self) -> Survey:
        """What is really running, judged by process groups; changes nothing."""
        state = self._recorded_state()
        serving = processes.group(state.pid, state.started) if state is not None else None
        strays = []
        for record in self._records():
            if state is not None and record["pid"] == state.pid:
                continue
            found = processes.group(record["pid"], record["started"])
            if found.alive:
                strays.append((record, found))
        return Survey(state, serving, strays, is_held(self.lock_file))

    def state(self) -> EndpointState | None:
        """The server endpoint.json names, if its main process is alive; None if nothing is deployed.

        A recorded server whose main process is gone is an error that says what is left and what to run.
        """
        survey = self.survey()
        if survey.state is None or survey.serving is None:
            return None
        if survey.serving.master_alive:
            return survey.state
        if survey.serving.alive:
            raise JobsError(describe_broken(survey.state, survey.serving))
        return None

    def _clean_up(self, keep: int | None = None) -> list[str]:
        """Stop every server we started except `keep` (a pid), and a recorded server whose main process is
        gone; say what was stopped. Only members of recorded process groups are touched."""
        stopped = []
        state = self._recorded_state()
        if state is not None and state.pid != keep:
            serving = processes.group(state.pid, state.started)
            if serving.alive:
                inference_server.stop(state.pid)
                stopped.append(
                    f"the remains of version {state.model_version}'s server (pids "
                    f"{', '.join(map(str, serving.pids))}, port {state.port})"
                )
            self.state_file.unlink(missing_ok=True)
        for record in self._records():
            if record["pid"] == keep:
                continue
            found = processes.group(record["pid"], record["started"])
            if found.alive:
                inference_server.stop(record["pid"])
                stopped.append(
                    f"a server left by an interrupted command (version {record['model_version']}, pids "
                    f"{', '.join(map(str, found.pids))}, port {record['port']})"
                )
            self._forget(record["pid"])
        for what in stopped:
            self.say(f"stopped {what}")
        return stopped

    # -- deploy, stop ----------------------------------------------------------------------

    def check_deployable(self, port: int) -> None:
        """Before long work that ends in a deploy (`all`): refuse a port that the deploy would find taken
        by another program. A port held by a server of ours is fine: the deploy replaces it."""
        check_port(port)
        if not inference_server.port_in_use(port):
            return
        survey = self.survey()
        ours = [record["port"] for record, _ in survey.strays]
        if survey.state is not None and survey.serving is not None and survey.serving.alive:
            ours.append(survey.state.port)
        if port not in ours:
            raise JobsError(self._port_taken(port) + "; nothing was done")

    def _port_taken(self, port: int) -> str:
        holders = ", ".join(f"pid {pid} {name}" for pid, name in processes.listeners(port))
        return (
            f"port {port} on 127.0.0.1 is already in use by another program"
            + (f" ({holders})" if holders else "")
            + "; choose another with --port (for `make demo`: PORT=, e.g. `make demo PORT=5002`)"
        )

    def deploy(
        self,
        model: ModelVersion,
        port: int = DEFAULT_PORT,
        collect: bool = False,
        threshold_env: dict[str, str] | None = None,
    ) -> EndpointState:
        """Blue/green on one machine: the new server must pass the smoke test before the old one stops.

        With `collect`, the new server appends each scored record under <home>/collected
        (scoring/collect.py's local mode); without it, the new server collects nothing. `threshold_env` sets
        the deployment's operating point (scoring/contract.py SCORING_THRESHOLD*); without it the model's own.

        Holds the endpoint lock throughout. Raises JobsError when the port is taken by another program
        or the new version fails to start or to answer (the running one is then untouched), and
        Interrupted on Ctrl-C, after stopping the server it was starting, saying what serves. A Ctrl-C
        after the new version was recorded as serving finishes the deploy instead and returns its state.
        """
        # The port first: building the scoring venv can take a minute.
        self.check_deployable(port)
        python = self.scoring_python()
        with exclusive(self.lock_file, "deploying or stopping the local endpoint", self.say):
            before = self._recorded_state()
            try:
                env = {**(collection_env(self.home, model) if collect else {}), **(threshold_env or {})}
                state = self._deploy(python, model, port, env)
                self.on_change(state)
                return state
            except JobsError:
                if before is not None and self._recorded_state() is None:
                    self.on_change(None)  # the same-port path stopped the running version, and the new one failed
                raise
            except KeyboardInterrupt:
                old = self._recorded_state()
                if (
                    old is not None
                    and old != before
                    and old.model_version == model.version
                    and processes.group(old.pid, old.started).master_alive
                ):
                    # Interrupted after the new server was recorded as serving: the switch is done, so the
                    # deploy is finished (the replaced server stopped), not undone; the exit code still says
                    # Ctrl-C (130), so that `all` stops here as the user asked.
                    message = self._finish_interrupted(old, before)
                    self.on_change(old)
                    raise Interrupted(message) from None
                # start() and the smoke test stop their own server; this catches the gaps in between.
                self._clean_up(keep=old.pid if old is not None else None)
                running = (
                    f"version {old.model_version} is serving on port {old.port}"
                    if old is not None
                    else "nothing is deployed"
                )
                if old is None and before is not None:
                    self.on_change(None)
                    # The same-port path stops the running version before starting the new one on its port.
                    running += (
                        f" (version {before.model_version} was stopped to free port {before.port}; bring it "
                        f"back with `{jobs_command(f'deploy --version {before.model_version}')}`)"
                    )
                raise Interrupted(
                    f"deploy of version {model.version} interrupted; its server was stopped and {running}"
                ) from None

    def _finish_interrupted(self, state: EndpointState, replaced: EndpointState | None) -> str:
        """Ctrl-C after `state` (the new version) took over: stop the server it replaces, as the deploy would
        have; return the message that says so."""
        if replaced is not None and replaced.pid == state.pid:
            replaced = None  # the same server: nothing was replaced
        if replaced is not None:
            if processes.group(replaced.pid, replaced.started).alive:
                inference_server.stop(replaced.pid)
            self._forget(replaced.pid)
        self._clean_up(keep=state.pid)  # anything else an earlier interruption left
        return (
            f"interrupted after version {state.model_version} took over on port {state.port}: the deploy is "
            "complete"
            + (
                f" (version {replaced.model_version} on port {replaced.port} was stopped, as planned)"
                if replaced is not None
                else ""
            )
        )

    def _deploy(self, python: Path, model: ModelVersion, port: int, env: dict[str, str]) -> EndpointState:
        state = self._recorded_state()
        healthy = state is not None and processes.group(state.pid, state.started).master_alive
        self._clean_up(keep=state.pid if healthy and state is not None else None)
        old = state if healthy else None
        if (old is None or old.port != port) and inference_server.port_in_use(port):
            raise JobsError(self._port_taken(port))
        log = self.home / f"server-v{model.version}.log"
        unchanged = (
            f"The running version {old.model_version} is untouched." if old is not None else "Nothing was deployed."
        )
        if old is not None and old.port == port:
            # The port is taken by the running version: prove the new one on a spare port first.
            candidate = self._proven(python, model, inference_server.free_port(), log, unchanged, env)
            self._stop_server(candidate.pid)
            self._stop_server(old.pid)
            self.state_file.unlink(missing_ok=True)
            try:
                final = self._start_and_smoke_test(python, model, port, log, env)
            except JobsError as error:
                # Proven on a spare port a moment ago, so this is rare (the port was taken in between).
                raise JobsError(
                    f"{error}\nThe previous version {old.model_version} was stopped to free port {port}; "
                    f"bring it back with `{jobs_command(f'deploy --version {old.model_version}')}`."
                ) from None
        else:
            final = self._proven(python, model, port, log, unchanged, env)
        state = EndpointState(
            final.pid,
            port,
            model.name,
            model.version,
            str(log),
            time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            processes.create_time(final.pid),
            env.get(COLLECT_DIR_VARIABLE),
        )
        # Recorded before the old one stops: an interruption from here on leaves the new version serving.
        self._write_state(state)
        if old is not None and old.port != port:
            self._stop_server(old.pid)
        return state

    def _stop_server(self, pid: int) -> None:
        inference_server.stop(pid)
        self._forget(pid)

    def _proven(
        self, python: Path, model: ModelVersion, port: int, log: Path, unchanged: str, env: dict[str, str]
    ) -> inference_server.RunningServer:
        try:
            return self._start_and_smoke_test(python, model, port, log, env)
        except JobsError as error:
            raise JobsError(f"{error}\n{unchanged}") from None

    def _start_and_smoke_test(
        self, python: Path, model: ModelVersion, port: int, log: Path, env: dict[str, str]
    ) -> inference_server.RunningServer:
        from jobs.invocation import check_answer, contract_request

        spawned: list[int] = []

        def record(pid: int) -> None:
            spawned.append(pid)
            self._record(pid, port, model, log)

        try:
            server = inference_server.start(python, model.model_dir, port, log, on_spawn=record, extra_env=env)
        except inference_server.ServerError as error:
            for pid in spawned:
                self._forget(pid)  # start() stopped it
            raise JobsError(f"version {model.version} did not start. {error}{_why(log)}") from None
        try:
            check_answer(post_json(server.score_url, contract_request(model.model_dir)), records=1)
        except JobsError as error:
            self._stop_server(server.pid)
            raise JobsError(
                f"version {model.version} failed its smoke test. {error}\n" + inference_server.log_tail(log) + _why(log)
            ) from None
        except BaseException:
            self._stop_server(server.pid)
            raise
        return server

    def stop(self) -> tuple[EndpointState | None, list[str]]:
        """Stop the deployed server and any server left by an interrupted command.

        Returns the state that was recorded (None if none) and a description of each leftover stopped.
        """
        with exclusive(self.lock_file, "deploying or stopping the local endpoint", self.say):
            try:
                state = self._recorded_state()
            except JobsError:
                # Every server we start is also recorded under servers/: those are stopped below.
                self.state_file.unlink(missing_ok=True)
                self.say(f"removed the unreadable {self.state_file}")
                state = None
            if state is not None and processes.group(state.pid, state.started).master_alive:
                self._stop_server(state.pid)
                self.state_file.unlink(missing_ok=True)
                leftovers = self._clean_up()
            else:
                leftovers = self._clean_up()
            if state is not None:
                self.on_change(None)
            return state, leftovers

    def invoke(self, payload: dict[str, Any]) -> Any:
        state = self.state()
        if state is None:
            raise JobsError(f"nothing is deployed locally; run `{jobs_command('deploy --target local')}` first")
        return post_json(state.score_url, payload)


COLLECT_DIR_VARIABLE = "HEART_FAILURE_COLLECT_DIR"


def collection_env(home: Path, model: ModelVersion) -> dict[str, str]:
    """The variables that turn on scoring/collect.py's local mode: records under <home>/collected."""
    return {
        "HEART_FAILURE_COLLECT": "local",
        COLLECT_DIR_VARIABLE: str(home / "collected"),
        "HEART_FAILURE_COLLECT_MODEL": f"{model.name}:{model.version}",
    }


def describe_broken(state: EndpointState, group: processes.Group) -> str:
    """A recorded server whose main process is gone while some of its workers still run."""
    workers = ", ".join(map(str, group.workers))
    answering = " and still answer" if inference_server.is_live(state.url) else ""
    return (
        f"{state.model_name} version {state.model_version} is not serving properly: its main process (pid "
        f"{state.pid}) is gone, but its worker process(es) {workers} still hold port {state.port}{answering}. "
        f"`{jobs_command('stop')}` ends them; `{jobs_command(f'deploy --version {state.model_version}')}` "
        "ends them and starts the version again"
    )


def post_json(url: str, payload: Any, timeout_s: float = 30.0) -> Any:
    """POST JSON and return the decoded answer; a 4xx answer is returned too (the client's mistake)."""
    # Here, not at the top: urllib.request brings http.client, email and ssl, which `status` and `stop` never use.
    import urllib.error
    import urllib.request

    request = urllib.request.Request(  # noqa: S310 (a loopback URL this module builds)
        url,
        data=json.dumps(payload).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
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


def _why(log: Path) -> str:
    """A last line naming the error the server's log ends with (why the model did not load), or ''."""
    try:
        found = log_error(log.read_text(errors="replace"))
    except OSError:
        return ""
    return f"\nWhy, from its log: {found}" if found else ""
