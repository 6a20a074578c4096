"""The retention of collected production data: a lifecycle rule on the workspace's datastore container."""

from __future__ import annotations

import pulumi
import pytest

from infra.settings import ConfigError, load_settings
from tests import azure_rules as rules
from tests.fakes import run_program

POLICY = "azure-native:storage:ManagementPolicy"
STORAGE = "azure-native:storage:StorageAccount"
WORKSPACE = "azure-native:machinelearningservices:Workspace"


def _rule(run):
    policy = run.mocks.one(POLICY)
    [rule] = policy.inputs["policy"]["rules"]
    return policy, rule


def test_collected_data_is_deleted_after_the_default_30_days_in_the_collector_folder_only():
    run = run_program()
    policy, rule = _rule(run)
    assert policy.inputs["managementPolicyName"] == "default"
    assert policy.inputs["accountName"] == run.mocks.one(STORAGE).inputs["accountName"]
    assert rule["enabled"] is True and rule["type"] == "Lifecycle"
    assert rule["definition"]["actions"]["baseBlob"]["delete"] == {"daysAfterModificationGreaterThan": 30}
    workspace_id = run.mocks.one(WORKSPACE).outputs["workspaceId"]
    # Only what the data collector writes: models, job outputs and data assets share the container.
    assert rule["definition"]["filters"]["prefixMatch"] == [f"azureml-blobstore-{workspace_id}/modelDataCollector/"]
    assert set(rule["definition"]["filters"]["blobTypes"]) == {"blockBlob", "appendBlob"}
    assert rules.limit_violations(run) == []


def test_the_retention_comes_from_config():
    _, rule = _rule(run_program({"collectedDataRetentionDays": "365"}))
    assert rule["definition"]["actions"]["baseBlob"]["delete"]["daysAfterModificationGreaterThan"] == 365


@pytest.mark.parametrize("value", ["0", "-5", "1.5", "36501", "a month"])
def test_a_retention_azure_refuses_or_that_keeps_nothing_is_refused_with_the_key(value):
    with pytest.raises(ConfigError) as error:
        load_settings({"collectedDataRetentionDays": value}.get, "p", "dev")
    message = str(error.value)
    assert f"config 'collectedDataRetentionDays' is {value!r}" in message
    assert "from 1 to 36500" in message and "pulumi config set collectedDataRetentionDays" in message


def test_the_program_stops_at_preview_on_a_bad_retention():
    with pytest.raises(pulumi.RunError, match="collectedDataRetentionDays"):
        run_program({"collectedDataRetentionDays": "0"})


def test_the_rules_model_catches_a_policy_azure_would_refuse():
    run = run_program()
    policy, rule = _rule(run)
    policy.inputs["managementPolicyName"] = "retention"
    rule["definition"]["actions"]["baseBlob"]["delete"]["daysAfterModificationGreaterThan"] = 2.5
    found = rules.limit_violations(run)
    assert any("its name must be 'default'" in v for v in found)
    assert any("2.5 days is not a whole number" in v for v in found)
