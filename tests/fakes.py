"""Fakes for the outside world, in one place: Pulumi's engine (mocks) for the infrastructure."""

from __future__ import annotations

import hashlib
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


@dataclass
class PulumiMocks(pulumi.runtime.Mocks):
    """Answers like Azure would, closely enough, and records every resource.

    Two traps this avoids: `call` answers getClientConfig with camelCase keys (snake_case
    silently gives None), and `new_resource` returns `name` among the outputs (without it
    every `resource.name` is None and dependent inputs silently drop).
    """

    random_suffix: str | None = None
    resources: list[Registered] = field(default_factory=list)

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        outputs = dict(args.inputs)
        if args.typ == "random:index/randomString:RandomString":
            outputs["result"] = self.random_suffix or _pseudo_random(args.name, int(args.inputs["length"]))
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
        resource_id = f"/subscriptions/{SUBSCRIPTION_ID}/mock/{args.typ.split(':')[-1]}/{azure_name}"
        self.resources.append(Registered(args.typ, args.name, dict(args.inputs), outputs))
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


def _pseudo_random(seed: str, length: int) -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    digest = hashlib.sha256(seed.encode()).digest()
    return "".join(alphabet[b % len(alphabet)] for b in digest[:length])


class RecordingMonitor(pulumi.runtime.mocks.MockMonitor):
    """Also records resource options that never reach `Mocks.new_resource`."""

    def __init__(self, mocks: PulumiMocks) -> None:
        super().__init__(mocks)
        self.ignore_changes: dict[str, list[str]] = {}

    def RegisterResource(self, request):
        self.ignore_changes[request.name] = list(request.ignoreChanges)
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
) -> ProgramRun:
    """Run infra/__main__.py under mocks, as `pulumi preview` would, and return what it did."""
    mocks = PulumiMocks(random_suffix=random_suffix)
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
