"""The three stacks of one program (docs/environments.md) under mocks: shared, then dev and prod.

The shared stack owns the Azure ML registry; dev and prod read it through a StackReference fed here by
the shared stack's own outputs. What each stack registers, the role assignments (exactly the needed
ones, none that Azure makes itself, none twice across stacks), and the refusals, which come before any
Azure resource is registered.
"""

from __future__ import annotations

import copy
import json

import pulumi
import pytest

from infra.builders.registry_access import AZUREML_REGISTRY_USER, READER
from infra.naming import RULES
from tests import azure_rules as rules
from tests import fakes
from tests.fakes import CI_PRINCIPAL_ID, run_program, run_shared

COMPONENT = "heartfailure:platform:MlPlatform"
# What a refused workspace stack may have registered: the component, its suffix (whose keepers never
# change) and the read of the shared stack. Nothing in Azure.
BEFORE_ANY_RESOURCE = {COMPONENT, rules.RANDOM, rules.STACK_REFERENCE}
PROD = {"sharedStack": "shared", "keyVaultPurgeProtection": "true", "maxNodes": "1"}


@pytest.fixture(scope="module")
def shared():
    return run_shared()


@pytest.fixture(scope="module")
def stacks(shared):
    """The three stacks, brought up in their order: shared, then dev and prod from its outputs."""
    outputs = {"shared": shared.exports}
    dev = run_program({"sharedStack": "shared"}, stack="dev", stacks=outputs)
    prod = run_program(PROD, stack="prod", stacks=outputs)
    return {"shared": shared, "dev": dev, "prod": prod}


def test_the_shared_stack_is_a_resource_group_a_registry_and_the_ci_grant(shared):
    assert sorted(r.typ for r in shared.mocks.resources) == sorted(
        [COMPONENT, rules.RANDOM, rules.STACK_REFERENCE, rules.RG, rules.ML_REGISTRY, rules.ROLE]
    )
    registry = shared.mocks.one(rules.ML_REGISTRY).inputs
    assert RULES["ml_registry"].is_valid(registry["registryName"])
    assert registry["identity"] == {"type": "SystemAssigned"}
    assert registry["location"] == "westeurope"
    assert registry["tags"]["stack"] == "shared"
    # It creates its own storage and Premium container registry in each region; nothing existing is given.
    (region,) = registry["regionDetails"]
    assert region["location"] == "westeurope"
    assert region["acrDetails"] == [{"systemCreatedAcrAccount": {"acrAccountSku": "Premium"}}]
    assert region["storageAccountDetails"] == [
        {
            "systemCreatedStorageAccount": {
                "storageAccountType": "Standard_LRS",
                "storageAccountHnsEnabled": False,
                "allowBlobPublicAccess": False,
            }
        }
    ]
    assert rules.limit_violations(shared) == []


def test_the_shared_stack_exports_the_registry_for_the_workspace_stacks_and_no_secret(shared):
    out = shared.exports
    registry = shared.mocks.one(rules.ML_REGISTRY)
    assert out["registry_name"] == registry.outputs["name"]
    assert out["registry_id"] == registry.outputs["__id"]
    assert out["registry_regions"] == ["westeurope"]
    assert out["registry_consumers"] == {"dev": "westeurope", "prod": "westeurope"}
    assert out["ci_principal_id"] == CI_PRINCIPAL_ID
    assert not any("key" in name.lower() or "secret" in name.lower() for name in out)


def test_more_regions_are_each_a_region_of_the_registry_the_primary_first():
    run = run_shared({"location": "northeurope", "registryRegions": '["westeurope", "North Europe"]'})
    details = run.mocks.one(rules.ML_REGISTRY).inputs["regionDetails"]
    assert [d["location"] for d in details] == ["northeurope", "westeurope"]
    assert run.exports["registry_regions"] == ["northeurope", "westeurope"]
    assert rules.limit_violations(run) == []


