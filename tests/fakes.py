"""Fakes for the outside world, in one place: Pulumi's engine (mocks) for the infrastructure."""

from __future__ import annotations

import copy
import hashlib
import json
import runpy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi

ROOT = Path(__file__).resolve().parent.parent
SUBSCRIPTION_ID = "00000000-0000-0000-0000-000000000001"
TENANT_ID = "00000000-0000-0000-0000-0000000000aa"

# The input that carries each resource's Azure name, by Pulumi type token.
NAME_INPUT = {
    "azure-native:resources:ResourceGroup": "resourceGroupName",
    "azure-native:storage:StorageAccount": "accountName",
    "azure-native:keyvault:Vault": "vaultName",
    "azure-native:operationalinsights:Workspace": "workspaceName",
    "azure-native:applicationinsights:Component": "resourceName",
    "azure-native:containerregistry:Registry": "registryName",
    "azure-native:machinelearningservices:Workspace": "workspaceName",
    "azure-native:machinelearningservices:Compute": "computeName",
    "azure-native:machinelearningservices:OnlineEndpoint": "endpointName",
}


@dataclass
class Registered:
    typ: str
    name: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    # What the engine would diff against the previous state: the inputs with every
    # ignore_changes path put back to its recorded value.
    effective: dict[str, Any] = field(default_factory=dict)
    # Resource options the engine keeps to itself (ignore_changes, replace_on_changes, delete_before_replace).
    options: dict[str, Any] = field(default_factory=dict)
    # True when the engine would hand back the recorded state unchanged (no diff after ignore_changes).
    same_as_before: bool = False


def _with_ignored(inputs: dict[str, Any], recorded: dict[str, Any], paths: list[str]) -> dict[str, Any]:
    """`inputs` with each ignore_changes path (dot-separated) set back to its value in `recorded`,
    as the Pulumi engine does before it diffs."""
    result = copy.deepcopy(inputs)
    for path in paths:
        keys = path.split(".")
        old: Any = recorded
        for key in keys:
            old = old.get(key, _MISSING) if isinstance(old, dict) else _MISSING
        node = result
        for key in keys[:-1]:
            node = node.setdefault(key, {}) if isinstance(node, dict) else {}
        if old is _MISSING:
            node.pop(keys[-1], None)
        else:
            node[keys[-1]] = copy.deepcopy(old)
    return result


_MISSING = object()


@dataclass
class PulumiMocks(pulumi.runtime.Mocks):
    """Answers like Azure would, closely enough, and records every resource.

    Two traps this avoids: `call` answers getClientConfig with camelCase keys (snake_case
    silently gives None), and `new_resource` returns `name` among the outputs (without it
    every `resource.name` is None and dependent inputs silently drop).

    With `prior` (the resources of an earlier run of the same stack), it plays an update: a
    resource whose inputs, after ignore_changes, equal the recorded ones gets its recorded outputs
    back, as the engine does; any other gets what Azure would store (tests/azure_rules.py).
    `generation` stands for a fresh deployment: random strings are drawn anew.
    """

    random_suffix: str | None = None
    resources: list[Registered] = field(default_factory=list)
    prior: dict[str, Registered] | None = None
    generation: int = 0
    options: dict[str, dict[str, Any]] = field(default_factory=dict)

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        from tests import azure_rules

        options = self.options.get(args.name, {})
        recorded = (self.prior or {}).get(args.name)
        inputs = dict(args.inputs)
        effective = _with_ignored(inputs, recorded.inputs, options.get("ignore_changes", [])) if recorded else inputs
        if recorded is not None and recorded.typ == args.typ and effective == recorded.inputs:
            outputs = copy.deepcopy(recorded.outputs)
            resource_id = outputs.pop("__id")
            self.resources.append(Registered(args.typ, args.name, inputs, {**outputs, "__id": resource_id},
                                             effective, options, same_as_before=True))
            return resource_id, outputs
        outputs = copy.deepcopy(effective)
        if args.typ == "random:index/randomString:RandomString":
            seed = f"{args.name}/{self.generation}/{json.dumps(effective.get('keepers'), sort_keys=True)}"
            outputs["result"] = self.random_suffix or _pseudo_random(seed, int(effective["length"]))
        azure_name = outputs.get(NAME_INPUT.get(args.typ, ""), args.name)
        outputs["name"] = azure_name
        if "identity" in outputs:
            outputs["identity"] = {**outputs["identity"], "principalId": f"principal-of-{args.name}"}
        if args.typ == "azure-native:machinelearningservices:OnlineEndpoint":
            location = outputs.get("location", "westeurope")
            outputs["properties"] = {
                **outputs["properties"],
                "scoringUri": f"https://{azure_name}.{location}.inference.ml.azure.com/score",
            }
        if recorded is not None:
            outputs = azure_rules.stored_after_put(args.typ, recorded.outputs, outputs)
        resource_id = f"/subscriptions/{SUBSCRIPTION_ID}/mock/{args.typ.split(':')[-1]}/{azure_name}"
        self.resources.append(Registered(args.typ, args.name, inputs, {**outputs, "__id": resource_id},
                                         effective, options))
        return resource_id, outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        if args.token == "azure-native:authorization:getClientConfig":
            return {
                "clientId": "client-id",
                "objectId": "object-id",
                "subscriptionId": SUBSCRIPTION_ID,
                "tenantId": TENANT_ID,
            }
        raise AssertionError(f"unexpected invoke {args.token}")

    # Queries for the tests.
    def of_type(self, typ: str) -> list[Registered]:
        return [r for r in self.resources if r.typ == typ]

    def one(self, typ: str) -> Registered:
        found = self.of_type(typ)
        assert len(found) == 1, f"expected one {typ}, found {len(found)}"
        return found[0]

    def by_name(self) -> dict[str, Registered]:
        return {r.name: r for r in self.resources}


