"""The local target: the same commands as Azure, on this machine."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from jobs.backend import DeployOptions, RequestRefused, StatusText
from jobs.commands import jobs_command
from jobs.environments import REGISTERED_IN, environment, promotion_target
from jobs.errors import JobsError, read_json
from jobs.lineage import MODEL_NAME, champion, model_tags, quality_gate
from jobs.local.endpoint import EndpointState, LocalEndpoint, describe_broken
from jobs.local.lineage import local_baseline, local_noise, local_run
from jobs.local.places import endpoint_home, registry_root
from jobs.local.registry import LocalRegistry, ModelVersion
from jobs.monitoring.check import Thresholds
from jobs.paths import ROOT
from jobs.training import DEFAULT_LOCAL_BUDGET_S, TrainingSettings
from scoring.contract import (
    CONTRACT_FILE,
    THRESHOLD_RULE_VARIABLE,
    THRESHOLD_VARIABLE,
    ModelContract,
    OperatingPoint,
)
from scoring.schema import SchemaError


def operating_point(model_dir: Path, options: DeployOptions, what: str) -> tuple[OperatingPoint, dict[str, str]]:
    """The operating point a deploy of the model in `model_dir` answers at, and the server environment that sets it
    (empty when the model's own recorded point serves). JobsError for a model without a contract (trained before
    contracts existed: train it again) and for a --threshold/--min-sensitivity the model cannot take."""
    from jobs.contract import chosen_point

    try:
        contract = ModelContract.load(model_dir / CONTRACT_FILE)
    except SchemaError as error:
        raise JobsError(
            f"{what} has no usable model contract ({error}); it was trained before models carried their input "
            f"contract and operating point: train and register it again with `{jobs_command('train')}`"
        ) from None
    point = chosen_point(options.threshold, options.min_sensitivity, contract.accuracy_table, what)
    if point is None:
        if contract.operating_point is None:
            raise JobsError(f"{what} records no operating point; deploy it with --threshold T or --min-sensitivity S")
        return contract.operating_point, {}
    return point, {THRESHOLD_VARIABLE: repr(point.threshold), THRESHOLD_RULE_VARIABLE: point.rule}


# The registry aliases that follow an environment's endpoint: the version it serves, and the one it served before
# (what `rollback` goes back to).
SERVING, PREVIOUS = "serving", "previous"


class LocalBackend:
    """This machine, in environment `env` (jobs/environments.py): `deploy`, `invoke`, `status` and `stop` use that
    environment's registry and endpoint; `train` and `register` always the one versions are registered in (dev).
    `port`: where `promote` and `rollback` start an endpoint that is not running yet (default: its declared)."""

    def __init__(
        self,
        home: Path = ROOT / ".local",
        runs_dir: Path = ROOT / "runs",
        budget_s: float = DEFAULT_LOCAL_BUDGET_S,
        say: Callable[[str], None] = print,
        env: str = REGISTERED_IN,
        port: int | None = None,
    ) -> None:
        self.home = home
        self.runs_dir = runs_dir
        self.budget_s = budget_s
        self.say = say
        self.env = environment(env).name
        self.port = port
        self.registry = self._new_registry(self.env)
        self.endpoint = self._endpoint(self.env)

    def _registry(self, env: str) -> LocalRegistry:
        return self.registry if env == self.env else self._new_registry(env)

    def _new_registry(self, env: str) -> LocalRegistry:
        """`env`'s registry, whose "none registered" message names the command that fills it."""
        source = environment(env).promoted_from
        filled_by = f"`{jobs_command(f'promote --version N --to {env}')}` from {source}" if source else None
        return LocalRegistry(registry_root(self.home, env), self.say, filled_by)

    def _endpoint(self, env: str) -> LocalEndpoint:
        """`env`'s endpoint; each switch of what it serves moves the aliases of `env`'s registry (record_serving)."""
        registry = self._registry(env)
        return LocalEndpoint(
            endpoint_home(self.home, env),
            say=self.say,
            on_change=lambda state: record_serving(registry, state),
        )

    def train(self, settings: TrainingSettings, data: Path, wait: bool = True) -> str:
        from jobs.local.automl import train  # heavy (FLAML, pandas): only when training
        from jobs.local.progress import FlamlLogWatcher, TrainingProgress
        from jobs.local.search import time_budget

        settings = settings.for_data(data)

        progress = TrainingProgress(
            time_budget(settings, self.budget_s), settings.primary_metric, max_trials=settings.max_trials
        )
        with FlamlLogWatcher(self.runs_dir, progress):
            result = train(settings, data, self.runs_dir, self.budget_s, progress=self.say)
        self.say(f"best model: {result.best_learner} (its figures: the headline line above, and the report)")
        self.say(f"report: {result.report}")
        dev = self._registry(REGISTERED_IN)
        run_dir = self.runs_dir / result.run_id
        mlflow_run = dev.log_training_run(run_dir, read_json(run_dir / "run.json"))
        self.say(f"MLflow run {mlflow_run} in {dev.uri} (`{jobs_command('ui')}` shows it)")
        return result.run_id

    def _run_info(self, run: str | None) -> dict[str, Any]:
        if run is None:
            runs = sorted(p for p in self.runs_dir.glob("*/run.json")) if self.runs_dir.is_dir() else []
            if not runs:
                raise JobsError(
                    f"there is no local training run to register; run `{jobs_command('train --target local')}` first"
                )
            path = runs[-1]
        else:
            path = self.runs_dir / run / "run.json"
            if not path.is_file():
                known = sorted(p.parent.name for p in self.runs_dir.glob("*/run.json"))
                raise JobsError(
                    f"no finished local run named {run!r} under {self.runs_dir}; runs: "
                    + (", ".join(known[-5:]) or "none")
                )
        info: dict[str, Any] = read_json(path)
        return info

    def register(self, run: str | None, min_auc: float | None) -> str:
        """Gate and register a finished local run; return its version.

        The gate compares the chosen model with the best baseline of the run's own final selection
        (same folds), with the latest version registered for the same features, and with --min-auc
        when given; the tags come from run.json (jobs/lineage.py model_tags).
        """
        info = self._run_info(run)
        training = local_run(info)
        registry = self._registry(REGISTERED_IN)
        versions = registry.versions(MODEL_NAME)
        # The gate runs first, also for a run registered already (as on Azure); a version from the
        # same run is never its own champion.
        verdict = quality_gate(
            training.metrics,
            baseline=local_baseline(info),
            min_score=min_auc,
            champion=champion(((v.version, v.tags) for v in versions), training, noise=local_noise(info)),
        )
        if not any(v.tags.get("training_run") == training.name for v in versions):
            self.say(verdict.summary())
        tags = model_tags(training, verdict, registered_by="jobs register")
        mlflow_run = registry.log_training_run(self.runs_dir / training.name, info)
        version, created = registry.register(MODEL_NAME, mlflow_run, tags)
        self.say(
            f"{'registered' if created else 'already registered'}: {MODEL_NAME} version {version.version} "
            f"(run {training.name}, "
            + (
                training.tags.get("headline.auc")
                or f"AUC_weighted {training.metrics.get('AUC_weighted', float('nan')):.4f}"
            )
            + (
                f"; operating point {training.tags['operating_point.threshold']}"
                if "operating_point.threshold" in training.tags
                else ""
            )
            + ")"
            + (f"; it answers with {training.tags['serving.path']}" if "serving.path" in training.tags else "")
        )
        return str(version.version)

    def deploy(self, version: str | None, options: DeployOptions) -> str:
        if version is not None and not version.isdigit():
            raise JobsError(f"--version {version!r} is not a version number; local versions are 1, 2, 3, ...")
        model = self.registry.get(MODEL_NAME, int(version) if version else None)
        point, env = operating_point(model.model_dir, options, f"version {model.version}")
        state = self.endpoint.deploy(model, options.port, collect=options.collect, threshold_env=env)
        where = "" if self.env == REGISTERED_IN else f"{self.env} "
        self.say(
            f"deployed {MODEL_NAME} {where}version {state.model_version} at {state.score_url} (pid {state.pid}); it "
            f"answers result=true at probability >= {point.threshold:g} ({point.rule})"
            + (f"; collecting scored records in {state.collect_dir}" if state.collect_dir else "")
        )
        return str(state.model_version)

    def promote(self, version: str, to: str) -> str:
        """Copy version `version` of the environment `to` is promoted from (dev) into `to`'s registry, then deploy
        it blue/green on `to`'s endpoint; return what was done, as lines.

        Refuses (PromotionRefused, nothing copied) a version without a passed gate or using a leaking column
        (jobs/promotion_rules.py, the rule Azure applies too); JobsError for an unknown environment or version.
        The copy keeps the MLflow model and every tag, adding promoted.* (where from, who, when). Idempotent: a
        version promoted already is not copied again, and one that already serves there is not deployed again; a
        deploy that failed (nothing switched) is retried by promoting again.
        """
        from jobs.promotion_rules import check_promotable, promoted_at, promoted_by, promotion_tags, same_promotion

        target = promotion_target(to)
        source = str(target.promoted_from)
        if not version.isdigit():
            raise JobsError(f"--version {version!r} is not a version number; local versions are 1, 2, 3, ...")
        model = self._registry(source).get(MODEL_NAME, int(version))
        check_promotable(f"{MODEL_NAME} {source} version {version}", model.tags, to)
        tags = promotion_tags(model.tags, source, version, promoted_by(), promoted_at())

        def same(candidate: ModelVersion) -> bool:
            return same_promotion(candidate.tags, source, version, model.tags)

        copy, created = self._registry(to).copy_in(MODEL_NAME, model, tags, same)
        lines = [
            (
                f"promoted {MODEL_NAME} {source} version {version} to {to} as version {copy.version}"
                if created
                else f"already promoted: {source} version {version} is {to} version {copy.version} (promoted by "
                f"{copy.tags.get('promoted.by')} at {copy.tags.get('promoted.at')}); nothing was copied"
            ),
            f"  its gate: baseline {copy.tags.get('gate.baseline')}; champion {copy.tags.get('gate.champion')}; "
            f"floor {copy.tags.get('gate.min_auc')}"
            + (f"; {copy.tags['headline.auc']}" if "headline.auc" in copy.tags else ""),
        ]
        lines.append(self._deploy_in(to, copy, f"{to} version {copy.version} is registered there"))
        return "\n".join(lines)

    def rollback(self, to: str) -> str:
        """Put `to`'s endpoint back on the version it served before (the registry's `previous` alias), blue/green
        with the smoke test; return what was done. NothingToRollBack when there is none; the deploy's errors."""
        from jobs.promotion_rules import NothingToRollBack

        promotion_target(to)
        registry = self._registry(to)
        previous = registry.by_alias(MODEL_NAME, PREVIOUS)
        if previous is None:
            raise NothingToRollBack(
                f"{to} has no previous version to roll back to: its endpoint has served one version at most "
                f"(promote another with `{jobs_command(f'promote --version N --to {to}')}` first); nothing was changed"
            )
        serving = registry.by_alias(MODEL_NAME, SERVING)
        done = self._deploy_in(to, previous, "nothing was switched")
        came_from = f" from version {serving.version}" if serving is not None else ""
        return f"rolled {to} back{came_from} to version {previous.version}\n{done}"

    def _deploy_in(self, env: str, model: ModelVersion, context: str) -> str:
        """Deploy `model` (of `env`'s registry) on `env`'s endpoint at the model's recorded operating point, unless
        it serves there already; return the line that says which."""
        endpoint = self.endpoint if env == self.env else self._endpoint(env)
        state = endpoint.state()
        if state is not None and state.model_version == model.version:
            return f"{env} version {model.version} already serves at {state.score_url}; nothing was deployed"
        port = state.port if state is not None else self.port or environment(env).port
        point, threshold_env = operating_point(
            model.model_dir, DeployOptions(port=port), f"{env} version {model.version}"
        )
        try:
            state = endpoint.deploy(model, port, threshold_env=threshold_env)
        except JobsError as error:
            raise type(error)(f"{error}\n({context}.)") from None
        return (
            f"deployed {MODEL_NAME} {env} version {state.model_version} at {state.score_url} (pid {state.pid}); "
            f"it answers result=true at probability >= {point.threshold:g} ({point.rule})"
        )

    def sample_request(self) -> dict[str, Any]:
        """The deployed version's example record (its contract), else the lesson's sample."""
        from jobs.invocation import SAMPLE_REQUEST, contract_request

        state = self.endpoint.state()
        if state is None:
            return SAMPLE_REQUEST
        try:
            return contract_request(self.registry.get(MODEL_NAME, state.model_version).model_dir)
        except JobsError:
            return SAMPLE_REQUEST

    def preflight_deploy(self, options: DeployOptions) -> None:
        """What a later deploy needs and can be checked now, before training: a usable, free port."""
        self.endpoint.check_deployable(options.port)

    def invoke(self, payload: dict[str, Any]) -> Any:
        """Score `payload` on the local server; a 4xx answer raises RequestRefused (Backend.invoke)."""
        answer = self.endpoint.invoke(payload)
        # jobs/local/endpoint.py post_json hands a 4xx back as its body with the HTTP status added;
        # a scoring answer never has an integer `status` (scoring/score.py answers {"result": ...}).
        status = answer.get("status") if isinstance(answer, dict) else None
        if isinstance(status, int) and not isinstance(status, bool) and 400 <= status < 500:
            raise RequestRefused(status, answer)
        return answer

    def pipeline(
        self,
        settings: TrainingSettings,
        data: Path,
        min_auc: float | None,
        deploy: DeployOptions | None,
        wait: bool = True,
    ) -> str:
        """The pipeline's steps, in order, on this machine: train, register (gate and tags), then deploy; return
        the registered version. (The command line composes its own train, register and deploy commands
        instead, jobs/cli.py pipeline; this is the Backend contract's entry for other callers.)"""
        version = self.register(self.train(settings, data), min_auc)
        if deploy is not None:
            self.deploy(version, deploy)
        return version

    def monitor(
        self,
        version: str | None,
        thresholds: Thresholds,
        window_hours: float,
        reference: Path | None,
        emails: list[str],
    ) -> object:
        """Drift of the collected records against the training data (jobs/local/monitoring.py)."""
        from jobs.local.monitoring import monitor

        if emails:
            raise JobsError("--email is for the Azure target's alerts; locally, act on the exit code (1 on drift)")
        state = self.endpoint.state()
        if state is not None and not state.collect_dir and (version is None or version == str(state.model_version)):
            # As the Azure target refuses a schedule for a deployment that collects nothing: here the window
            # can only hold what an earlier deployment collected, so say so before the figures.
            self.say(
                f"warning: the deployed version {state.model_version} collects nothing (deployed without "
                f"--collect); the window holds only what earlier deployments collected. Deploy with "
                f"`{jobs_command('deploy --collect')}` to watch it."
            )
        return monitor(
            self.home,
            self.runs_dir,
            state.model_version if state else None,
            version,
            thresholds,
            window_hours,
            reference,
            say=self.say,
        )

    def status(self) -> StatusText:
        """What really runs: judged by the recorded servers' process groups, not by a recorded pid."""
        from jobs.local import processes

        survey = self.endpoint.survey()
        state, serving = survey.state, survey.serving
        if state is None or serving is None:
            lines = ["nothing is deployed locally"]
        elif serving.master_alive:
            lines = [
                f"{state.model_name} version {state.model_version} is serving at {state.score_url} "
                f"(pid {state.pid}, since {state.started_at}, log {state.log})"
                + (f"; collecting scored records in {state.collect_dir}" if state.collect_dir else "")
            ]
        elif serving.alive:
            lines = [describe_broken(state, serving)]
        else:
            lines = [
                f"nothing is deployed locally: {state.model_name} version {state.model_version}'s server (pid "
                f"{state.pid}, port {state.port}) has exited; its log is {state.log}"
            ]
            others = processes.listeners(state.port)
            if others:
                lines.append(
                    f"port {state.port} is now held by another program ("
                    + ", ".join(f"pid {pid} {name}" for pid, name in others)
                    + ")"
                )
        for record, found in survey.strays:
            lines.append(
                f"also running, not serving: a server left by an interrupted command (version "
                f"{record['model_version']}, port {record['port']}, pids {', '.join(map(str, found.pids))})"
                + ("" if survey.busy else f"; `{jobs_command('stop')}` or the next deploy ends it")
            )
        if survey.busy:
            lines.append("a deploy or stop is under way right now; this may change in a moment")
        if self.env != REGISTERED_IN:
            lines = [f"{self.env}: {line}" for line in lines]
        text = StatusText("\n".join(lines))
        # Recorded as deployed but not serving (exited, or only workers left): `status` exits 1.
        text.serving_properly = state is None or serving is None or serving.master_alive
        return text

    def stop(self) -> str:
        state, leftovers = self.endpoint.stop()
        where = "" if self.env == REGISTERED_IN else f"{self.env}: "
        if state is None and not leftovers:
            return f"{where}nothing was running"
        if state is None:
            return f"{where}nothing was deployed"
        return f"{where}stopped {state.model_name} version {state.model_version} (pid {state.pid})"


def record_serving(registry: LocalRegistry, state: EndpointState | None) -> None:
    """Move `registry`'s aliases after its endpoint switched to `state` (None: stopped), with the endpoint lock held.

    `serving` names what the endpoint serves (removed on stop); `previous` what it served before the current
    version (kept on stop, so `rollback` brings it back). A deploy of the `previous` version itself after a stop
    leaves no previous: both aliases would name one version.
    """
    versions = registry.versions(MODEL_NAME)
    current = next((v.version for v in versions if SERVING in v.aliases), None)
    before = next((v.version for v in versions if PREVIOUS in v.aliases), None)
    moves: dict[str, int | None] = {}
    if state is None:
        moves[SERVING] = None
    elif any(v.version == state.model_version for v in versions):
        if current is not None and current != state.model_version:
            moves[PREVIOUS] = current
        elif current is None and before == state.model_version:
            moves[PREVIOUS] = None
        moves[SERVING] = state.model_version
    if moves and versions:
        registry.move_aliases(MODEL_NAME, moves)
