"""Fakes for the outside world, in one place: Pulumi's engine (mocks) for the infrastructure."""

from __future__ import annotations

import copy
import hashlib
import json
import runpy
import uuid
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
    "azure-native:machinelearningservices:Registry": "registryName",
    "azure-native:authorization:RoleAssignment": "roleAssignmentName",
}
STACK_REFERENCE = "pulumi:pulumi:StackReference"


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
    invokes: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    # The other stacks' outputs, by the name a StackReference gives (what `pulumi stack output` shows).
    stacks: dict[str, dict[str, Any]] = field(default_factory=dict)

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        from tests import azure_rules

        if args.typ == STACK_REFERENCE:
            return self._stack_reference(args)
        options = self.options.get(args.name, {})
        recorded = (self.prior or {}).get(args.name)
        inputs = dict(args.inputs)
        effective = _with_ignored(inputs, recorded.inputs, options.get("ignore_changes", [])) if recorded else inputs
        if recorded is not None and recorded.typ == args.typ and effective == recorded.inputs:
            outputs = copy.deepcopy(recorded.outputs)
            resource_id = outputs.pop("__id")
            self.resources.append(
                Registered(
                    args.typ,
                    args.name,
                    inputs,
                    {**outputs, "__id": resource_id},
                    effective,
                    options,
                    same_as_before=True,
                )
            )
            return resource_id, outputs
        outputs = copy.deepcopy(effective)
        if args.typ == "random:index/randomString:RandomString":
            seed = f"{args.name}/{self.generation}/{json.dumps(effective.get('keepers'), sort_keys=True)}"
            outputs["result"] = self.random_suffix or _pseudo_random(seed, int(effective["length"]))
        azure_name = outputs.get(NAME_INPUT.get(args.typ, ""), args.name)
        outputs["name"] = azure_name
        if "identity" in outputs:
            # Azure draws a principal per identity: two stacks' workspaces never share one.
            principal = f"principal-of-{pulumi.get_stack()}-{args.name}"
            outputs["identity"] = {**outputs["identity"], "principalId": principal}
        if args.typ == "azure-native:machinelearningservices:Workspace":
            # Azure assigns the workspace a GUID once; it names the default datastore's container.
            outputs["workspaceId"] = str(uuid.uuid5(uuid.NAMESPACE_URL, azure_name))
        if args.typ == "azure-native:machinelearningservices:OnlineEndpoint":
            location = outputs.get("location", "westeurope")
            outputs["properties"] = {
                **outputs["properties"],
                "scoringUri": f"https://{azure_name}.{location}.inference.ml.azure.com/score",
            }
        if recorded is not None:
            outputs = azure_rules.stored_after_put(args.typ, recorded.outputs, outputs)
        resource_id = f"/subscriptions/{SUBSCRIPTION_ID}/mock/{args.typ.split(':')[-1]}/{azure_name}"
        if args.typ == "azure-native:machinelearningservices:Registry":
            # ARM's own form, which the policy pack reads a role assignment's scope by.
            resource_id = (
                f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{outputs.get('resourceGroupName')}"
                f"/providers/Microsoft.MachineLearningServices/registries/{azure_name}"
            )
        self.resources.append(
            Registered(args.typ, args.name, inputs, {**outputs, "__id": resource_id}, effective, options)
        )
        return resource_id, outputs

    def _stack_reference(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        """A read of another stack's outputs; a stack that does not exist fails, as the engine's read does."""
        stack = str(args.inputs.get("name") or args.resource_id)
        if stack not in self.stacks:
            raise RuntimeError(f"unknown stack {stack!r}")
        outputs = {"name": stack, "outputs": copy.deepcopy(self.stacks[stack]), "secretOutputNames": []}
        self.resources.append(Registered(args.typ, args.name, dict(args.inputs), outputs, dict(args.inputs)))
        self.resources[-1].same_as_before = True  # a read changes nothing
        return stack, outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        if args.token == "azure-native:authorization:getClientConfig":
            return {
                "clientId": "client-id",
                "objectId": "object-id",
                "subscriptionId": SUBSCRIPTION_ID,
                "tenantId": TENANT_ID,
            }
        if args.token == "azure-native:machinelearningservices:getRegistry":
            # A GET of the registry: what the earlier run (or a test's edit, a change outside Pulumi) has.
            self.invokes.append((args.token, dict(args.args)))
            for recorded in (self.prior or {}).values():
                if recorded.typ.endswith(":Registry") and recorded.outputs["name"] == args.args.get("registryName"):
                    return {k: v for k, v in copy.deepcopy(recorded.outputs).items() if k != "__id"}
            raise RuntimeError(f"ResourceNotFound: registry {args.args.get('registryName')} not found")
        if args.token == "azure-native:machinelearningservices:getOnlineEndpoint":
            # A GET of the endpoint: Azure answers with what it has, here the earlier run's (or a
            # test's edited, i.e. changed outside and refreshed) endpoint; 404 when there is none.
            self.invokes.append((args.token, dict(args.args)))
            for recorded in (self.prior or {}).values():
                if recorded.typ == args.token.replace(":getOnlineEndpoint", ":OnlineEndpoint") and (
                    recorded.outputs["name"] == args.args.get("endpointName")
                ):
                    return {k: v for k, v in copy.deepcopy(recorded.outputs).items() if k != "__id"}
            raise RuntimeError(f"ResourceNotFound: online endpoint {args.args.get('endpointName')} not found")
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
            "retain_on_delete": bool(request.retainOnDelete),
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
    stacks: dict[str, dict[str, Any]] | None = None,
) -> ProgramRun:
    """Run infra/__main__.py under mocks, as `pulumi preview` would, and return what it did.

    `prior`: an earlier run of the same stack, to play `pulumi up` of a changed program or config
    against its state. `generation`: a number per fresh deployment (destroy, then up again).
    `stacks`: other stacks' outputs by name, for the program's StackReferences (e.g. {"shared": run.exports}).
    """
    mocks = PulumiMocks(
        random_suffix=random_suffix,
        prior=prior.mocks.by_name() if prior else None,
        generation=generation,
        stacks=dict(stacks or {}),
    )
    # A stack can read its own last outputs (the shared stack does); a new stack has none.
    mocks.stacks.setdefault(f"organization/{project}/{stack}", dict(prior.exports) if prior else {})
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(
        mocks, project=project, stack=stack, preview=False, monitor=monitor, organization="organization"
    )
    # A key with a namespace (azure-native:location) is the provider's and is passed as it is.
    pulumi.runtime.set_all_config(
        {key if ":" in key else f"{project}:{key}": str(value) for key, value in (config or {}).items()}
    )
    exports: dict[str, Any] = {}

    @pulumi.runtime.test
    def program() -> pulumi.Output[Any]:
        namespace = runpy.run_path(str(ROOT / "infra" / "__main__.py"), run_name="__pulumi__")
        outputs = namespace["platform"].outputs
        keys = list(outputs)
        values = pulumi.Output.all(*[outputs[k] for k in keys])
        return values.apply(lambda resolved: exports.update(zip(keys, resolved, strict=True)))

    program()
    return ProgramRun(mocks, exports, monitor.ignore_changes)