def _pseudo_random(seed: str, length: int) -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    digest = hashlib.sha256(seed.encode()).digest()
    return "".join(alphabet[b % len(alphabet)] for b in digest[:length])


class RecordingMonitor(pulumi.runtime.mocks.MockMonitor):
    """Also records resource options that never reach `Mocks.new_resource`, and hands them to the
    mocks first, so that an update can be played the way the engine diffs."""

    def __init__(self, mocks: PulumiMocks) -> None:
        super().__init__(mocks)
        self.ignore_changes: dict[str, list[str]] = {}

    def RegisterResource(self, request):
        self.ignore_changes[request.name] = list(request.ignoreChanges)
        self.mocks.options[request.name] = {
            "ignore_changes": list(request.ignoreChanges),
            "replace_on_changes": list(request.replaceOnChanges),
            "delete_before_replace": bool(request.deleteBeforeReplace),
        }
        return super().RegisterResource(request)


@dataclass
class ProgramRun:
    mocks: PulumiMocks
    exports: dict[str, Any]
    ignore_changes: dict[str, list[str]]


def run_program(
    config: dict[str, Any] | None = None,
    project: str = "azureml-heart-failure",
    stack: str = "dev",
    random_suffix: str | None = None,
    prior: ProgramRun | None = None,
    generation: int = 0,
) -> ProgramRun:
    """Run infra/__main__.py under mocks, as `pulumi preview` would, and return what it did.

    `prior`: an earlier run of the same stack, to play `pulumi up` of a changed program or config
    against its state. `generation`: a number per fresh deployment (destroy, then up again).
    """
    mocks = PulumiMocks(random_suffix=random_suffix, prior=prior.mocks.by_name() if prior else None,
                        generation=generation)
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=False, monitor=monitor)
    pulumi.runtime.set_all_config({f"{project}:{key}": str(value) for key, value in (config or {}).items()})
    exports: dict[str, Any] = {}

    @pulumi.runtime.test
    def program() -> pulumi.Output[Any]:
        namespace = runpy.run_path(str(ROOT / "infra" / "__main__.py"), run_name="__pulumi__")
        outputs = namespace["platform"].outputs.as_dict()
        keys = list(outputs)
        values = pulumi.Output.all(*[outputs[k] for k in keys])
        return values.apply(lambda resolved: exports.update(zip(keys, resolved, strict=True)))

    program()
    return ProgramRun(mocks, exports, monitor.ignore_changes)


# --- Azure ML ---------------------------------------------------------------------------------
# A fake of the MLClient surface jobs/azure uses. It records every call and plays scripted
# answers, failures included. No network.


class FakePoller:
    def __init__(self, result: Any = None) -> None:
        self._result = result

    def done(self) -> bool:
        return True

    def wait(self, timeout: float | None = None) -> None:
        return None

    def result(self, timeout: float | None = None) -> Any:
        return self._result


@dataclass
class FakeJob:
    name: str
    status: str = "Running"
    tags: dict[str, str] = field(default_factory=dict)
    studio_url: str = ""
    spec: Any = None


@dataclass
class FakeModel:
    name: str
    version: str
    tags: dict[str, str]
    path: str = ""


@dataclass
class FakeEndpoint:
    name: str
    traffic: dict[str, int] = field(default_factory=dict)


class _Operations:
    def __init__(self, client: FakeMLClient, group: str) -> None:
        self._client = client
        self._group = group

    def _record(self, op: str, **kwargs: Any) -> None:
        self._client.calls.append((f"{self._group}.{op}", kwargs))
        failures = self._client.failures.get(f"{self._group}.{op}")
        if failures:
            raise failures.pop(0)


class _Data(_Operations):
    def get(self, name: str, version: str) -> Any:
        self._record("get", name=name, version=version)
        from azure.core.exceptions import ResourceNotFoundError

        if (name, version) not in self._client.data_assets:
            raise ResourceNotFoundError(f"data {name}:{version} not found")
        return self._client.data_assets[(name, version)]

    def create_or_update(self, asset: Any) -> Any:
        self._record("create_or_update", asset=asset)
        self._client.data_assets[(asset.name, asset.version)] = asset
        return asset


