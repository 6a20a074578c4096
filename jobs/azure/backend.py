"""The Azure target: the lesson's notebook steps, on azure-ai-ml v2, against the stack's workspace."""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from jobs import dataset
from jobs.azure import monitoring, specs
from jobs.azure.lineage import azure_baseline, azure_budget, azure_children
from jobs.azure.promotion import AzurePromotion, Places, workspace_uri
from jobs.azure.retry import retry, wait_for
from jobs.azure.rollout import DEPLOY_TIMEOUT_S, BlueGreenRollout, invoke_endpoint
from jobs.azure.session import AzureSession, authentication_error
from jobs.azure.stack_outputs import StackOutputs
from jobs.backend import Backend, DeployOptions, RequestRefused
from jobs.commands import JOBS
from jobs.errors import Interrupted, JobsError, first_line, read_json
from jobs.lineage import (
    MODEL_NAME,
    UNKNOWN,
    TrainingRun,
    champion,
    model_tags,
    quality_gate,
    training_tags,
)
from jobs.monitoring.check import Thresholds
from jobs.paths import ROOT
from jobs.promotion_rules import promoted_by
from jobs.training import TrainingSettings

T = TypeVar("T")
TERMINAL = {"Completed", "Failed", "Canceled", "NotResponding"}


def _refusal_body(error: HttpResponseError) -> dict[str, Any] | str:
    """The body of a refused scoring request, as the endpoint wrote it.

    azure-ai-ml 1.35.2's invoke (_utils/_endpoint_utils.py validate_response) raises HttpResponseError
    with the response attached; its `message` is the body's `error.message`, which scoring/schema.py's
    400 (`{"message", "errors"}`) does not have, so the body is read from the response itself.
    """
    response = error.response
    if response is not None:
        try:
            text = response.text()
        except Exception:  # undecodable, or a stream not read (azure-core ResponseNotReadError): use the message
            text = ""
        try:
            body = json.loads(text) if text else None
        except ValueError:
            return text
        if isinstance(body, dict):
            return body
    return str(error.message or error)


def _refused(what: str, error: HttpResponseError) -> str:
    """One paragraph for an error answer: the step, the status, Azure's code and message, what to do."""
    status = error.status_code
    detail = getattr(error, "error", None)  # azure-core's ODataV4Format of ARM's {"error": {code, message}}
    code = getattr(detail, "code", None)
    message = getattr(detail, "message", None) or first_line(error, limit=300)
    hint = {
        409: " Another operation is still running on it; wait for it to finish, then run the command again.",
        429: " Azure is throttling requests; wait a few minutes, then run the command again.",
    }.get(status or 0, "")
    return f"{what} failed: Azure ML answered {status}{f' ({code})' if code else ''}: {message.rstrip('.')}.{hint}"


def _status(job: Any) -> str:
    """A job's status as Azure names it ("Running", "Completed").

    azure-ai-ml 1.35.2 hands an AutoML job's status back as its REST enum (JobStatus, a str Enum), which
    compares equal to "Completed" but formats as "JobStatus.COMPLETED" in an f-string on Python 3.11.
    """
    status = job.status
    return str(getattr(status, "value", status))


def _outputs_of(stack: str) -> StackOutputs:
    """Another stack's own outputs (`pulumi stack output --json --stack NAME`), as a promotion's target."""
    from jobs.azure.stack_outputs import resolve

    return resolve(stack, only_stack=True)


def _promote_options(args: argparse.Namespace) -> DeployOptions:
    """How a promotion deploys, from the deploy flags the command line gives `promote` (the defaults without)."""
    defaults = DeployOptions()
    return DeployOptions(
        instance_type=getattr(args, "instance_type", None) or defaults.instance_type,
        instance_count=getattr(args, "instance_count", None) or defaults.instance_count,
        collect=bool(getattr(args, "collect", False)),
        threshold=getattr(args, "threshold", None),
        data=getattr(args, "data", None),
    )


def _wait_limit_s(settings: TrainingSettings) -> float:
    """How long --wait waits: twice AutoML's own timeout plus half an hour for queueing and node start-up."""
    return settings.timeout_minutes * 60 * 2 + 30 * 60


