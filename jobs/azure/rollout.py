"""Blue/green rollout of a registered model to the stack's managed online endpoint.

The new version goes to the free slot (blue or green) with 0% traffic, answers the lesson's sample
there alone (the smoke test), then takes 100% of the traffic, and the previous slot is deleted (a promotion,
run_promoted, keeps it at 0% for `rollback`); the monitoring schedule follows the live slot: the shape of
azureml-examples' cli/deploy-safe-rollout-online-endpoints.sh.

`python -m jobs deploy --target azure` (AzureBackend.deploy) and the pipeline's deploy step
(jobs/azure/pipeline_step.py, through the backend) both run this.
"""

from __future__ import annotations

import copy
import json
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol, TypeVar

import yaml
from azure.ai.ml.entities import Environment
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from jobs.azure import monitoring, specs
from jobs.azure.retry import wait_for
from jobs.backend import DeployOptions
from jobs.errors import Interrupted, JobsError, first_line, log_error
from jobs.invocation import SAMPLE_REQUEST, check_answer, contract_request
from jobs.lineage import MODEL_NAME

SLOTS = ("blue", "green")
# How long each long-running step (create the deployment, move traffic, delete the old slot) may take.
DEPLOY_TIMEOUT_S = 45 * 60

T = TypeVar("T")

# What serves where, recorded in the endpoint's own tags at every traffic move, so that `rollback` knows the
# slot that served before the last promotion without guessing from the deployments. The traffic move is a PUT of
# the whole endpoint, and its body carries the entity's tags with the traffic (azure-ai-ml 1.35.2,
# entities/_endpoint/online_endpoint.py _to_rest_online_endpoint: `tags=self.tags`), so both change in one call.
SERVING_SLOT = "serving.slot"
SERVING_VERSION = "serving.version"
PREVIOUS_SLOT = "previous.slot"  # "" when no previous deployment is kept (a plain deploy deletes it)
PREVIOUS_VERSION = "previous.version"


def serving_tags(tags: Mapping[str, str] | None, slot: str, version: str, previous: str) -> dict[str, str]:
    """The endpoint's tags after `slot` (serving `version`) takes the traffic and `previous` ("" for none) is
    kept at 0%; the version `previous` serves is the one the tags said served before, when they named it."""
    tags = dict(tags or {})
    served_before = tags.get(SERVING_VERSION, "unknown") if tags.get(SERVING_SLOT) == previous else "unknown"
    return {
        **tags,
        SERVING_SLOT: slot,
        SERVING_VERSION: version,
        PREVIOUS_SLOT: previous,
        PREVIOUS_VERSION: served_before if previous else "",
    }


def with_operating_point(options: DeployOptions, tags: Mapping[str, str], version: str) -> DeployOptions:
    """`options` with the operating point a promoted deployment serves: --threshold, else the one the model's tags
    record (operating_point.threshold, a local model's). JobsError when neither exists: Azure AutoML's models
    carry none (docs/clinical.md)."""
    recorded = tags.get("operating_point.threshold")
    if options.threshold is None and recorded not in (None, "", "unknown"):
        try:
            return replace(options, threshold=float(str(recorded)))
        except ValueError:
            pass
    if options.threshold is None:
        raise JobsError(
            f"{MODEL_NAME} version {version} records no operating point, and none was given: pass --threshold T "
            "(0 < T < 1), the one dev serves with (the deploy workflow's OPERATING_THRESHOLD). Nothing was shared "
            "or deployed."
        )
    return options


@contextmanager
def staged(contract: dict[str, Any]) -> Iterator[Path]:
    """A temporary code folder: score.py and the deploy's contract beside it (specs.staged_code), removed after."""
    staging = Path(tempfile.mkdtemp(prefix="heart-failure-code-"))
    try:
        yield specs.staged_code(staging / "code", contract)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def model_conda(ml: Any, call: AzureCall, version: str) -> dict[str, Any] | None:
    """The conda.yaml the registered MLflow model `version` carries in `ml`'s workspace (None if it has none)."""
    with tempfile.TemporaryDirectory() as folder:
        call(
            "downloading the model's environment",
            lambda: ml.models.download(name=MODEL_NAME, version=version, download_path=folder),
        )
        found = sorted(Path(folder).rglob("conda.yaml"))
        return yaml.safe_load(found[0].read_text()) if found else None


