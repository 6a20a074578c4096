"""The rules model itself: each rule catches the kind of change it is there for."""

from __future__ import annotations

import copy

import pytest

from tests import azure_rules as rules
from tests.fakes import Registered, run_program


@pytest.fixture(scope="module")
def base():
    return run_program({"budgetEmails": '["ml-team@example.com"]'})


def changed(base, name: str, edit) -> object:
    """`base` played again with one resource's inputs edited by `edit(inputs)`."""
    after = copy.deepcopy(base)
    res = after.mocks.by_name()[name]
    edit(res.inputs)
    res.effective = copy.deepcopy(res.inputs)
    return after


def test_the_program_as_it_is_breaks_no_rule_when_run_again(base):
    again = run_program({"budgetEmails": '["ml-team@example.com"]'}, prior=base)
    assert rules.violations(base, again) == []


def test_an_endpoint_update_without_traffic_cuts_traffic(base):
    after = changed(base, "heartfailure-endpoint", lambda i: i["tags"].update(owner="x"))
    assert any("cuts the endpoint's live traffic" in v for v in rules.violations(base, after))


def test_a_new_vm_size_in_place_is_silently_ignored(base):
    after = changed(
        base, "heartfailure-cluster", lambda i: i["properties"]["properties"].update(vmSize="Standard_D4s_v5")
    )
    after.mocks.by_name()["heartfailure-cluster"].options["replace_on_changes"] = []  # as the program had it
    assert any("silently ignores a change of properties.properties.vmSize" in v for v in rules.violations(base, after))


def test_scale_settings_in_place_are_fine(base):
    after = changed(
        base, "heartfailure-cluster", lambda i: i["properties"]["properties"]["scaleSettings"].update(maxNodeCount=5)
    )
    assert rules.violations(base, after) == []


def test_a_new_vault_retention_is_rejected(base):
    after = changed(base, "heartfailure-kv", lambda i: i["properties"].update(softDeleteRetentionInDays=7))
    assert any("rejects a change of properties.softDeleteRetentionInDays" in v for v in rules.violations(base, after))


def test_a_workspace_cannot_change_its_storage(base):
    after = changed(base, "heartfailure-workspace", lambda i: i.update(storageAccount=i["storageAccount"] + "2"))
    assert any("rejects a change of storageAccount" in v for v in rules.violations(base, after))


def test_replacing_the_key_vault_loses_its_secrets(base):
    after = changed(base, "heartfailure-kv", lambda i: i.update(vaultName="kv-other"))
    assert any("loses its secrets" in v for v in rules.violations(base, after))


def test_a_replacement_under_the_same_name_needs_delete_before_replace(base):
    after = changed(
        base, "heartfailure-cluster", lambda i: i["properties"]["properties"].update(vmSize="Standard_D4s_v5")
    )
    after.mocks.by_name()["heartfailure-cluster"].options["replace_on_changes"] = ["properties.properties.vmSize"]
    assert any("same name without delete_before_replace" in v for v in rules.violations(base, after))


def test_a_role_assignment_azure_ml_already_makes_exists(base):
    after = copy.deepcopy(base)
    endpoint = after.mocks.by_name()["heartfailure-endpoint"]
    registry = after.mocks.by_name()["heartfailure-acr"]
    after.mocks.resources.append(
        Registered(
            rules.ROLE,
            "endpoint-acr-pull",
            {
                "scope": registry.outputs["__id"],
                "principalId": endpoint.outputs["identity"]["principalId"],
                "roleDefinitionId": (
                    f"/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/{rules.ACR_PULL}"
                ),
            },
            {},
        )
    )
    assert any("RoleAssignmentExists" in v for v in rules.role_violations(after))


def test_more_than_five_budget_notifications_are_refused(base):
    after = changed(
        base,
        "heartfailure-budget",
        lambda i: i["notifications"].update({f"extra-{n}": dict(i["notifications"]["forecast-100"]) for n in range(4)}),
    )
    assert any("Azure allows 5" in v for v in rules.limit_violations(after))


def test_purge_protection_stays_on_after_a_put_without_it():
    kept = rules.stored_after_put(
        rules.VAULT, {"properties": {"enablePurgeProtection": True}}, {"properties": {"softDeleteRetentionInDays": 90}}
    )
    assert kept["properties"] == {"softDeleteRetentionInDays": 90, "enablePurgeProtection": True}