class AzureBackend:
    def __init__(
        self,
        session: AzureSession,
        outputs: StackOutputs,
        stack: str,
        *,
        say: Callable[[str], None] = print,
        sleep: Callable[[float], None] | None = None,
        state_dir: Path | None = None,
        poll_s: float = 30.0,
        deploy_timeout_s: float = DEPLOY_TIMEOUT_S,
        clock: Callable[[], float] = time.monotonic,
        stack_outputs: Callable[[str], StackOutputs] | None = None,
        promote_options: DeployOptions | None = None,
    ) -> None:
        self.session = session
        self.ml = session.ml
        self.outputs = outputs
        self.stack = stack
        self.say = say
        self.sleep = sleep or time.sleep
        self.state_file = (state_dir or ROOT / ".local") / f"azure-{stack}.json"
        self.poll_s = poll_s
        self.deploy_timeout_s = deploy_timeout_s
        self.clock = clock
        # Another stack's outputs (promote's and rollback's `to`): that stack's own, never this one's overrides.
        self.stack_outputs = stack_outputs or _outputs_of
        # How a promotion deploys on prod (threshold, data, VM size): the command line's deploy flags when it has them.
        self.promote_options = promote_options or DeployOptions()

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Backend:
        """The Azure target for parsed command-line flags: a dry run with --dry-run, else a connected backend."""
        from jobs.azure.stack_outputs import resolve

        outputs = resolve(
            args.stack,
            args.outputs,
            {
                "subscription_id": args.subscription_id,
                "resource_group": args.resource_group,
                "workspace_name": args.workspace,
            },
            allow_missing=args.dry_run,
        )
        options = _promote_options(args)
        if args.dry_run:
            from jobs.azure.dry_run import DryRunBackend

            return DryRunBackend(outputs, args.out, stack=args.stack, promote_options=options)
        from jobs.azure.session import connect

        return cls(connect(outputs), outputs, args.stack, promote_options=options)

    def _call(self, what: str, call: Callable[[], T]) -> T:
        """Call Azure with retries; a refusal becomes a message, not a traceback.

        A credential or permission failure says how to log in; any other error answer (400 UserError,
        409 Conflict, a 429 still throttled after the retries) names the step, the status and Azure's own
        error code and message (ARM's ErrorResponse: error.code, error.message). Not found (404) is left
        to the callers, which read it as "not there yet".
        """
        try:
            return self._call_raw(what, call)
        except HttpResponseError as error:
            if isinstance(error, ResourceNotFoundError):
                raise
            raise JobsError(_refused(what, error)) from None

    def _call_raw(self, what: str, call: Callable[[], T]) -> T:
        """_call without turning error answers into messages (for callers that read the answer themselves)."""
        try:
            return retry(call, what, sleep=self.sleep, say=self.say)
        except Exception as error:
            message = authentication_error(error, what)
            if message is None:
                raise
            raise message from None

    # -- data and training ---------------------------------------------------------------

    def ensure_data(self, csv: Path, drop: tuple[str, ...]) -> str:
        """Register the data asset unless this exact content is registered already; return its reference."""
        version = dataset.content_version(csv, drop)
        try:
            self._call("looking up the data asset", lambda: self.ml.data.get(dataset.ASSET_NAME, version=version))
            self.say(f"data asset {dataset.ASSET_NAME}:{version} is registered already")
        except ResourceNotFoundError:
            with tempfile.TemporaryDirectory() as staging:
                folder = specs.data_folder(csv, drop, Path(staging))
                asset = specs.data_asset(csv, drop, folder)
                self._call("registering the data asset", lambda: self.ml.data.create_or_update(asset))
            self.say(f"registered data asset {dataset.ASSET_NAME}:{version}")
        return f"azureml:{dataset.ASSET_NAME}:{version}"

    def train(self, settings: TrainingSettings, data: Path, wait: bool) -> str:
        settings = settings.for_data(data)
        settings.check_data(data, max_nodes=self.outputs.compute_max_nodes)
        self._warn_leaks(settings, data)
        compute = self.outputs.need("compute_name", "training", self.stack)
        data_ref = self.ensure_data(data, settings.drop_columns)
        tags = training_tags(data_ref.rsplit(":", 1)[1], settings.as_tags())
        job = specs.automl_job(settings, data_ref, compute, tags)
        submitted = self._call("submitting the AutoML job", lambda: self.ml.jobs.create_or_update(job))
        self._remember(last_job=submitted.name)
        self.say(f"submitted AutoML job {submitted.name} on {compute}: {submitted.studio_url}")
        if wait:
            self.wait_for_job(submitted.name, _wait_limit_s(settings))
        else:
            self.say(
                f"follow it in the studio, or register it when it is done: "
                f"{JOBS} register --target azure --job {submitted.name}"
            )
        return str(submitted.name)

    def _warn_leaks(self, settings: TrainingSettings, data: Path) -> None:
        """Say it when the lesson's opt-in trains on leaking columns (the job's tags record it too)."""
        warning = settings.leak_warning(dataset.load_schema(data))
        if warning:
            self.say("WARNING: " + warning)

    def sample_request(self) -> dict[str, Any]:
        """The shipped dataset's example (the lesson's sample): the deployed model's contract is in Azure."""
        from jobs.invocation import SAMPLE_REQUEST

        return SAMPLE_REQUEST

    def pipeline(
        self, settings: TrainingSettings, data: Path, min_auc: float | None, deploy: DeployOptions | None, wait: bool
    ) -> str:
        """Train and register (and optionally deploy) as one pipeline job."""
        specs.check_pipeline_deploy(deploy)
        settings = settings.for_data(data)
        settings.check_data(data, max_nodes=self.outputs.compute_max_nodes)
        self._warn_leaks(settings, data)
        compute = self.outputs.need("compute_name", "the pipeline", self.stack)
        endpoint = self.outputs.need("endpoint_name", "the pipeline's deploy step", self.stack) if deploy else None
        data_ref = self.ensure_data(data, settings.drop_columns)
        data_version = data_ref.rsplit(":", 1)[1]
        tags = training_tags(data_version, settings.as_tags())
        job = specs.pipeline_job(
            settings, data_ref, compute, min_auc, tags, (endpoint, deploy) if endpoint and deploy else None
        )
        submitted = self._call("submitting the pipeline job", lambda: self.ml.jobs.create_or_update(job))
        self._remember(last_pipeline=submitted.name)
        self.say(f"submitted pipeline job {submitted.name} on {compute}: {submitted.studio_url}")
        if wait:
            self.wait_for_job(submitted.name, _wait_limit_s(settings))
        return str(submitted.name)

    def wait_for_job(self, name: str, limit_s: float) -> None:
        """Print each status change until the job ends; give up waiting (the job goes on) after limit_s."""
        started = self.clock()
        last = None
        try:
            while True:
                status = _status(self._call("reading the job's status", lambda: self.ml.jobs.get(name)))
                elapsed = self.clock() - started
                if status != last:
                    self.say(f"[{int(elapsed // 60):02d}:{int(elapsed % 60):02d}] {name}: {status}")
                    last = status
                if status in TERMINAL:
                    break
                if elapsed > limit_s:
                    raise JobsError(
                        f"stopped waiting after {limit_s / 60:.0f} minutes with job {name} {status}; it "
                        "is still in Azure (a cluster without quota queues forever: check `az ml compute "
                        f"show`). Cancel it with `az ml job cancel --name {name}`, or register it later "
                        f"with `{JOBS} register --target azure --job {name}`."
                    )
                self.sleep(self.poll_s)
        except KeyboardInterrupt:
            raise Interrupted(
                f"stopped waiting; AutoML job {name} is still running in Azure. Register it later with "
                f"`{JOBS} register --target azure --job {name}`, or cancel it with "
                f"`az ml job cancel --name {name}`."
            ) from None
        if status != "Completed":
            raise JobsError(
                f"AutoML job {name} ended {status}. Nothing was registered. Why is in its logs: "
                f"`az ml job stream --name {name}` prints them, `az ml job show --name {name} --web` "
                "opens the studio."
            )

    # -- registration --------------------------------------------------------------------

    def register(self, run: str | None, min_auc: float | None) -> str:
        """Gate and register the best model of a finished AutoML job; return its version.

        The lineage tags come from the job's own run (jobs/lineage.py model_tags); the gate compares
        the best child with the job's best LogisticRegression trial (same folds), with the latest
        version registered for the same features, and with --min-auc when given.
        """
        job_name = run or self._recall("last_job")
        if not job_name:
            raise JobsError(f"which AutoML job? Pass --job NAME (from `{JOBS} train --target azure`)")
        job = self._call("reading the job", lambda: self.ml.jobs.get(job_name))
        if _status(job) != "Completed":
            raise JobsError(
                f"AutoML job {job_name} is {_status(job)}, not Completed; wait for it with "
                f"`{JOBS} train --wait` or in the studio, then register again"
            )
        training = self._training_run(job_name, job)
        versions = self._call("listing model versions", self._model_versions)
        trials, best = azure_children(
            self._call("listing the job's trials", lambda: list(self.ml.jobs.list(parent_job_name=job_name)))
        )
        training = replace(training, tags={**azure_budget(trials, training.tags), **training.tags})
        # The gate runs first, also for a job registered already; a version from the same job is
        # never its own champion.
        verdict = quality_gate(
            training.metrics,
            baseline=azure_baseline(best, training),
            champion=champion(((v.version, v.tags or {}) for v in versions), training),
            min_score=min_auc,
        )
        for existing in versions:
            if (existing.tags or {}).get("training_run") == job_name:
                self.say(f"already registered: {MODEL_NAME} version {existing.version} (job {job_name})")
                return str(existing.version)
        self.say(verdict.summary())
        tags = model_tags(training, verdict, registered_by="jobs register")
        model = specs.model_from_run(
            training.best_child, tags, f"Best model of AutoML job {job_name} (AUC_weighted {verdict.score:.4f})"
        )
        created = self._call("registering the model", lambda: self.ml.models.create_or_update(model))
        self.say(
            f"registered: {MODEL_NAME} version {created.version} (job {job_name}, best child "
            f"{training.best_child}, AUC_weighted {verdict.score:.4f})"
        )
        return str(created.version)

    def _training_run(self, job_name: str, job: Any) -> TrainingRun:
        """The AutoML job as lineage reads it: its run's tags (the job's tags as submitted, plus AutoML's
        own), its best child and that child's metrics."""
        parent = self._call("reading the job's tags", lambda: self.session.run_details(job_name))
        best_child = parent.tags.get("automl_best_child_run_id")
        if not best_child:
            raise JobsError(f"AutoML job {job_name} names no best child run; it may have found no model")
        metrics = self._call("reading the best run's metrics", lambda: self.session.run_details(best_child)).metrics
        # The job entity's tags are the tags it was submitted with; the run's tags add AutoML's own.
        return TrainingRun(job_name, best_child, metrics, {**(job.tags or {}), **parent.tags})

    def _model_versions(self) -> list[Any]:
        """Every version of the model; none before the first registration.

        Listing the versions of a name that has none yet may fail with 404 rather than come back
        empty (the REST spec, ModelVersions_List, documents only 200 and a default error), and the
        SDK's pager raises only when iterated: both read as "no versions".
        """
        try:
            return list(self.ml.models.list(name=MODEL_NAME))
        except ResourceNotFoundError:
            return []

    # -- deployment ----------------------------------------------------------------------

    def deploy(self, version: str | None, options: DeployOptions) -> str:
        """Blue/green: the model version (None: latest) to the free slot, smoke-tested, then all traffic
        (jobs/azure/rollout.py); returns the slot that takes the traffic."""
        options = options.validated()  # a caller other than the command line gets the same checks
        endpoint_name = self.outputs.need("endpoint_name", "deploy", self.stack)
        return self.rollout().run(endpoint_name, version, options)

    def rollout(self) -> BlueGreenRollout:
        """The rollout, with this backend's Azure seam, retries, messages, clock and step timeout."""
        return BlueGreenRollout(self.ml, self._call, say=self.say, timeout_s=self.deploy_timeout_s, clock=self.clock)

    # -- promotion through the shared registry (jobs/azure/promotion.py) ----------------------

    def promote(self, version: str, to: str) -> str:
        """Share dev's `version` to the registry and deploy it blue/green on the `to` stack's endpoint from there;
        return the slot that now serves (jobs/azure/promotion.py). JobsError for a refused version, stacks that
        do not share one registry, or a `to` without an endpoint; nothing is shared before the checks pass."""
        target, ml = self._target(to, "promote")
        registry = self._registry(target, to)
        places = Places(
            dev=self.ml,
            registry=self._registry_client(registry),
            prod=ml,
            registry_name=registry,
            source=workspace_uri(
                self.outputs.subscription_id, self.outputs.resource_group, self.outputs.workspace_name
            ),
            endpoint_name=target.need("endpoint_name", "promote", to),
        )
        rollout = BlueGreenRollout(ml, self._call, say=self.say, timeout_s=self.deploy_timeout_s, clock=self.clock)
        promotion = AzurePromotion(places, self._call, rollout, promoted_by(), say=self.say)
        return promotion.run(version, self.promote_options.validated())

    def rollback(self, to: str) -> str:
        """Put the `to` stack's endpoint traffic back on the deployment that served before the last promotion, in
        one update; return that slot (BlueGreenRollout.rollback). JobsError, nothing changed, when there is none."""
        target, ml = self._target(to, "rollback")
        rollout = BlueGreenRollout(ml, self._call, say=self.say, timeout_s=self.deploy_timeout_s, clock=self.clock)
        return rollout.rollback(target.need("endpoint_name", "rollback", to))

    def _target(self, to: str, what: str) -> tuple[StackOutputs, Any]:
        """The `to` stack's outputs and an MLClient on its workspace (this one's when `to` is this stack)."""
        if to == self.stack:
            if what == "promote":
                raise JobsError(
                    f"--to {to} is the stack this command runs on (--stack {self.stack}); promotion goes from the "
                    f"workspace that trained the model to another one: `{JOBS} promote --stack dev --to prod`"
                )
            return self.outputs, self.ml
        target = self.stack_outputs(to)
        return target, self.session.workspace_client(target)

    def _registry_client(self, registry: str) -> Any:
        """An MLClient on the registry; MLClient asks the registry discovery service where it lives as it is built
        (azure-ai-ml 1.35.2 RegistryDiscovery), which answers 404 for a name it does not know."""
        try:
            return self._call("finding the registry", lambda: self.session.registry_client(registry))
        except ResourceNotFoundError:
            raise JobsError(
                f"Azure ML knows no registry named {registry} (the stacks' registry_name): check "
                "`pulumi stack output registry_name --stack shared` and that the shared stack is up. Nothing was "
                "shared or deployed."
            ) from None

    def _registry(self, target: StackOutputs, to: str) -> str:
        """The registry both stacks read (docs/environments.md); JobsError when either has none or they differ."""
        mine, theirs = self.outputs.registry_name, target.registry_name
        if not mine or not theirs:
            lacking = " and ".join(s for s, name in ((self.stack, mine), (to, theirs)) if not name)
            raise JobsError(
                f"promotion goes through the shared Azure ML registry, and the stack {lacking} exports no "
                "registry_name: set `sharedStack: shared` in its Pulumi.<stack>.yaml and run `pulumi up` "
                "(docs/environments.md). Nothing was shared or deployed."
            )
        if mine != theirs:
            raise JobsError(
                f"the stacks {self.stack} and {to} read different registries ({mine} and {theirs}); a promotion "
                "shares to one registry that both read. Nothing was shared or deployed."
            )
        return mine

    # -- monitoring (jobs/azure/monitoring.py) --------------------------------------------

    def monitor(
        self,
        version: str | None,
        thresholds: Thresholds,
        window_hours: float,
        reference: Path | None,
        emails: list[str],
    ) -> str:
        """Create or update the monitoring schedule of the live deployment, with the model's training data."""
        if reference is not None:
            raise JobsError(
                "--reference is for the local target; in Azure the reference is the training data "
                "asset named by the model's data_version tag"
            )
        endpoint_name = self.outputs.need("endpoint_name", "monitor", self.stack)
        live, deployment, assets = self._collecting_deployment(endpoint_name)
        if version is None:
            version = str(deployment.model).rstrip("/").split(":")[-1].split("/")[-1]
        data_version = self._training_data_version(version)
        spec = monitoring.schedule(
            endpoint_name,
            live,
            f"azureml:{dataset.ASSET_NAME}:{data_version}",
            thresholds,
            emails,
            window_hours,
            assets,
        )
        self._call(
            "creating the monitoring schedule",
            lambda: wait_for(
                self.ml.schedules.begin_create_or_update(spec),
                "the monitoring schedule",
                self.deploy_timeout_s,
                "The monitoring schedule is still being created in Azure.",
            ),
        )
        self.say(
            f"monitoring schedule {monitoring.MONITOR_NAME}: deployment {live} of {endpoint_name} "
            f"({MODEL_NAME} version {version}) against {dataset.ASSET_NAME}:{data_version}, daily at 03:15 UTC"
            + (
                f"; alert mails to {', '.join(emails)} on failed runs (a breached threshold fails the run)"
                if emails
                else "; no alert emails (add --email)"
            )
        )
        return monitoring.MONITOR_NAME

    def _collecting_deployment(self, endpoint_name: str) -> tuple[str, Any, dict[str, str]]:
        """The endpoint's one live deployment (all the traffic): its name, itself and the data assets it records its
        collected data in; JobsError when no single deployment is live or it collects nothing."""
        endpoint = self._call("reading the endpoint", lambda: self.ml.online_endpoints.get(endpoint_name))
        live = [name for name, share in (endpoint.traffic or {}).items() if share > 0]
        if len(live) != 1:
            raise JobsError(
                f"{endpoint_name} has {'no' if not live else 'more than one'} live deployment; monitoring "
                f"follows the one that takes all the traffic: run `{JOBS} deploy --target azure "
                "--collect` first"
            )
        deployment = self._call(
            "reading the live deployment",
            lambda: self.ml.online_deployments.get(name=live[0], endpoint_name=endpoint_name),
        )
        assets = monitoring.collected_assets(deployment)  # the data assets the deployment records
        missing = [c for c in monitoring.COLLECTIONS if c not in assets]
        if missing:
            raise JobsError(
                f"deployment {live[0]} collects no data ({' and '.join(missing)} not recorded); deploy with "
                f"`{JOBS} deploy --target azure --collect` first, then run monitor again"
            )
        return live[0], deployment, assets

    def _training_data_version(self, version: str) -> str:
        """The data_version tag of the model's `version`: which training data asset is the reference."""
        model = self._call("reading the model", lambda: self.ml.models.get(MODEL_NAME, version=version))
        data_version = (model.tags or {}).get("data_version")
        if not data_version or data_version == UNKNOWN:  # model_tags writes UNKNOWN when the job had none
            raise JobsError(
                f"{MODEL_NAME} version {version} has no data_version tag, so its training data is "
                f"unknown; register it with `{JOBS} register --target azure`"
            )
        return str(data_version)

    # -- invocation ----------------------------------------------------------------------

    def invoke(self, payload: dict[str, Any]) -> Any:
        endpoint_name = self.outputs.need("endpoint_name", "invoke", self.stack)
        with tempfile.TemporaryDirectory() as folder:
            request = Path(folder) / "request.json"
            request.write_text(json.dumps(payload))
            # The SDK fetches the endpoint key (or a token) itself for this call; it is never
            # printed, logged or written here.
            try:
                raw = self._call_raw(
                    "invoking the endpoint", lambda: invoke_endpoint(self.ml, endpoint_name, str(request))
                )
            except HttpResponseError as error:
                if error.status_code and 400 <= error.status_code < 500:
                    raise RequestRefused(error.status_code, _refusal_body(error)) from None
                raise
        if not isinstance(raw, str):
            return raw
        try:
            return json.loads(raw)
        except ValueError:
            raise JobsError(f"the endpoint answered with something that is not JSON: {raw[:300]!r}") from None

    # -- small local state: the last job submitted per stack (names only, no secrets) -------

    def _remember(self, **values: str) -> None:
        state = read_json(self.state_file) if self.state_file.exists() else {}
        state.update(values)
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps(state, indent=2))

    def _recall(self, key: str) -> str | None:
        if not self.state_file.exists():
            return None
        return read_json(self.state_file).get(key)