class AzureCall(Protocol):
    """How the rollout calls Azure: `call(what, fn)` returns fn(), retried on transient errors and with a
    credential or permission failure turned into a message (AzureBackend._call; its `sleep` hook lives there)."""

    def __call__(self, what: str, fn: Callable[[], T], /) -> T: ...


def invoke_endpoint(ml: Any, endpoint_name: str, request_file: str, deployment_name: str | None = None) -> Any:
    """online_endpoints.invoke without its class-level header leak; returns what the SDK returns (str, usually).

    azure-ai-ml's invoke (operations/_online_endpoint_operations.py, 1.35.2) writes the key
    and the `azureml-model-deployment` header into EndpointInvokeFields.DEFAULT_HEADER, a
    dict shared by every later call in the process: after a smoke test against one
    deployment, a plain invoke would still be pinned to it (and the key stays in a class
    attribute). The dict is cleaned before and after each call.
    """
    try:
        from azure.ai.ml.constants._endpoint import EndpointInvokeFields
    except ImportError:  # a later SDK without that module: nothing to clean
        return ml.online_endpoints.invoke(
            endpoint_name=endpoint_name, request_file=request_file, deployment_name=deployment_name
        )
    shared = EndpointInvokeFields.DEFAULT_HEADER
    per_call = (EndpointInvokeFields.AUTHORIZATION, EndpointInvokeFields.MODEL_DEPLOYMENT)
    for key in per_call:
        shared.pop(key, None)
    try:
        return ml.online_endpoints.invoke(
            endpoint_name=endpoint_name, request_file=request_file, deployment_name=deployment_name
        )
    finally:
        for key in per_call:
            shared.pop(key, None)