def test_dev_and_prod_are_the_workspace_program_reading_the_registry(stacks):
    shared = stacks["shared"].exports
    for stack in ("dev", "prod"):
        run = stacks[stack]
        for typ in (rules.WORKSPACE, rules.COMPUTE, rules.ENDPOINT):
            run.mocks.one(typ)
        reference = run.mocks.one(rules.STACK_REFERENCE)
        assert reference.inputs["name"] == "shared"
        out = run.exports
        assert (out["registry_name"], out["registry_id"], out["registry_regions"]) == (
            shared["registry_name"],
            shared["registry_id"],
            ["westeurope"],
        )
    assert stacks["prod"].mocks.one(rules.VAULT).inputs["properties"]["enablePurgeProtection"] is True


def _grants(run) -> set[tuple[str, str, str]]:
    """(scope, principal, role id) of each role assignment the run declares."""
    return {
        (r.inputs["scope"], r.inputs["principalId"], r.inputs["roleDefinitionId"].rsplit("/", 1)[-1])
        for r in run.mocks.of_type(rules.ROLE)
    }


def test_the_role_assignments_are_exactly_the_needed_ones(stacks):
    registry = stacks["shared"].exports["registry_id"]

    def principal(stack: str, name: str) -> str:
        return stacks[stack].mocks.by_name()[name].outputs["identity"]["principalId"]

    assert _grants(stacks["shared"]) == {(registry, CI_PRINCIPAL_ID, AZUREML_REGISTRY_USER)}
    for stack in ("dev", "prod"):
        assert _grants(stacks[stack]) == {
            (registry, principal(stack, "heartfailure-workspace"), READER),
            (registry, principal(stack, "heartfailure-endpoint"), READER),
        }
        for assignment in stacks[stack].mocks.of_type(rules.ROLE):
            assert assignment.inputs["principalType"] == "ServicePrincipal"
    # None that Azure ML makes itself, none declared twice within a stack or across the three.
    for run in stacks.values():
        assert rules.role_violations(run) == []
    assert rules.across_stacks_violations(stacks.values()) == []


def test_the_ci_identity_granted_by_dev_and_prod_each_would_collide(stacks):
    # Why the CI grant lives in the shared stack: dev and prod both run as the same CI identity.
    dev, prod = copy.deepcopy(stacks["dev"]), copy.deepcopy(stacks["prod"])
    ci = next(r for r in stacks["shared"].mocks.of_type(rules.ROLE))
    for run in (dev, prod):
        run.mocks.resources.append(copy.deepcopy(ci))
    found = rules.across_stacks_violations([dev, prod])
    assert any("RoleAssignmentExists" in v for v in found)


def test_assignment_names_are_stable_across_runs_and_unique(stacks, shared):
    again = run_program({"sharedStack": "shared"}, stack="dev", stacks={"shared": shared.exports}, prior=stacks["dev"])
    assert {r.name: r.inputs["roleAssignmentName"] for r in again.mocks.of_type(rules.ROLE)} == {
        r.name: r.inputs["roleAssignmentName"] for r in stacks["dev"].mocks.of_type(rules.ROLE)
    }
    assert {step.kind for step in rules.transition(stacks["dev"], again)} == {"same"}
    names = [r.inputs["roleAssignmentName"] for run in stacks.values() for r in run.mocks.of_type(rules.ROLE)]
    assert len(names) == len(set(names))


def test_without_a_ci_identity_the_shared_stack_grants_nothing():
    run = run_shared({"ciPrincipalId": ""})
    assert run.mocks.of_type(rules.ROLE) == []
    assert run.exports["ci_principal_id"] is None