# The three stacks of docs/environments.md under mocks: the shared stack's config, and a run of it whose
# outputs the workspace stacks' StackReferences read.
CI_PRINCIPAL_ID = "00000000-0000-0000-0000-00000000c1c1"
SHARED_CONFIG = {
    "stackKind": "shared",
    "registryConsumers": '["dev=westeurope", "prod=westeurope"]',
    "ciPrincipalId": CI_PRINCIPAL_ID,
}


def run_shared(config: dict[str, Any] | None = None, **kwargs: Any) -> ProgramRun:
    """The shared stack (stack name "shared") with SHARED_CONFIG and `config` on top."""
    return run_program({**SHARED_CONFIG, **(config or {})}, stack="shared", **kwargs)


_SHARED_EXPORTS: dict[str, Any] = {}


def shared_stacks() -> dict[str, dict[str, Any]]:
    """{"shared": the outputs of a default shared stack}, for `run_program(stacks=...)`; computed once."""
    if not _SHARED_EXPORTS:
        _SHARED_EXPORTS.update(run_shared().exports)
    return {"shared": copy.deepcopy(_SHARED_EXPORTS)}


# --- Azure ML ---------------------------------------------------------------------------------
# A fake of the MLClient surface jobs/azure uses. It records every call and plays scripted
# answers, failures included. No network. It must not accept what the real MLClient refuses:
# - every call is bound against the real azure-ai-ml operation's signature (REAL_OPERATIONS), so a
#   keyword or positional form the SDK would not take is a TypeError here too;
# - every entity sent is turned into its REST body the way the SDK does at submit time
#   (`_validate`, `_to_rest_object`, the scoring-script check), so the SDK's own validation errors
#   surface in the tests.


