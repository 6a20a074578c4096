"""The Pulumi program under mocks: what `pulumi up` would create, with what properties."""

import pulumi
import pytest

from infra.environments import WORKSPACE as WORKSPACE_STACK
from infra.naming import invalid_names
from infra.outputs import keys_of
from tests.azure_rules import ACR, APPI, BUDGET, COMPUTE, ENDPOINT, LOGS, RG, ROLE, STORAGE, VAULT, WORKSPACE
from tests.fakes import SUBSCRIPTION_ID, run_program

TAGGABLE = (RG, STORAGE, VAULT, LOGS, APPI, ACR, WORKSPACE, COMPUTE, ENDPOINT)


@pytest.fixture(scope="module")
def dev():
    return run_program(random_suffix="k3x9q2")


def test_every_resource_is_created_once(dev):
    for typ in TAGGABLE:
        dev.mocks.one(typ)
    # Azure ML grants every system-assigned identity its roles itself; declaring one again would
    # fail with RoleAssignmentExists (tests/azure_rules.py checks the whole rule).
    assert dev.mocks.of_type(ROLE) == []


def test_storage_is_locked_down(dev):
    sa = dev.mocks.one(STORAGE).inputs
    assert sa["kind"] == "StorageV2"
    assert sa["enableHttpsTrafficOnly"] is True
    assert sa["minimumTlsVersion"] == "TLS1_2"
    assert sa["allowBlobPublicAccess"] is False


def test_key_vault_uses_rbac_and_soft_delete_without_purge_protection_on_dev(dev):
    props = dev.mocks.one(VAULT).inputs["properties"]
    assert props["enableRbacAuthorization"] is True
    assert props["enableSoftDelete"] is True
    # Azure rejects an explicit false: "off" must mean the property is absent.
    assert "enablePurgeProtection" not in props
    assert props["softDeleteRetentionInDays"] == 90
    assert "accessPolicies" not in props


def test_purge_protection_comes_from_config_and_the_retention_does_not_follow_it():
    props = run_program({"keyVaultPurgeProtection": "true"}).mocks.one(VAULT).inputs["properties"]
    assert props["enablePurgeProtection"] is True
    # Azure refuses to change the retention once set: it must not move with the switch.
    assert props["softDeleteRetentionInDays"] == 90


def test_app_insights_is_workspace_based(dev):
    appi = dev.mocks.one(APPI).inputs
    logs = dev.mocks.one(LOGS)
    assert appi["ingestionMode"] == "LogAnalytics"
    assert appi["workspaceResourceId"].endswith("/" + logs.outputs["name"])


def test_registry_has_no_admin_user(dev):
    assert dev.mocks.one(ACR).inputs["adminUserEnabled"] is False


def test_workspace_is_wired_to_its_dependencies(dev):
    ws = dev.mocks.one(WORKSPACE).inputs
    assert ws["identity"]["type"] == "SystemAssigned"
    for key, typ in (
        ("storageAccount", STORAGE),
        ("keyVault", VAULT),
        ("applicationInsights", APPI),
        ("containerRegistry", ACR),
    ):
        dependency_name = dev.mocks.one(typ).outputs["name"]
        assert ws[key].startswith(f"/subscriptions/{SUBSCRIPTION_ID}/") and ws[key].endswith("/" + dependency_name)
    assert ws["publicNetworkAccess"] == "Enabled"
    assert "dev" in ws["friendlyName"]
    assert ws["description"]


def test_cluster_scales_to_zero_without_ssh_or_local_auth(dev):
    compute = dev.mocks.one(COMPUTE).inputs
    workspace_name = dev.mocks.one(WORKSPACE).outputs["name"]
    assert compute["workspaceName"] == workspace_name
    # Pulls the images it builds from the registry (admin user off) with this identity.
    assert compute["identity"]["type"] == "SystemAssigned"
    props = compute["properties"]
    assert props["computeType"] == "AmlCompute"
    assert props["disableLocalAuth"] is True
    aml = props["properties"]
    assert aml["vmSize"] == "Standard_DS3_v2"
    assert aml["vmPriority"] == "Dedicated"
    assert aml["remoteLoginPortPublicAccess"] == "Disabled"
    scale = aml["scaleSettings"]
    assert (int(scale["minNodeCount"]), int(scale["maxNodeCount"])) == (0, 3)
    assert scale["nodeIdleTimeBeforeScaleDown"] == "PT120S"


