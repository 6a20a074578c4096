"""The policy pack against the resources the Pulumi program registers under the same mocks."""

from __future__ import annotations

import copy

import pytest
from pulumi_policy import PolicyCustomTimeouts, PolicyResourceOptions, ResourceValidationArgs

from policy.guardrails import CONFIG_DEFAULTS, POLICIES
from tests.fakes import run_program


def violations(typ: str, name: str, props: dict, config: dict | None = None) -> list[str]:
    found: list[str] = []
    opts = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])
    for policy in POLICIES:
        args = ResourceValidationArgs(
            typ, props, f"urn:pulumi:dev::p::{typ}::{name}", name, opts, None, {**CONFIG_DEFAULTS, **(config or {})}
        )
        policy.validate(args, lambda message, urn=None, p=policy.name: found.append(f"{p}: {message}"))
    return found


@pytest.fixture(scope="module")
def program():
    return run_program(random_suffix="p0l1cy")


def resource(program, suffix: str):
    return next(r for r in program.mocks.resources if r.typ.endswith(suffix))


def test_the_program_as_written_passes_every_policy(program):
    for registered in program.mocks.resources:
        assert violations(registered.typ, registered.name, registered.inputs) == [], registered.typ


def test_a_cluster_that_never_scales_to_zero_is_reported(program):
    cluster = resource(program, ":Compute")
    props = copy.deepcopy(cluster.inputs)
    props["properties"]["properties"]["scaleSettings"]["minNodeCount"] = 1
    props["properties"]["properties"]["scaleSettings"]["maxNodeCount"] = 50
    props["properties"]["properties"]["vmSize"] = "Standard_NC96ads_A100_v4"
    del props["properties"]["properties"]["scaleSettings"]["nodeIdleTimeBeforeScaleDown"]
    found = violations(cluster.typ, cluster.name, props)
    assert any("set minNodes to 0" in v for v in found)
    assert any("may grow to 50 nodes; the cap is 10" in v for v in found)
    assert any("Standard_NC96ads_A100_v4, which is not allowed" in v for v in found)
    assert any("no idle scale-down time" in v for v in found)


def test_insecure_storage_is_reported(program):
    storage = resource(program, ":StorageAccount")
    props = {
        **storage.inputs,
        "enableHttpsTrafficOnly": False,
        "minimumTlsVersion": "TLS1_0",
        "allowBlobPublicAccess": True,
    }
    found = violations(storage.typ, storage.name, props)
    assert len([v for v in found if v.startswith("storage-secure-transport")]) == 3


def test_a_key_vault_without_rbac_or_soft_delete_is_reported(program):
    vault = resource(program, ":Vault")
    props = copy.deepcopy(vault.inputs)
    props["properties"]["enableRbacAuthorization"] = False
    props["properties"]["enableSoftDelete"] = False
    found = violations(vault.typ, vault.name, props)
    assert any("enable_rbac_authorization=True" in v for v in found)
    assert any("soft delete off" in v for v in found)


def test_an_endpoint_without_authentication_is_reported(program):
    endpoint = resource(program, ":OnlineEndpoint")
    props = copy.deepcopy(endpoint.inputs)
    props["properties"]["authMode"] = "None"
    assert any(v.startswith("endpoint-authentication") for v in violations(endpoint.typ, endpoint.name, props))


def test_missing_tags_are_named(program):
    registry = resource(program, ":Registry")
    props = {**registry.inputs, "tags": {"project": "p"}}
    found = violations(registry.typ, registry.name, props)
    assert any("lacks the tag(s) stack, managed-by" in v for v in found)


def test_public_access_must_match_the_config(program):
    workspace = resource(program, "machinelearningservices:Workspace")
    found = violations(workspace.typ, workspace.name, workspace.inputs, {"publicNetworkAccess": "Disabled"})
    assert any("public network access Enabled, but this stack's config says Disabled" in v for v in found)
    locked = run_program({"publicNetworkAccess": "Disabled"})
    for registered in locked.mocks.resources:
        assert (
            violations(registered.typ, registered.name, registered.inputs, {"publicNetworkAccess": "Disabled"}) == []
        ), registered.typ


@pytest.mark.parametrize("spelling", ["Standard_DS3_V2", "STANDARD_DS3_V2", "standard_ds3_v2"])
def test_vm_sizes_are_compared_without_regard_to_case(program, spelling):
    cluster = resource(program, ":Compute")
    props = copy.deepcopy(cluster.inputs)
    props["properties"]["properties"]["vmSize"] = spelling
    assert not any(v.startswith("cluster-cost-limits") for v in violations(cluster.typ, cluster.name, props))
    # ... and the config's list is compared the same way.
    props["properties"]["properties"]["vmSize"] = "Standard_DS3_v2"
    config = {"allowedVmSizes": ["STANDARD_DS3_V2"]}
    assert not any(v.startswith("cluster-cost-limits") for v in violations(cluster.typ, cluster.name, props, config))


@pytest.fixture(scope="module")
def three_stacks():
    from tests.fakes import run_shared

    shared = run_shared()
    outputs = {"shared": shared.exports}
    return [
        shared,
        run_program({"sharedStack": "shared"}, stack="dev", stacks=outputs),
        run_program({"sharedStack": "shared", "keyVaultPurgeProtection": "true"}, stack="prod", stacks=outputs),
    ]


def test_the_three_stacks_pass_every_policy(three_stacks):
    for run in three_stacks:
        for registered in run.mocks.resources:
            assert violations(registered.typ, registered.name, registered.inputs) == [], registered.typ


def test_a_registry_role_that_could_delete_the_registry_is_reported(three_stacks):
    shared, dev, _ = three_stacks
    contributor = "b24988ac-6180-42a0-ab88-20f7382dd24c"
    for run in (shared, dev):
        for assignment in run.mocks.of_type("azure-native:authorization:RoleAssignment"):
            props = copy.deepcopy(assignment.inputs)
            props["roleDefinitionId"] = props["roleDefinitionId"].rsplit("/", 1)[0] + "/" + contributor
            found = violations(assignment.typ, assignment.name, props)
            assert any(v.startswith("registry-least-privilege") and contributor in v for v in found)
    # The same role elsewhere is not this policy's business.
    assignment = dev.mocks.of_type("azure-native:authorization:RoleAssignment")[0]
    props = {**assignment.inputs, "scope": "/subscriptions/s/resourceGroups/rg"}
    assert not any(v.startswith("registry-least-privilege") for v in violations(assignment.typ, "x", props))


def test_the_registry_carries_the_tags_and_the_configured_network_access(three_stacks):
    registry = three_stacks[0].mocks.one("azure-native:machinelearningservices:Registry")
    found = violations(
        registry.typ, registry.name, {**registry.inputs, "tags": {}}, {"publicNetworkAccess": "Disabled"}
    )
    assert any("lacks the tag(s) project, stack, managed-by" in v for v in found)
    assert any("public network access Enabled, but this stack's config says Disabled" in v for v in found)