class _Jobs(_Operations):
    def create_or_update(self, job: Any) -> FakeJob:
        self._record("create_or_update", job=job)
        name = f"automl_job_{len(self._client.submitted) + 1}"
        fake = FakeJob(name, "Running", dict(job.tags or {}), f"https://ml.azure.com/runs/{name}", job)
        self._client.submitted[name] = fake
        return fake

    def get(self, name: str) -> FakeJob:
        self._record("get", name=name)
        if name not in self._client.submitted:
            from azure.core.exceptions import ResourceNotFoundError

            raise ResourceNotFoundError(f"job {name} not found")
        job = self._client.submitted[name]
        script = self._client.job_statuses.get(name)
        if script:
            job.status = script.pop(0)
        return job


class _Models(_Operations):
    def list(self, name: str) -> list[FakeModel]:
        self._record("list", name=name)
        return [m for m in self._client.registered if m.name == name]

    def get(self, name: str, version: str | None = None, label: str | None = None) -> FakeModel:
        self._record("get", name=name, version=version, label=label)
        matching = [m for m in self._client.registered if m.name == name]
        from azure.core.exceptions import ResourceNotFoundError

        if label == "latest" and matching:
            return matching[-1]
        for model in matching:
            if model.version == str(version):
                return model
        raise ResourceNotFoundError(f"model {name}:{version or label} not found")

    def create_or_update(self, model: Any) -> FakeModel:
        self._record("create_or_update", model=model)
        created = FakeModel(model.name, str(len(self._client.registered) + 1), dict(model.tags or {}), model.path)
        self._client.registered.append(created)
        return created

    def download(self, name: str, version: str, download_path: str) -> None:
        self._record("download", name=name, version=version)
        folder = Path(download_path) / name / "mlflow-model"
        folder.mkdir(parents=True)
        (folder / "conda.yaml").write_text(
            "channels: [conda-forge]\ndependencies:\n- python=3.9.19\n- pip\n- pip:\n"
            "  - azureml-automl-runtime==1.60.0\n  - scikit-learn==1.5.1\n  - mlflow-skinny==2.9.2\n"
        )


class _Endpoints(_Operations):
    def get(self, name: str) -> FakeEndpoint:
        self._record("get", name=name)
        return self._client.endpoints[name]

    def begin_create_or_update(self, endpoint: FakeEndpoint) -> FakePoller:
        self._record("begin_create_or_update", traffic=dict(endpoint.traffic))
        self._client.endpoints[endpoint.name] = endpoint
        return FakePoller(endpoint)

    def invoke(self, endpoint_name: str, request_file: str, deployment_name: str | None = None) -> str:
        self._record("invoke", endpoint_name=endpoint_name, deployment_name=deployment_name,
                     request=json.loads(Path(request_file).read_text()))
        return self._client.invoke_answer


class _Deployments(_Operations):
    def begin_create_or_update(self, deployment: Any) -> FakePoller:
        self._record("begin_create_or_update", deployment=deployment)
        self._client.deployments[deployment.name] = deployment
        return FakePoller(deployment)

    def begin_delete(self, name: str, endpoint_name: str) -> FakePoller:
        self._record("begin_delete", name=name, endpoint_name=endpoint_name)
        self._client.deployments.pop(name, None)
        self._client.endpoints[endpoint_name].traffic.pop(name, None)
        return FakePoller()

    def get_logs(self, name: str, endpoint_name: str, lines: int) -> str:
        self._record("get_logs", name=name, endpoint_name=endpoint_name, lines=lines)
        return "Traceback: ModuleNotFoundError: No module named 'azureml.automl'"


class FakeMLClient:
    """Records calls in `calls`; `failures[op]` holds exceptions raised by the next calls to op."""

    def __init__(self, endpoint_name: str = "hf-dev-abc123") -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.failures: dict[str, list[Exception]] = {}
        self.data_assets: dict[tuple[str, str], Any] = {}
        self.submitted: dict[str, FakeJob] = {}
        self.job_statuses: dict[str, list[str]] = {}
        self.registered: list[FakeModel] = []
        self.endpoints = {endpoint_name: FakeEndpoint(endpoint_name)}
        self.deployments: dict[str, Any] = {}
        self.invoke_answer = json.dumps({"result": [False]})
        self.data = _Data(self, "data")
        self.jobs = _Jobs(self, "jobs")
        self.online_endpoints = _Endpoints(self, "online_endpoints")
        self.online_deployments = _Deployments(self, "online_deployments")
        self.models = _Models(self, "models")

    def ops(self, name: str) -> list[dict[str, Any]]:
        return [kwargs for op, kwargs in self.calls if op == name]


class FakeSession:
    """The seam's fake: an MLClient fake plus scripted MLflow run details."""

    def __init__(self, ml: FakeMLClient | None = None) -> None:
        from jobs.azure.session import RunDetails

        self.ml = ml or FakeMLClient()
        self.runs: dict[str, RunDetails] = {}
        self._details = RunDetails

    def finish_job(self, name: str, auc: float) -> None:
        self.ml.submitted[name].status = "Completed"
        child = f"{name}_7"
        self.runs[name] = self._details({"automl_best_child_run_id": child}, {"AUC_weighted": auc})
        self.runs[child] = self._details({}, {"AUC_weighted": auc, "accuracy": 0.85})

    def run_details(self, run_id: str) -> Any:
        return self.runs[run_id]