@pytest.fixture
def registrations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The type of every resource registered, in order (reads included)."""
    seen: list[str] = []
    new_resource = fakes.PulumiMocks.new_resource

    def recording(self: fakes.PulumiMocks, args: pulumi.runtime.MockResourceArgs):
        seen.append(args.typ)
        return new_resource(self, args)

    monkeypatch.setattr(fakes.PulumiMocks, "new_resource", recording)
    return seen


REFUSED_WORKSPACE = {
    "no registry yet": ({}, {}, "dev", "exports no registry_name, registry_id, registry_regions"),
    "region not covered": (
        {},
        {"location": "eastus2"},
        "dev",
        "this stack's region 'eastus2' is not one of the registry's regions (westeurope)",
    ),
    "not a declared consumer": ({}, {}, "staging", "the shared stack 'shared' does not list it"),
}


@pytest.mark.parametrize("case", sorted(REFUSED_WORKSPACE))
def test_a_registry_that_cannot_serve_the_stack_is_refused_before_any_resource(case, shared, registrations):
    edit, config, stack, fragment = REFUSED_WORKSPACE[case]
    outputs = {} if case == "no registry yet" else {**shared.exports, **edit}
    with pytest.raises(pulumi.RunError) as refused:
        run_program({"sharedStack": "shared", **config}, stack=stack, stacks={"shared": outputs})
    message = str(refused.value)
    assert fragment in message, message
    assert "pulumi up --stack shared" in message and "Traceback" not in message
    assert set(registrations) <= BEFORE_ANY_RESOURCE, registrations


def test_the_region_refusal_names_what_to_add_to_the_shared_stack(shared):
    with pytest.raises(pulumi.RunError) as refused:
        run_program({"sharedStack": "shared", "location": "eastus2"}, stack="dev", stacks={"shared": shared.exports})
    message = str(refused.value)
    assert "Add eastus2 to registryRegions" in message and '"dev=eastus2" to registryConsumers' in message


def test_a_consumer_declared_in_another_region_is_refused(shared):
    outputs = {**shared.exports, "registry_regions": ["westeurope", "eastus2"]}
    with pytest.raises(pulumi.RunError) as refused:
        run_program({"sharedStack": "shared", "location": "eastus2"}, stack="dev", stacks={"shared": outputs})
    assert "lists it in westeurope" in str(refused.value)


REFUSED_SHARED = {
    # A consumer's region must be one of the registry's (how-to-share-models-pipelines-across-workspaces...).
    "registryConsumers": ({"registryConsumers": '["prod=eastus2"]'}, "which the registry does not cover"),
    "registryRegions": ({"registryRegions": '["northeurope"]'}, "must include the stack's own region 'westeurope'"),
    "vmSize": ({"vmSize": "Standard_D4s_v5"}, "only a workspace stack reads it"),
    "budgetEmails": ({"budgetEmails": '["a@example.com"]'}, "only a workspace stack reads it"),
    "ciPrincipalId": ({"ciPrincipalId": "ci-bot"}, "object id (a GUID)"),
    "stackKind": ({"stackKind": "registry"}, "allowed values are workspace, shared"),
}


@pytest.mark.parametrize("key", sorted(REFUSED_SHARED))
def test_bad_shared_config_stops_the_program_before_anything_is_registered(key, registrations):
    config, fragment = REFUSED_SHARED[key]
    with pytest.raises(pulumi.RunError) as refused:
        run_shared(config)
    message = str(refused.value)
    assert f"config '{key}'" in message and fragment in message, message
    assert registrations == []


def test_a_workspace_stack_cannot_name_itself_as_its_shared_stack(registrations):
    with pytest.raises(pulumi.RunError) as refused:
        run_program({"sharedStack": "my-org/azureml-heart-failure/dev"}, stack="dev")
    assert "it names this stack (dev)" in str(refused.value)
    assert registrations == []


def test_adding_a_region_is_an_update_azure_allows(shared):
    after = run_shared({"registryRegions": '["westeurope", "northeurope"]'}, prior=shared)
    steps = {step.name: step for step in rules.transition(shared, after)}
    assert steps["heartfailure-mlregistry"].kind == "update"
    assert rules.violations(shared, after) == []
    assert after.exports["registry_regions"] == ["westeurope", "northeurope"]


def test_taking_a_region_out_is_refused_before_the_registry_is_touched(shared, registrations):
    two = run_shared({"registryRegions": '["westeurope", "northeurope"]'}, prior=shared)
    registrations.clear()
    with pytest.raises(pulumi.RunError) as refused:
        run_shared({"registryRegions": '["westeurope"]'}, prior=two)
    message = str(refused.value)
    assert "config 'registryRegions' leaves out northeurope" in message and "removeRegions" in message
    assert json.dumps(["westeurope", "northeurope"]) in message  # how to keep it
    assert set(registrations) <= {COMPONENT, rules.RANDOM, rules.STACK_REFERENCE}


def test_a_region_removed_outside_pulumi_is_not_asked_back(shared):
    two = run_shared({"registryRegions": '["westeurope", "northeurope"]'}, prior=shared)
    registry = two.mocks.by_name()["heartfailure-mlregistry"]
    registry.outputs["regionDetails"] = registry.outputs["regionDetails"][:1]  # removeRegions, then refresh
    run_shared({"registryRegions": '["westeurope"]'}, prior=two)


def test_the_rules_model_catches_what_azure_refuses_for_a_registry(shared):
    # Each rule catches its kind: an existing ACR or storage account given, another SKU, a bad name.
    broken = copy.deepcopy(shared)
    registry = broken.mocks.one(rules.ML_REGISTRY)
    (region,) = registry.inputs["regionDetails"]
    region["acrDetails"] = [{"userCreatedAcrAccount": {"armResourceId": {"resourceId": "/x/registries/mine"}}}]
    region["storageAccountDetails"].append({"userCreatedStorageAccount": {"armResourceId": {"resourceId": "/x"}}})
    registry.inputs["registryName"] = "-bad"
    found = rules.limit_violations(broken)
    assert sum("existing ones cannot be given" in v for v in found) == 2
    assert any("Premium only" in v for v in found) and any("name '-bad'" in v for v in found)
    # Replacing the registry loses every promoted model; a role assignment cannot change in place.
    renamed = copy.deepcopy(shared)
    renamed.mocks.one(rules.ML_REGISTRY).effective["registryName"] = "mlr-other"
    assert any("every model and environment" in v for v in rules.violations(shared, renamed))


def test_a_workspace_granted_on_a_registry_outside_its_region_is_caught(stacks):
    dev = copy.deepcopy(stacks["dev"])
    dev.mocks.one(rules.WORKSPACE).inputs["location"] = "eastus2"
    found = rules.across_stacks_violations([stacks["shared"], dev])
    assert any("uses a registry in ['westeurope'] only" in v for v in found)


def test_the_jobs_read_the_registry_from_a_workspace_stacks_outputs(stacks, tmp_path):
    from jobs.azure import stack_outputs
    from jobs.errors import JobsError

    saved = tmp_path / "outputs.json"  # what `pulumi stack output --json --stack prod > outputs.json` writes
    saved.write_text(json.dumps(stacks["prod"].exports))
    read = stack_outputs.resolve("prod", saved, environ={}, cwd=tmp_path)
    assert read.registry_name == stacks["shared"].exports["registry_name"]
    # A stack without a registry exports null, and the jobs read None.
    saved.write_text(json.dumps(run_program({}).exports))
    assert stack_outputs.resolve("dev", saved, environ={}, cwd=tmp_path).registry_name is None
    # A name Azure ML would refuse is refused when read, with what is allowed.
    saved.write_text(json.dumps({**stacks["prod"].exports, "registry_name": "_shared"}))
    with pytest.raises(JobsError, match="'registry_name' is '_shared'; it must be an Azure ML registry name"):
        stack_outputs.resolve("prod", saved, environ={}, cwd=tmp_path)


# The identity of what the environments add (tests/infra/test_resource_graph.py pins the rest): a changed
# logical name or parent is a new URN, and `pulumi up` would delete the registry with every promoted model.
# (The component's own parent, the stack, is spelled by whichever run registered a stack first; left out.)
SHARED_RESOURCES = {
    (rules.RANDOM, "heartfailure-suffix", "heartfailure"),
    (rules.STACK_REFERENCE, "heartfailure-previous", "heartfailure"),
    (rules.RG, "heartfailure-rg", "heartfailure"),
    (rules.ML_REGISTRY, "heartfailure-mlregistry", "heartfailure"),
    (rules.ROLE, "heartfailure-ci-registry-user", "heartfailure"),
}
WORKSPACE_ADDS = {
    (rules.STACK_REFERENCE, "heartfailure-shared", "heartfailure"),
    (rules.ROLE, "heartfailure-workspace-registry-reader", "heartfailure"),
    (rules.ROLE, "heartfailure-endpoint-registry-reader", "heartfailure"),
}


class _ParentRecordingMonitor(fakes.RecordingMonitor):
    last: _ParentRecordingMonitor

    def __init__(self, mocks: fakes.PulumiMocks) -> None:
        super().__init__(mocks)
        self.registrations: list[tuple[str, str, str]] = []
        _ParentRecordingMonitor.last = self

    def RegisterResource(self, request):
        self.registrations.append((request.type, request.name, request.parent.rsplit("::", 1)[-1]))
        return super().RegisterResource(request)

    def ReadResource(self, request):
        self.registrations.append((request.type, request.name, request.parent.rsplit("::", 1)[-1]))
        return super().ReadResource(request)


def test_the_environments_resources_keep_their_logical_names_and_parents(shared, monkeypatch):
    monkeypatch.setattr(fakes, "RecordingMonitor", _ParentRecordingMonitor)
    run_shared()
    found = {r for r in _ParentRecordingMonitor.last.registrations if r[0] not in ("pulumi:pulumi:Stack", COMPONENT)}
    assert found == SHARED_RESOURCES
    run_program({"sharedStack": "shared"}, stacks={"shared": shared.exports})
    found = {r for r in _ParentRecordingMonitor.last.registrations if r[0] != "pulumi:pulumi:Stack"}
    assert {r for r in found if r[0] in (rules.ROLE, rules.STACK_REFERENCE)} == WORKSPACE_ADDS


# `pulumi up` of the shared stack with each of its keys changed: applied, or refused naming the key.
SHARED_CHANGES = {
    "location": ({"location": "northeurope", "registryConsumers": "[]"}, "refused"),
    "tags": ({"tags": '["owner=ml-team"]'}, "in place"),
    "publicNetworkAccess": ({"publicNetworkAccess": "Disabled"}, "in place"),
    "registryRegions": ({"registryRegions": '["westeurope", "swedencentral"]'}, "in place"),
    "registryConsumers": ({"registryConsumers": '["dev=westeurope"]'}, "outputs only"),
    "ciPrincipalId": ({"ciPrincipalId": "00000000-0000-0000-0000-00000000c2c2"}, "replace"),
    # With the shared keys gone too (else those are refused first): the record refuses the kind.
    "stackKind": ({"stackKind": "workspace", "registryConsumers": "[]", "ciPrincipalId": ""}, "refused"),
}


@pytest.mark.parametrize("key", sorted(SHARED_CHANGES))
def test_changing_a_shared_key_is_applied_or_refused_never_broken(key, shared):
    config, expected = SHARED_CHANGES[key]
    if expected == "refused":
        with pytest.raises(pulumi.RunError) as refused:
            run_shared(config, prior=shared)
        assert f"config '{key}'" in str(refused.value) and "pulumi config set" in str(refused.value)
        return
    after = run_shared(config, prior=shared)
    assert rules.violations(shared, after) == []
    changed = {step.name: step.kind for step in rules.transition(shared, after) if step.kind != "same"}
    if expected == "outputs only":
        assert changed == {} and after.exports["registry_consumers"] == {"dev": "westeurope"}
    elif expected == "replace":
        # A new CI identity is a new assignment (its name is derived from the principal); the old one goes.
        assert changed == {"heartfailure-ci-registry-user": "replace"}
    else:
        assert changed.get("heartfailure-mlregistry") == "update", changed


def test_each_workspace_stacks_endpoint_and_workspace_may_read_the_registry(stacks):
    registry = stacks["shared"].exports["registry_id"]
    for stack in ("dev", "prod"):
        assert rules.registry_pull_violations(stacks[stack], registry) == []
    # Without its grant, the endpoint could not pull a registry model: Azure assigns nothing there itself.
    dev = copy.deepcopy(stacks["dev"])
    dev.mocks.resources = [r for r in dev.mocks.resources if r.name != "heartfailure-endpoint-registry-reader"]
    assert rules.registry_pull_violations(dev, registry) == [
        "OnlineEndpoint 'heartfailure-endpoint': its identity may not read the registry's assets"
    ]


def test_one_preview_names_a_settings_and_an_environment_problem_together(registrations):
    with pytest.raises(pulumi.RunError) as refused:
        run_shared({"ciPrincipalId": "ci-bot", "location": "westeuropa"})
    lines = str(refused.value).splitlines()
    assert lines[0] == "invalid config:" and len(lines) == 3, lines
    assert lines[1].startswith("config 'location' is 'westeuropa'") and lines[2].startswith("config 'ciPrincipalId'")
    assert registrations == []