def test_cluster_settings_come_from_config():
    aml = (
        run_program(
            {
                "vmSize": "STANDARD_D4S_V5",
                "vmPriority": "LowPriority",
                "maxNodes": "5",
                "idleSecondsBeforeScaleDown": "600",
            }
        )
        .mocks.one(COMPUTE)
        .inputs["properties"]["properties"]
    )
    assert (aml["vmSize"], aml["vmPriority"]) == ("Standard_D4s_v5", "LowPriority")
    assert int(aml["scaleSettings"]["maxNodeCount"]) == 5
    assert aml["scaleSettings"]["nodeIdleTimeBeforeScaleDown"] == "PT600S"


def test_endpoint_uses_key_auth_and_identity_and_leaves_traffic_to_the_jobs(dev):
    endpoint = dev.mocks.one(ENDPOINT).inputs
    assert endpoint["workspaceName"] == dev.mocks.one(WORKSPACE).outputs["name"]
    assert endpoint["identity"]["type"] == "SystemAssigned"
    assert endpoint["properties"]["authMode"] == "Key"
    assert "traffic" not in endpoint["properties"]


def test_the_program_never_updates_the_endpoint_and_ignores_nothing_else_but_fixed_switches(dev):
    # Any PUT of the endpoint without its traffic resets the traffic: the program sends none.
    assert set(dev.ignore_changes["heartfailure-endpoint"]) == {"properties", "tags", "identity"}
    assert dev.ignore_changes["heartfailure-suffix"] == ["keepers"]
    assert dev.ignore_changes["heartfailure-kv"] == [
        "properties.softDeleteRetentionInDays",
        "properties.enablePurgeProtection",
    ]
    others = {
        name: changes
        for name, changes in dev.ignore_changes.items()
        if name not in ("heartfailure-endpoint", "heartfailure-suffix", "heartfailure-kv", "heartfailure-budget")
    }
    assert not any(others.values())


def test_aad_token_auth_from_config():
    endpoint = run_program({"endpointAuthMode": "aad_token"}).mocks.one(ENDPOINT).inputs
    assert endpoint["properties"]["authMode"] == "AADToken"


def test_every_taggable_resource_carries_the_tags():
    run = run_program({"tags": '["owner=ml-team"]'}, stack="prod")
    own = {"project": "azureml-heart-failure", "stack": "prod", "managed-by": "pulumi"}
    for typ in TAGGABLE:
        tags = run.mocks.one(typ).inputs["tags"]
        # The cluster and the endpoint are never updated in place, so they carry only the tags
        # that cannot change for a stack.
        assert tags == (own if typ in (COMPUTE, ENDPOINT) else {**own, "owner": "ml-team"}), typ


@pytest.mark.parametrize(
    ("project", "stack"),
    [
        ("azureml-heart-failure", "dev"),
        ("x" * 100, "Feature.Branch_With-Odd.Chars-and-a-very-long-name-" + "z" * 40),
        ("p", "1"),
    ],
)
def test_names_are_valid_for_odd_projects_and_stacks(project, stack):
    run = run_program(project=project, stack=stack)
    names = {
        "resource_group": run.mocks.one(RG).outputs["name"],
        "storage_account": run.mocks.one(STORAGE).outputs["name"],
        "key_vault": run.mocks.one(VAULT).outputs["name"],
        "log_analytics": run.mocks.one(LOGS).outputs["name"],
        "app_insights": run.mocks.one(APPI).outputs["name"],
        "container_registry": run.mocks.one(ACR).outputs["name"],
        "ml_workspace": run.mocks.one(WORKSPACE).outputs["name"],
        "compute_cluster": run.mocks.one(COMPUTE).outputs["name"],
        "online_endpoint": run.mocks.one(ENDPOINT).outputs["name"],
    }
    assert invalid_names(names) == []


def test_two_stacks_get_different_globally_unique_names():
    first = run_program(stack="dev", random_suffix="aaaaaa").mocks
    second = run_program(stack="dev2", random_suffix="bbbbbb").mocks
    for typ in (STORAGE, VAULT, ACR, ENDPOINT):
        assert first.one(typ).outputs["name"] != second.one(typ).outputs["name"]