def _real_operations() -> dict[str, type]:
    from azure.ai.ml.operations import (
        DataOperations,
        EnvironmentOperations,
        JobOperations,
        ModelOperations,
        OnlineDeploymentOperations,
        OnlineEndpointOperations,
        ScheduleOperations,
    )

    return {
        "data": DataOperations,
        "environments": EnvironmentOperations,
        "jobs": JobOperations,
        "models": ModelOperations,
        "online_endpoints": OnlineEndpointOperations,
        "online_deployments": OnlineDeploymentOperations,
        "schedules": ScheduleOperations,
    }


REAL_OPERATIONS = _real_operations()
LOCATION = "westeurope"


class FakePoller:
    """A finished long-running operation; with `error`, one that failed (result() raises it, as LROPoller does)."""

    def __init__(self, result: Any = None, error: BaseException | None = None) -> None:
        self._result = result
        self._error = error

    def done(self) -> bool:
        return True

    def wait(self, timeout: float | None = None) -> None:
        return None

    def result(self, timeout: float | None = None) -> Any:
        if self._error is not None:
            raise self._error
        return self._result


@dataclass
class FakeJob:
    name: str
    status: str = "Running"
    tags: dict[str, str] = field(default_factory=dict)
    studio_url: str = ""
    spec: Any = None
    properties: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeModel:
    name: str
    version: str
    tags: dict[str, str]
    path: str = ""
    type: str = "mlflow_model"