@dataclass
class BlueGreenRollout:
    """One rollout's collaborators: `ml` is the MLClient seam (jobs/azure/session.py, a fake in tests),
    `call` wraps each Azure call in retries (its `sleep` hook lives there), `say` reports progress,
    `timeout_s` bounds each long-running step, `clock` measures it."""

    ml: Any
    call: AzureCall
    say: Callable[[str], None] = print
    timeout_s: float = DEPLOY_TIMEOUT_S
    clock: Callable[[], float] = time.monotonic

    def run(self, endpoint_name: str, version: str | None, options: DeployOptions) -> str:
        """Deploy MODEL_NAME `version` (None: the `latest` label) to the free slot of `endpoint_name`;
        return the slot ("blue" or "green") that now takes all the traffic.

        Raises JobsError when traffic is split over two live slots, when the deployment fails to
        be created or its smoke test (the log tail and the error it names are in the message; traffic
        is not moved), or when a step outlasts `timeout_s`; Interrupted on Ctrl-C while the new slot
        is being created or tested, saying what is left in Azure.
        """
        if version is None:
            model = self.call("finding the latest model", lambda: self.ml.models.get(MODEL_NAME, label="latest"))
            version = str(model.version)
        else:
            model = self.call("finding the model", lambda: self.ml.models.get(MODEL_NAME, version=version))
        # The model carries no contract of its own (AutoML wrote it): it is staged beside score.py, built from
        # the data it was trained on (its tags say which) and the operating point this deploy chooses.
        contract = specs.azure_contract(dict(getattr(model, "tags", None) or {}), options, f"version {version}")
        if contract["operating_point"] is None:
            raise JobsError(
                f"{MODEL_NAME} version {version} records no operating point: Azure AutoML's models come without "
                "the out-of-fold probabilities one is chosen from here. Deploy with --threshold T (0 < T < 1), "
                "the probability at or above which the endpoint answers result=true; a local run of the same "
                "data shows the threshold table to choose it from."
            )
        env = specs.environment(
            monitoring.with_collection(specs.scoring_conda(model_conda(self.ml, self.call, version)), options.collect)
        )
        with staged(contract) as code:
            return self._run(endpoint_name, version, options, code, f"azureml:{MODEL_NAME}:{version}", env)

    def run_promoted(
        self,
        endpoint_name: str,
        version: str,
        tags: dict[str, str],
        model_ref: str,
        environment: str,
        options: DeployOptions,
    ) -> str:
        """Deploy a registry model (`model_ref`, azureml://registries/<r>/models/<name>/versions/<v>, with its
        `tags`) with a registry environment (`environment`, the same form) to the free slot, as `run` does, but
        keep the slot that served before at 0% so that `rollback` can put the traffic back on it in one call.

        The operating point is options.threshold, else the one the model's tags record (a local model's); none:
        JobsError, nothing created. Same errors and guarantees as `run`.
        """
        options = with_operating_point(options, tags, version)
        contract = specs.azure_contract(tags, options, f"version {version}")
        with staged(contract) as code:
            return self._run(endpoint_name, version, options, code, model_ref, environment, keep_previous=True)

    def _run(
        self,
        endpoint_name: str,
        version: str,
        options: DeployOptions,
        code: Path,
        model_ref: str,
        env: Environment | str,
        keep_previous: bool = False,
    ) -> str:
        endpoint = self.call("reading the endpoint", lambda: self.ml.online_endpoints.get(endpoint_name))
        traffic = dict(endpoint.traffic or {})
        live = [name for name, share in traffic.items() if share > 0]
        if len(live) > 1:
            raise JobsError(
                f"traffic on {endpoint_name} is split ({', '.join(f'{n} {traffic[n]}%' for n in live)}); "
                "blue/green needs one live deployment. Settle the traffic in the studio first."
            )
        slot = next(s for s in SLOTS if s not in live)
        spec = specs.deployment(slot, endpoint_name, model_ref, env, options, code)
        self.say(
            f"creating deployment {slot} ({options.instance_count} x {options.instance_type}) with 0% traffic; "
            f"live now: {', '.join(f'{n} {traffic[n]}%' for n in live) or 'nothing'}"
        )
        still_there = (
            f"Deployment {slot} is still being created in Azure with 0% traffic; the endpoint's traffic is "
            f"unchanged. Delete it with `az ml online-deployment delete --endpoint-name {endpoint_name} "
            f"--name {slot}` or run deploy again."
        )
        try:
            # A fresh copy per attempt: DataCollector._to_rest_object deletes an attribute of its own
            # (azure-ai-ml 1.35.2), so a retry of the same entity would fail in the SDK.
            poller = self.call(
                "creating the deployment",
                lambda: self.ml.online_deployments.begin_create_or_update(copy.deepcopy(spec)),
            )
            self._wait(poller, f"deployment {slot}", still_there)
        except KeyboardInterrupt:
            raise Interrupted(still_there) from None
        except HttpResponseError as error:
            # A model that does not load makes the container crash, and the deployment's
            # provisioning fails ("User container has crashed or terminated"): say why from its log.
            self._fail(endpoint_name, slot, f"creating it failed: {first_line(error)}", created=False)
        try:
            answer = self._smoke_test(endpoint_name, slot, code)
        except KeyboardInterrupt:
            raise Interrupted(still_there) from None
        if answer is not None:
            self._fail(endpoint_name, slot, f"it failed its smoke test ({answer})")
        self._switch(endpoint, traffic, slot, version, live[0] if live and keep_previous else "")
        self._repoint_monitor(endpoint_name, slot)
        return slot

    def _switch(self, endpoint: Any, traffic: dict[str, int], slot: str, version: str, previous: str) -> None:
        """All of the endpoint's traffic to `slot` (serving `version`), with the tags saying so in the same update;
        every other deployment is deleted, except `previous` ("" for none), kept at 0% for a rollback."""
        endpoint_name = endpoint.name
        # Every other deployment named at 0%, as azureml-examples' safe-rollout sets
        # {"blue": 0, "green": 100}. azure-ai-ml strips zero shares before the PUT
        # (_strip_zeroes_from_traffic in operations/_online_endpoint_operations.py), so the
        # wire carries {slot: 100} either way; naming them keeps the intent explicit.
        endpoint.traffic = {**{name: 0 for name in traffic if name != slot}, slot: 100}
        endpoint.tags = serving_tags(endpoint.tags, slot, version, previous)
        self.call(
            "moving traffic",
            lambda: self._wait(
                self.ml.online_endpoints.begin_create_or_update(endpoint),
                "the traffic update",
                "The endpoint's traffic update is still running in Azure.",
            ),
        )
        self.say(f"deployment {slot} passed the smoke test and takes 100% of traffic")
        if previous:
            self.say(
                f"kept the previous deployment {previous} at 0% for a rollback (it still runs and is billed until "
                "the next promotion replaces it)"
            )
        for old in (name for name in traffic if name != slot and name != previous):

            def delete(old: str = old) -> Any:
                return self._wait(
                    self.ml.online_deployments.begin_delete(name=old, endpoint_name=endpoint_name),
                    f"deleting {old}",
                    f"Deployment {old} (0% traffic) is still being deleted.",
                )

            self.call(f"deleting deployment {old}", delete)
            self.say(f"deleted the previous deployment {old}")

    def rollback(self, endpoint_name: str) -> str:
        """Put all of `endpoint_name`'s traffic back on the deployment that served before the last promotion, in one
        PUT of the endpoint (traffic and tags together); return that slot.

        "Previous" is what the endpoint's PREVIOUS_SLOT tag names (run_promoted writes it; a plain deploy clears
        it, having deleted that slot). JobsError, with nothing changed, when none is recorded, when that
        deployment no longer exists or is not in the Succeeded state, or when it already takes the traffic.
        The safe-rollout shape: traffic moved between two live deployments by an update of the endpoint
        (azureml-examples cli/deploy-safe-rollout-online-endpoints.sh, `--traffic "blue=0 green=100"`).
        """
        endpoint = self.call("reading the endpoint", lambda: self.ml.online_endpoints.get(endpoint_name))
        tags = {str(k): str(v) for k, v in (endpoint.tags or {}).items()}
        previous, serving = tags.get(PREVIOUS_SLOT, ""), tags.get(SERVING_SLOT, "")
        if not previous:
            raise JobsError(
                f"{endpoint_name} has no previous deployment to roll back to: nothing was promoted to it twice, or "
                "the last change was a rollback or a plain deploy (which deletes the old slot). Promote the "
                "version you want instead. Nothing was changed."
            )
        traffic = dict(endpoint.traffic or {})
        if traffic.get(previous, 0) >= 100:
            raise JobsError(f"{previous} already takes all of {endpoint_name}'s traffic; nothing was changed")
        try:
            kept = self.call(
                "reading the previous deployment",
                lambda: self.ml.online_deployments.get(name=previous, endpoint_name=endpoint_name),
            )
        except ResourceNotFoundError:
            raise JobsError(
                f"the previous deployment {previous} of {endpoint_name} no longer exists (deleted by hand?); "
                "promote the version you want instead. Nothing was changed."
            ) from None
        # azure-ai-ml 1.35.2 hands the state back as its REST enum (DeploymentProvisioningState, a str Enum that
        # formats as "DeploymentProvisioningState.SUCCEEDED"): its value is Azure's word.
        raw = getattr(kept, "provisioning_state", None) or "Succeeded"
        state = str(getattr(raw, "value", raw))
        if state != "Succeeded":
            raise JobsError(
                f"the previous deployment {previous} of {endpoint_name} is {state}, not Succeeded; it cannot take "
                "traffic. Nothing was changed."
            )
        endpoint.traffic = {**{name: 0 for name in traffic if name != previous}, previous: 100}
        endpoint.tags = {
            **tags,
            SERVING_SLOT: previous,
            SERVING_VERSION: tags.get(PREVIOUS_VERSION, "unknown"),
            PREVIOUS_SLOT: "",
            PREVIOUS_VERSION: "",
        }
        self.call(
            "moving traffic back",
            lambda: self._wait(
                self.ml.online_endpoints.begin_create_or_update(endpoint),
                "the traffic update",
                "The endpoint's traffic update is still running in Azure.",
            ),
        )
        self.say(
            f"rolled back: {previous} ({MODEL_NAME} version {tags.get(PREVIOUS_VERSION) or 'unknown'}) takes 100% "
            f"of {endpoint_name}'s traffic; {serving or 'the other slot'} stays at 0% until the next promotion"
        )
        self._repoint_monitor(endpoint_name, previous)
        return previous

    def _wait(self, poller: Any, what: str, still_there: str) -> Any:
        return wait_for(poller, what, self.timeout_s, still_there, clock=self.clock)

    def _smoke_test(self, endpoint_name: str, slot: str, code: Path | None = None) -> str | None:
        """None when the contract's example (the lesson's sample without one), sent to the new deployment alone,
        is answered well."""
        with tempfile.TemporaryDirectory() as folder:
            request = Path(folder) / "request.json"
            request.write_text(json.dumps(contract_request(code) if code is not None else SAMPLE_REQUEST))
            try:
                raw = self.call(
                    "smoke-testing the deployment",
                    lambda: invoke_endpoint(self.ml, endpoint_name, str(request), deployment_name=slot),
                )
                answer = json.loads(raw) if isinstance(raw, str) else raw
                check_answer(answer, records=1)
            except Exception as error:  # any failure here means: do not move traffic
                return f"{type(error).__name__}: {str(error)[:300]}"
        return None

    def _fail(self, endpoint_name: str, slot: str, reason: str, created: bool = True) -> None:
        """Stop with the deployment's log tail and, last, the error it names (the model-load error, usually)."""
        cause = None
        try:
            logs = str(self.ml.online_deployments.get_logs(name=slot, endpoint_name=endpoint_name, lines=40))
            cause = log_error(logs)
        except Exception as error:
            # Only what the deployment logged is a cause; this placeholder names our own failed read.
            logs = f"(could not read the logs: {type(error).__name__})"
        state = (
            "It still exists with 0% traffic: inspect it, then delete it" if created else "Delete what is left of it"
        )
        raise JobsError(
            f"deployment {slot}: {reason}; traffic was not moved. Last log lines:\n{logs}\n"
            f"{state} with `az ml online-deployment delete --endpoint-name {endpoint_name} --name {slot} "
            f"--yes`." + (f"\nWhy, from its log: {cause}" if cause else "")
        )

    def _repoint_monitor(self, endpoint_name: str, slot: str) -> None:
        """Keep the monitoring schedule on the deployment that takes the traffic after a swap.

        The schedule names one deployment (monitoring_target.endpoint_deployment_id, azureml-examples
        cli/monitoring), and blue/green alternates the names, so each deploy re-points it, with the data
        assets the new deployment records; one that collects nothing disables it (monitoring.retarget).
        """
        try:
            existing = self.call(
                "reading the monitoring schedule", lambda: self.ml.schedules.get(monitoring.MONITOR_NAME)
            )
        except ResourceNotFoundError:
            return
        deployment = self.call(
            "reading the new deployment's data collection",
            lambda: self.ml.online_deployments.get(name=slot, endpoint_name=endpoint_name),
        )
        change = monitoring.retarget(existing, endpoint_name, slot, monitoring.collected_assets(deployment))
        if change.schedule is not None:
            self.call(
                "re-pointing the monitoring schedule",
                lambda: self._wait(
                    self.ml.schedules.begin_create_or_update(change.schedule),
                    "the monitoring schedule",
                    "The monitoring schedule's update is still running in Azure.",
                ),
            )
        self.say(change.message)
