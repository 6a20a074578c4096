"""`pulumi up` of an existing stack, played against Azure's rules (tests/azure_rules.py).

Each config key in Pulumi.yaml is changed to another allowed value and the program is run again on
the state of the first run. Every change must be allowed in place by Azure, a replacement the program
asked for, or refused by the program with a message that names the key; never an update Azure
rejects or silently ignores, never one that cuts the endpoint's traffic.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pulumi
import pytest
import yaml

from tests import azure_rules as rules
from tests.fakes import CI_PRINCIPAL_ID, run_program, shared_stacks

ROOT = Path(__file__).resolve().parents[2]
WITH_BUDGET = {"budgetEmails": '["ml-team@example.com"]'}

# Key -> (the stack's config before, the config after). Every key of Pulumi.yaml has one.
CHANGES: dict[str, tuple[dict[str, str], dict[str, str]]] = {
    "location": ({}, {"location": "eastus2"}),
    "vmSize": ({}, {"vmSize": "Standard_D4s_v5"}),
    "vmPriority": ({}, {"vmPriority": "LowPriority"}),
    "minNodes": ({}, {"minNodes": "1"}),
    "maxNodes": ({}, {"maxNodes": "6"}),
    "idleSecondsBeforeScaleDown": ({}, {"idleSecondsBeforeScaleDown": "900"}),
    "endpointAuthMode": ({}, {"endpointAuthMode": "aad_token"}),
    "publicNetworkAccess": ({}, {"publicNetworkAccess": "Disabled"}),
    "keyVaultPurgeProtection": ({}, {"keyVaultPurgeProtection": "true"}),
    "logRetentionDays": ({}, {"logRetentionDays": "90"}),
    "tags": ({}, {"tags": '["owner=ml-team"]'}),
    "budgetAmount": (WITH_BUDGET, {**WITH_BUDGET, "budgetAmount": "250"}),
    "budgetEmails": ({}, WITH_BUDGET),
    "budgetAlertPercents": (WITH_BUDGET, {**WITH_BUDGET, "budgetAlertPercents": "[25, 50, 75, 100]"}),
    "collectedDataRetentionDays": ({}, {"collectedDataRetentionDays": "90"}),
    # A workspace stack's environment keys (tests/infra/test_stacks.py plays the shared stack's own).
    "stackKind": ({}, {"stackKind": "shared"}),
    "sharedStack": ({}, {"sharedStack": "shared"}),
    "registryRegions": ({}, {"registryRegions": '["westeurope", "northeurope"]'}),
    "registryConsumers": ({}, {"registryConsumers": '["dev=westeurope"]'}),
    "ciPrincipalId": ({}, {"ciPrincipalId": CI_PRINCIPAL_ID}),
}

# What the program must do with each change: apply it ("in place" or "replace" what it names), or
# refuse it with a message naming the key ("refused").
EXPECTED = {
    "location": "refused",
    "vmSize": "replace",
    "vmPriority": "replace",
    "endpointAuthMode": "refused",
    "publicNetworkAccess": "refused",
    "stackKind": "refused",
    # Keys of the shared stack, refused on a workspace stack.
    "registryRegions": "refused",
    "registryConsumers": "refused",
    "ciPrincipalId": "refused",
}


@functools.cache
def up(key: str) -> tuple[object, object | Exception]:
    before_config, after_config = CHANGES[key]
    before = run_program(before_config, stacks=shared_stacks())
    try:
        after = run_program(after_config, prior=before, stacks=shared_stacks())
    except pulumi.RunError as error:
        return before, error
    return before, after


def test_every_config_key_has_a_lifecycle_case():
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    assert set(CHANGES) == set(declared)


@pytest.mark.parametrize("key", sorted(CHANGES))
def test_changing_a_config_key_is_applied_replaced_or_refused_never_broken(key):
    before, after = up(key)
    expected = EXPECTED.get(key, "in place")
    if isinstance(after, Exception):
        assert expected == "refused", f"{key}: refused unexpectedly: {after}"
        message = str(after)
        assert f"config '{key}'" in message and "Traceback" not in message
        assert "pulumi config set" in message
        return
    assert expected != "refused", f"{key}: the program accepted a change Azure cannot make in place"
    assert rules.violations(before, after) == []
    changed = [step for step in rules.transition(before, after) if step.kind != "same"]
    assert changed, f"{key}: the change reached no resource"
    if expected == "replace":
        replaced = {step.typ for step in changed if step.kind == "replace"}
        assert rules.COMPUTE in replaced


def test_a_new_vm_size_is_a_new_cluster_created_before_the_old_one_goes_and_the_outputs_follow():
    before, after = up("vmSize")
    steps = {step.name: step for step in rules.transition(before, after)}
    assert steps["heartfailure-cluster"].kind == "replace"
    old_name = before.exports["compute_name"]
    assert after.exports["compute_name"] != old_name
    # Azure re-creates a cluster under its old name with the old size (azure-rest-api-specs issue 18889).
    assert not after.mocks.by_name()["heartfailure-cluster"].options["delete_before_replace"]
    assert after.mocks.one(rules.COMPUTE).inputs["properties"]["properties"]["vmSize"] == "Standard_D4s_v5"


def test_scale_settings_change_in_place_and_the_export_is_what_the_cluster_has():
    before, after = up("maxNodes")
    steps = {step.name: step for step in rules.transition(before, after)}
    assert steps["heartfailure-cluster"].kind == "update"
    assert steps["heartfailure-cluster"].changed == ["properties.properties.scaleSettings.maxNodeCount"]
    assert (before.exports["compute_max_nodes"], after.exports["compute_max_nodes"]) == (3, 6)


def test_no_config_change_ever_updates_the_endpoint():
    for key in CHANGES:
        before, after = up(key)
        if isinstance(after, Exception):
            continue
        steps = {step.name: step for step in rules.transition(before, after)}
        assert steps["heartfailure-endpoint"].kind == "same", key


def test_the_endpoint_refusal_says_how_to_change_it_without_cutting_traffic():
    _, error = up("endpointAuthMode")
    message = str(error)
    assert "az ml online-endpoint update --name hf-" in message
    assert "--set auth_mode=aad_token" in message and "pulumi refresh" in message
    assert "the stack has 'key'" in message


def test_after_the_endpoint_was_changed_outside_and_refreshed_the_config_change_goes_through():
    before = run_program({})
    endpoint = before.mocks.by_name()["heartfailure-endpoint"]
    endpoint.outputs["properties"]["authMode"] = "AADToken"  # `az ml online-endpoint update`, then `pulumi refresh`
    after = run_program({"endpointAuthMode": "aad_token"}, prior=before)
    assert after.exports["endpoint_auth_mode"] == "AADToken"
    assert rules.violations(before, after) == []


def test_purge_protection_can_be_turned_on_but_not_off():
    on = run_program({"keyVaultPurgeProtection": "true"})
    with pytest.raises(pulumi.RunError) as refused:
        run_program({"keyVaultPurgeProtection": "false"}, prior=on)
    assert "config 'keyVaultPurgeProtection'" in str(refused.value)
    assert "cannot switch purge protection off" in str(refused.value)
    still_on = run_program({"keyVaultPurgeProtection": "true"}, prior=on)
    assert rules.violations(on, still_on) == []


def test_a_vm_size_written_in_another_case_changes_nothing():
    before = run_program({"vmSize": "Standard_DS3_v2"})
    after = run_program({"vmSize": "STANDARD_DS3_V2"}, prior=before)
    assert {step.kind for step in rules.transition(before, after)} == {"same"}


def test_running_up_twice_with_the_same_config_changes_nothing():
    before = run_program({**WITH_BUDGET, "keyVaultPurgeProtection": "true", "tags": '["a=b"]'})
    after = run_program({**WITH_BUDGET, "keyVaultPurgeProtection": "true", "tags": '["a=b"]'}, prior=before)
    assert {step.kind for step in rules.transition(before, after)} == {"same"}


def test_destroy_then_up_draws_new_names_that_no_soft_deleted_resource_holds():
    first = run_program({}, generation=0)
    reserved = rules.reserved_after_destroy(first)
    assert reserved  # the vault, the workspace and the endpoint keep their names for a while
    again = run_program({}, generation=1)
    assert rules.azure_names(again).isdisjoint(reserved)


def test_the_stack_declares_no_role_assignment_azure_ml_already_makes():
    run = run_program({})
    assert rules.role_violations(run) == []
    # The model knows what Azure ML assigns: the endpoint's and the cluster's AcrPull, for one.
    roles = {role for _, _, role in rules.automatic_assignments(run)}
    assert rules.ACR_PULL in roles and rules.STORAGE_BLOB_DATA_READER in roles


def test_the_budget_stays_within_azures_notification_limit():
    run = run_program({**WITH_BUDGET, "budgetAlertPercents": "[25, 50, 75, 100]"})
    assert len(run.mocks.one(rules.BUDGET).inputs["notifications"]) == rules.MAX_BUDGET_NOTIFICATIONS
    assert rules.limit_violations(run) == []


def test_a_replaced_cluster_is_left_to_its_running_jobs_and_an_old_outputs_json_still_names_a_cluster():
    before, after = up("vmSize")
    old_name = before.exports["compute_name"]
    # Pulumi does not delete a retained resource it replaces (Pulumi docs, retainOnDelete): the cluster
    # a job was submitted to, and that an outputs.json saved before the change names, stays in Azure.
    assert after.mocks.by_name()["heartfailure-cluster"].options["retain_on_delete"] is True
    assert after.exports["compute_name"] != old_name
    # Nothing else is retained: a destroy or a replacement deletes every other resource.
    retained = {r.name for r in after.mocks.resources if r.options.get("retain_on_delete")}
    assert retained == {"heartfailure-cluster"}