class _Operations:
    def __init__(self, client: FakeMLClient, group: str) -> None:
        self._client = client
        self._group = group

    def _bind(self, op: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """Bind the call as the real operation would (TypeError if it would not), record it, play failures."""
        import inspect

        real = inspect.signature(getattr(REAL_OPERATIONS[self._group], op))
        bound = real.bind(self, *args, **kwargs)
        bound.apply_defaults()
        arguments = {k: v for k, v in bound.arguments.items() if k not in ("self", "kwargs")}
        self._client.calls.append((f"{self._group}.{op}", dict(arguments)))
        failures = self._client.failures.get(f"{self._group}.{op}")
        if failures:
            raise failures.pop(0)
        return arguments


class _Data(_Operations):
    def get(self, *args: Any, **kwargs: Any) -> Any:
        a = self._bind("get", args, kwargs)
        from azure.core.exceptions import ResourceNotFoundError

        if (a["name"], a["version"]) not in self._client.data_assets:
            raise ResourceNotFoundError(f"data {a['name']}:{a['version']} not found")
        return self._client.data_assets[(a["name"], a["version"])]

    def create_or_update(self, *args: Any, **kwargs: Any) -> Any:
        data = self._bind("create_or_update", args, kwargs)["data"]
        # DataOperations.create_or_update uploads the local folder, then sends data._to_rest_object().
        data._to_rest_object()
        folder = Path(data.path)
        if data.type == "mltable" and folder.is_dir():
            import yaml

            self._client.uploaded_mltables.append(yaml.safe_load((folder / "MLTable").read_text()))
        self._client.data_assets[(data.name, data.version)] = data
        return data


class _Jobs(_Operations):
    def create_or_update(self, *args: Any, **kwargs: Any) -> FakeJob:
        job = self._bind("create_or_update", args, kwargs)["job"]
        from azure.ai.ml.entities._validation import PathAwareSchemaValidatableMixin

        # JobOperations.create_or_update: _validate(raise_on_failure=True) for validatable jobs
        # (pipelines), then _to_rest_object(), which converts e.g. blocked model names to enums.
        if isinstance(job, PathAwareSchemaValidatableMixin):
            job._validate(raise_error=True)
        job._to_rest_object()
        name = f"automl_job_{len(self._client.submitted) + 1}"
        fake = FakeJob(name, "Running", dict(job.tags or {}), f"https://ml.azure.com/runs/{name}", job)
        self._client.submitted[name] = fake
        return fake

    def get(self, *args: Any, **kwargs: Any) -> FakeJob:
        name = self._bind("get", args, kwargs)["name"]
        if name not in self._client.submitted:
            from azure.core.exceptions import ResourceNotFoundError

            raise ResourceNotFoundError(f"job {name} not found")
        job = self._client.submitted[name]
        script = self._client.job_statuses.get(name)
        if script:
            job.status = script.pop(0)
        return job

    def list(self, *args: Any, **kwargs: Any) -> Any:
        parent = self._bind("list", args, kwargs)["parent_job_name"]
        return iter(self._client.children.get(parent, []))


class _Models(_Operations):
    def list(self, *args: Any, **kwargs: Any) -> Any:
        name = self._bind("list", args, kwargs)["name"]
        found = [m for m in self._client.registered if m.name == name]

        def pages() -> Any:
            # Unverified, so the fake takes the stricter reading: listing the versions of a model
            # name that does not exist yet fails (lazily, when iterated, as the SDK's ItemPaged does).
            if not found:
                from azure.core.exceptions import ResourceNotFoundError

                raise ResourceNotFoundError(f"model container {name} not found")
            yield from found

        return pages()

    def get(self, *args: Any, **kwargs: Any) -> FakeModel:
        a = self._bind("get", args, kwargs)
        matching = [m for m in self._client.registered if m.name == a["name"]]
        from azure.core.exceptions import ResourceNotFoundError

        if a["label"] == "latest" and matching:
            return matching[-1]
        for model in matching:
            if model.version == str(a["version"]):
                return model
        raise ResourceNotFoundError(f"model {a['name']}:{a['version'] or a['label']} not found")

    def create_or_update(self, *args: Any, **kwargs: Any) -> FakeModel:
        model = self._bind("create_or_update", args, kwargs)["model"]
        if isinstance(model, FakeModel):
            # An entity read back and sent again: its version exists, and the PUT replaces its mutable metadata
            # (tags), as Azure/azureml-assets PR 1098 updates a registry model's tags.
            stored = next(m for m in self._client.registered if (m.name, m.version) == (model.name, model.version))
            stored.tags = dict(model.tags or {})
            return copy.deepcopy(stored)
        model._to_rest_object()
        created = FakeModel(model.name, str(len(self._client.registered) + 1), dict(model.tags or {}), model.path)
        self._client.registered.append(created)
        return created

    def share(self, *args: Any, **kwargs: Any) -> FakeModel:
        """ModelOperations.share (azure-ai-ml 1.35.2): the workspace version imported into the registry under
        share_with_name/share_with_version; the SDK refuses a version the registry has already."""
        from azure.ai.ml.exceptions import ValidationException

        a = self._bind("share", args, kwargs)
        source = next(m for m in self._client.registered if (m.name, m.version) == (a["name"], str(a["version"])))
        registry = self._client.registries[a["registry_name"]]
        if any((m.name, m.version) == (a["share_with_name"], a["share_with_version"]) for m in registry.registered):
            raise ValidationException(
                message="A model with this name and version already exists in registry", no_personal_data_message=""
            )
        # Whether the import copies the workspace version's tags is not documented; share_keeps_tags plays both.
        tags = dict(source.tags) if self._client.share_keeps_tags else {}
        shared = FakeModel(a["share_with_name"], a["share_with_version"], tags, f"registry/{source.path}", source.type)
        registry.registered.append(shared)
        return copy.deepcopy(shared)

    def download(self, *args: Any, **kwargs: Any) -> None:
        a = self._bind("download", args, kwargs)
        folder = Path(a["download_path"]) / a["name"] / "mlflow-model"
        folder.mkdir(parents=True)
        (folder / "conda.yaml").write_text(self._client.model_conda)


class _Environments(_Operations):
    def get(self, *args: Any, **kwargs: Any) -> Any:
        a = self._bind("get", args, kwargs)
        if (a["name"], a["version"]) not in self._client.environments_created:
            from azure.core.exceptions import ResourceNotFoundError

            raise ResourceNotFoundError(f"environment {a['name']}:{a['version']} not found")
        return self._client.environments_created[(a["name"], a["version"])]

    def create_or_update(self, *args: Any, **kwargs: Any) -> Any:
        env = self._bind("create_or_update", args, kwargs)["environment"]
        env._to_rest_object()  # validates: an image or a build context is required
        self._client.environments_created[(env.name, env.version)] = env
        return env


class _Endpoints(_Operations):
    def get(self, *args: Any, **kwargs: Any) -> Any:
        import copy

        name = self._bind("get", args, kwargs)["name"]
        # A fresh entity per call, as the SDK builds one from each GET's response.
        return copy.deepcopy(self._client.endpoints[name])

    def begin_create_or_update(self, *args: Any, **kwargs: Any) -> FakePoller:
        import copy

        from azure.ai.ml.operations._online_endpoint_operations import _strip_zeroes_from_traffic

        endpoint = self._bind("begin_create_or_update", args, kwargs)["endpoint"]
        # What OnlineEndpointOperations.begin_create_or_update sends: zero shares stripped, then
        # the REST body (which validates the name).
        sent = copy.deepcopy(endpoint)
        sent.traffic = _strip_zeroes_from_traffic(endpoint.traffic or {})
        body = sent._to_rest_online_endpoint(location=LOCATION)
        self._client.calls[-1][1]["traffic"] = dict(endpoint.traffic or {})
        self._client.calls[-1][1]["sent_traffic"] = dict(body.properties.traffic or {})
        # Azure: each share names a deployment of this endpoint, and the shares sum to 100
        # (azure-rest-api-specs, OnlineEndpoint.traffic: "Traffic values need to sum to 100").
        unknown = set(sent.traffic) - set(self._client.deployments)
        if unknown or (sent.traffic and sum(sent.traffic.values()) != 100):
            from azure.core.exceptions import HttpResponseError

            error = HttpResponseError(message=f"invalid traffic {sent.traffic}")
            error.status_code = 400
            raise error
        self._client.endpoints[endpoint.name] = sent
        return FakePoller(sent)

    def invoke(self, *args: Any, **kwargs: Any) -> str:
        from azure.ai.ml.constants._endpoint import EndpointInvokeFields

        a = self._bind("invoke", args, kwargs)
        # As OnlineEndpointOperations.invoke does (azure-ai-ml 1.35.2): it writes the key and the
        # deployment into the class-level EndpointInvokeFields.DEFAULT_HEADER dict and sends that.
        headers = EndpointInvokeFields.DEFAULT_HEADER
        headers[EndpointInvokeFields.AUTHORIZATION] = "Bearer fake-endpoint-key"
        if a["deployment_name"]:
            headers[EndpointInvokeFields.MODEL_DEPLOYMENT] = a["deployment_name"]
        traffic = self._client.endpoints[a["endpoint_name"]].traffic or {}
        served_by = headers.get(EndpointInvokeFields.MODEL_DEPLOYMENT) or max(traffic, key=traffic.get, default=None)
        self._client.calls[-1][1].update(request=json.loads(Path(a["request_file"]).read_text()), served_by=served_by)
        return self._client.invoke_answer


class _Deployments(_Operations):
    def begin_create_or_update(self, *args: Any, **kwargs: Any) -> FakePoller:
        deployment = self._bind("begin_create_or_update", args, kwargs)["deployment"]
        from azure.ai.ml._utils._endpoint_utils import validate_scoring_script

        # OnlineDeploymentOperations.begin_create_or_update: the scoring script is checked, the
        # endpoint must exist, then the REST body is built.
        validate_scoring_script(deployment)
        if deployment.endpoint_name not in self._client.endpoints:
            from azure.core.exceptions import ResourceNotFoundError

            raise ResourceNotFoundError(f"endpoint {deployment.endpoint_name} not found")
        # upload_dependencies (azure/ai/ml/_utils/_endpoint_utils.py) registers an inline
        # Environment first, which validates it (an image or a Dockerfile is required).
        from azure.ai.ml.entities import Environment

        if isinstance(deployment.environment, Environment):
            deployment.environment._to_rest_object()
        if deployment.data_collector is not None:
            # _register_collection_data_assets (operations/_online_deployment_operations.py, 1.35.2): one data
            # asset per collection, <endpoint>-<deployment>-<collection> version 1, its ARM id on the collection.
            for name, collection in deployment.data_collector.collections.items():
                collection.data = (
                    f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/rg/providers/Microsoft.MachineLearningServices"
                    f"/workspaces/w/data/{deployment.endpoint_name}-{deployment.name}-{name}/versions/1"
                )
        deployment._to_rest_object(location=LOCATION)
        self._client.deployments[deployment.name] = deployment
        # A provisioning failure (the container crashed) ends the operation, not the PUT.
        failed = self._client.failures.get("online_deployments.provisioning")
        return FakePoller(deployment, failed.pop(0) if failed else None)

    def begin_delete(self, *args: Any, **kwargs: Any) -> FakePoller:
        a = self._bind("begin_delete", args, kwargs)
        endpoint = self._client.endpoints[a["endpoint_name"]]
        if (endpoint.traffic or {}).get(a["name"]):
            from azure.core.exceptions import HttpResponseError

            error = HttpResponseError(message=f"deployment {a['name']} still takes traffic")
            error.status_code = 400
            raise error
        self._client.deployments.pop(a["name"], None)
        return FakePoller()

    def get_logs(self, *args: Any, **kwargs: Any) -> str:
        self._bind("get_logs", args, kwargs)
        return self._client.deployment_log

    def get(self, *args: Any, **kwargs: Any) -> Any:
        import copy

        a = self._bind("get", args, kwargs)
        if a["name"] not in self._client.deployments:
            from azure.core.exceptions import ResourceNotFoundError

            raise ResourceNotFoundError(f"deployment {a['name']} not found")
        return copy.deepcopy(self._client.deployments[a["name"]])


class _Schedules(_Operations):
    """ScheduleOperations: a schedule is stored as its REST body and read back through it, as the SDK does."""

    def get(self, *args: Any, **kwargs: Any) -> Any:
        from azure.ai.ml.entities import Schedule

        name = self._bind("get", args, kwargs)["name"]
        if name not in self._client.schedule_bodies:
            from azure.core.exceptions import ResourceNotFoundError

            raise ResourceNotFoundError(f"schedule {name} not found")
        return Schedule._from_rest_object(self._client.schedule_bodies[name])

    def begin_create_or_update(self, *args: Any, **kwargs: Any) -> FakePoller:
        from azure.ai.ml.entities import Schedule

        schedule = self._bind("begin_create_or_update", args, kwargs)["schedule"]
        body = schedule._to_rest_object()
        body.name = schedule.name  # the PUT's URL carries it; a GET's body has it
        self._client.schedule_bodies[schedule.name] = body
        return FakePoller(Schedule._from_rest_object(body))


class FakeMLClient:
    """Records calls in `calls`; `failures[op]` holds exceptions raised by the next calls to op."""

    def __init__(self, endpoint_name: str = "hf-dev-abc123") -> None:
        from azure.ai.ml.entities import ManagedOnlineEndpoint

        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.failures: dict[str, list[BaseException]] = {}
        self.data_assets: dict[tuple[str, str], Any] = {}
        self.uploaded_mltables: list[dict[str, Any]] = []
        self.submitted: dict[str, FakeJob] = {}
        self.job_statuses: dict[str, list[str]] = {}
        self.registered: list[FakeModel] = []
        self.children: dict[str, list[FakeJob]] = {}  # an AutoML job's trials, by parent job name
        self.endpoints = {endpoint_name: ManagedOnlineEndpoint(name=endpoint_name, auth_mode="key")}
        self.deployments: dict[str, Any] = {}
        self.schedule_bodies: dict[str, Any] = {}  # name -> the REST body sent
        self.invoke_answer = json.dumps(
            {"result": [False], "probability": [0.1], "threshold": 0.3, "outside_training_range": [[]]}
        )
        self.model_conda = (
            "channels: [conda-forge]\ndependencies:\n- python=3.9.19\n- pip\n- pip:\n"
            "  - azureml-automl-runtime==1.60.0\n  - scikit-learn==1.5.1\n  - mlflow-skinny==2.9.2\n"
        )
        self.deployment_log = "Traceback: ModuleNotFoundError: No module named 'azureml.automl'"
        # Registries by name (ModelOperations.share's target), and whether a share copies the source's tags.
        self.registries: dict[str, FakeMLClient] = {}
        self.share_keeps_tags = True
        self.environments_created: dict[tuple[str, str], Any] = {}
        self.data = _Data(self, "data")
        self.environments = _Environments(self, "environments")
        self.jobs = _Jobs(self, "jobs")
        self.online_endpoints = _Endpoints(self, "online_endpoints")
        self.online_deployments = _Deployments(self, "online_deployments")
        self.models = _Models(self, "models")
        self.schedules = _Schedules(self, "schedules")

    def ops(self, name: str) -> list[dict[str, Any]]:
        return [kwargs for op, kwargs in self.calls if op == name]


class FakeSession:
    """The seam's fake: an MLClient fake plus scripted MLflow run details."""

    def __init__(self, ml: FakeMLClient | None = None) -> None:
        from jobs.azure.session import RunDetails

        self.ml = ml or FakeMLClient()
        self.workspaces: dict[str, FakeMLClient] = {}  # other stacks' workspaces, by workspace name
        self.runs: dict[str, RunDetails] = {}
        self._details = RunDetails

    def finish_job(self, name: str, auc: float, baseline: float | None = None) -> None:
        """Complete an AutoML job: its run carries the job's tags plus AutoML's best child (Azure ML run
        tags are the job's tags); its trials are a LightGBM child with `auc` and, when `baseline` is
        given, a LogisticRegression child with that score (properties run_algorithm and score)."""
        job = self.ml.submitted[name]
        job.status = "Completed"
        child = f"{name}_7"
        self.runs[name] = self._details({**job.tags, "automl_best_child_run_id": child}, {"AUC_weighted": auc})
        self.runs[child] = self._details({}, {"AUC_weighted": auc, "accuracy": 0.85})
        trials = [
            FakeJob(f"{name}_setup", "Completed"),
            FakeJob(child, "Completed", properties={"run_algorithm": "LightGBM", "score": str(auc)}),
        ]
        if baseline is not None:
            trials.append(
                FakeJob(
                    f"{name}_2", "Completed", properties={"run_algorithm": "LogisticRegression", "score": str(baseline)}
                )
            )
        self.ml.children[name] = trials

    def run_details(self, run_id: str) -> Any:
        return self.runs[run_id]

    def workspace_client(self, outputs: Any) -> FakeMLClient:
        """Another stack's workspace (AzureSession.workspace_client): one of `workspaces`, by workspace name."""
        return self.workspaces[outputs.workspace_name]

    def registry_client(self, registry_name: str) -> FakeMLClient:
        """The registry's client (AzureSession.registry_client): the one the dev fake shares to."""
        return self.ml.registries.setdefault(registry_name, FakeMLClient())