def test_the_random_suffixes_are_lowercase_alphanumeric(dev):
    for suffix in dev.mocks.of_type("random:index/randomString:RandomString"):
        flags = suffix.inputs
        assert (flags["upper"], flags["special"], flags["lower"], flags["numeric"]) == (False, False, True, True)


def test_outputs_give_the_jobs_what_they_need_and_no_secret(dev):
    out = dev.exports
    # Exactly the workspace stack's keys of the one contract (infra/outputs.py), which jobs/ reads too.
    assert list(out) == list(keys_of(WORKSPACE_STACK))
    # A stack without `sharedStack` has no registry (tests/infra/test_stacks.py covers the ones with one).
    assert (out["registry_name"], out["registry_id"], out["registry_regions"]) == (None, None, None)
    assert out["subscription_id"] == SUBSCRIPTION_ID
    assert out["workspace_name"] == dev.mocks.one(WORKSPACE).outputs["name"]
    assert out["compute_name"] == dev.mocks.one(COMPUTE).outputs["name"]
    assert out["endpoint_name"] == dev.mocks.one(ENDPOINT).outputs["name"]
    assert out["scoring_uri"].startswith(f"https://{out['endpoint_name']}.")
    assert out["studio_url"].startswith("https://ml.azure.com/?wsid=/subscriptions/")
    assert out["compute_max_nodes"] == 3
    assert out["endpoint_auth_mode"] == "Key"
    assert out["location"] == "westeurope"
    assert not any("key" in name.lower() and "auth" not in name.lower() for name in out)


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ({"maxNodes": "1", "minNodes": "2"}, "config 'maxNodes' is 1"),
        ({"vmSize": "huge"}, "config 'vmSize' is 'huge'"),
        ({"idleSecondsBeforeScaleDown": "-1"}, "config 'idleSecondsBeforeScaleDown' is '-1'"),
        ({"endpointAuthMode": "none"}, "config 'endpointAuthMode' is 'none'"),
    ],
)
def test_bad_config_stops_the_program_with_a_clean_message(config, fragment):
    with pytest.raises(pulumi.RunError) as caught:
        run_program(config)
    assert fragment in str(caught.value)
    assert "Traceback" not in str(caught.value)


def test_no_budget_without_emails(dev):
    assert dev.mocks.of_type(BUDGET) == []


def test_a_monthly_budget_on_the_resource_group_mails_the_configured_people():
    run = run_program(
        {
            "budgetEmails": '["ml-team@example.com", "finance@example.com"]',
            "budgetAmount": "250",
            "budgetAlertPercents": "[50, 90]",
        }
    )
    budget = run.mocks.one(BUDGET)
    rg = run.mocks.one(RG).outputs["name"]
    assert budget.inputs["scope"].endswith("/" + rg)
    assert budget.inputs["amount"] == 250
    assert budget.inputs["timeGrain"] == "Monthly"
    assert budget.inputs["timePeriod"]["startDate"].endswith("-01T00:00:00Z")
    alerts = budget.inputs["notifications"]
    assert {(n["thresholdType"], n["threshold"]) for n in alerts.values()} == {
        ("Actual", 50),
        ("Actual", 90),
        ("Forecasted", 100),
    }
    assert all(n["contactEmails"] == ["ml-team@example.com", "finance@example.com"] for n in alerts.values())
    assert run.ignore_changes["heartfailure-budget"] == ["timePeriod"]


def test_the_providers_region_key_places_every_resource_and_a_typo_stops_the_preview():
    run = run_program({"azure-native:location": "eastus"})
    assert run.exports["location"] == "eastus"
    for typ in TAGGABLE:
        assert run.mocks.one(typ).inputs["location"] == "eastus", typ
    with pytest.raises(pulumi.RunError) as caught:
        run_program({"location": "westeurpoe"})
    assert "did you mean westeurope?" in str(caught.value) and "Traceback" not in str(caught.value)
    with pytest.raises(pulumi.RunError) as caught:
        run_program({"location": "westeurope", "azure-native:location": "eastus"})
    assert "config 'azure-native:location' is 'eastus'" in str(caught.value)
