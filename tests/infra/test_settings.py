import json
from pathlib import Path

import pytest
import yaml

from infra.environments import load_config
from infra.settings import DEFAULTS, ConfigError, load_settings

ROOT = Path(__file__).resolve().parents[2]


def load(**config):
    return load_settings(lambda key: config.get(key), "proj", "dev")


def test_defaults_are_the_lesson_adapted_for_cost():
    s = load()
    assert (s.vm_size, s.min_nodes, s.max_nodes, s.idle_seconds_before_scale_down) == ("Standard_DS3_v2", 0, 3, 120)
    assert s.endpoint_auth_mode == "Key"
    assert s.key_vault_purge_protection is False
    assert s.tags == {"project": "proj", "stack": "dev", "managed-by": "pulumi"}


def test_defaults_match_the_ones_pulumi_yaml_declares():
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    assert set(declared) == set(DEFAULTS)
    # A project default for `location` would reach the program as if set, and silently override the
    # provider's `azure-native:location`; its default is the program's alone.
    assert "default" not in declared.pop("location")
    for key, spec in declared.items():
        default = spec["default"]
        if isinstance(default, (dict, list)):
            assert json.loads(DEFAULTS[key]) == default, key
        else:
            assert (str(default).lower() if isinstance(default, bool) else str(default)) == DEFAULTS[key], key


def test_dev_stack_config_is_valid():
    stack = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())["config"]
    values = {key.split(":", 1)[1]: value for key, value in stack.items()}
    raw = {
        k: json.dumps(v) if isinstance(v, (dict, list)) else str(v).lower() if isinstance(v, bool) else str(v)
        for k, v in values.items()
    }
    s = load_settings(raw.get, "azureml-heart-failure", "dev")
    assert s.tags["environment"] == "dev"


@pytest.mark.parametrize(
    ("config", "key", "allowed"),
    [
        ({"minNodes": "2", "maxNodes": "1"}, "maxNodes", "at least minNodes (2)"),
        ({"vmSize": "big"}, "vmSize", "Azure VM size name"),
        ({"vmSize": "Standard DS3"}, "vmSize", "Azure VM size name"),
        ({"idleSecondsBeforeScaleDown": "-5"}, "idleSecondsBeforeScaleDown", "from 60"),
        ({"idleSecondsBeforeScaleDown": "soon"}, "idleSecondsBeforeScaleDown", "whole number"),
        ({"endpointAuthMode": "password"}, "endpointAuthMode", "key, aad_token"),
        ({"vmPriority": "Spot"}, "vmPriority", "Dedicated, LowPriority"),
        ({"publicNetworkAccess": "maybe"}, "publicNetworkAccess", "Enabled, Disabled"),
        ({"keyVaultPurgeProtection": "yes"}, "keyVaultPurgeProtection", "true or false"),
        ({"maxNodes": "500"}, "maxNodes", "from 1 to 20"),
        ({"logRetentionDays": "45"}, "logRetentionDays", "30, 60, 90"),
        ({"location": "West Europe!"}, "location", "Azure region"),
        ({"tags": '{"owner": "x"}'}, "tags", "JSON array"),
        ({"tags": "[1, 2]"}, "tags", "name=value"),
        ({"tags": '["owner"]'}, "tags", "name=value"),
        ({"tags": '["a/b=x"]'}, "tags", "tag name 'a/b'"),
        ({"budgetAmount": "0"}, "budgetAmount", "from 1 to 1000000"),
        ({"budgetEmails": '["not-an-email"]'}, "budgetEmails", "is not an email address"),
        ({"budgetEmails": "ops@example.com"}, "budgetEmails", "JSON array"),
        ({"budgetAlertPercents": "[]"}, "budgetAlertPercents", "non-empty array"),
        # Azure allows five notifications per budget, and the forecast alert is always one of them.
        ({"budgetAlertPercents": "[20, 40, 60, 80, 100]"}, "budgetAlertPercents", "at most 4 percentages"),
        # Two alerts at one percentage would silently be one notification.
        ({"budgetAlertPercents": "[80, 80]"}, "budgetAlertPercents", "each percentage once (80 is repeated)"),
        ({"vmSize": "Standard_DS3_v2!"}, "vmSize", "Azure VM size name"),
    ],
)
def test_bad_config_names_the_key_the_value_and_what_is_allowed(config, key, allowed):
    with pytest.raises(ConfigError) as caught:
        load(**config)
    message = str(caught.value)
    assert f"config '{key}'" in message
    assert allowed in message
    assert f"pulumi config set {key}" in message


def test_low_priority_and_aad_token_are_accepted():
    s = load(vmPriority="LowPriority", endpointAuthMode="aad_token", tags='["owner=ml-team", "note=a=b"]')
    assert (s.vm_priority, s.endpoint_auth_mode) == ("LowPriority", "AADToken")
    assert s.tags["owner"] == "ml-team"
    assert s.tags["note"] == "a=b"


def test_config_tags_cannot_override_the_ones_we_own():
    s = load(tags='["managed-by=someone", "stack=other"]')
    assert s.tags["managed-by"] == "pulumi"
    assert s.tags["stack"] == "dev"


def test_pulumi_yaml_declares_only_types_pulumi_accepts():
    # Pulumi's project schema allows string, integer, boolean and array (with items); not object.
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    for key, spec in declared.items():
        assert spec["type"] in ("string", "integer", "boolean", "array"), key
        assert spec["description"], key
        if spec["type"] == "array":
            assert spec["items"]["type"] in ("string", "integer", "boolean"), key
            assert isinstance(spec["default"], list), key


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("STANDARD_DS3_V2", "Standard_DS3_v2"),  # the spelling of many samples
        ("standard_ds3_v2", "Standard_DS3_v2"),
        ("Standard_DS3_V2", "Standard_DS3_v2"),
        (" Standard_D4s_v5 ", "Standard_D4s_v5"),
        ("STANDARD_NC24ADS_A100_V4", "Standard_NC24ads_A100_v4"),
        ("standard_m64-32ms", "Standard_M64-32ms"),
        ("Standard_D2_v2_PROMO", "Standard_D2_v2_Promo"),
        ("standard_b2s", "Standard_B2s"),
    ],
)
def test_vm_sizes_are_read_in_any_case_and_kept_in_azures_spelling(written, canonical):
    assert load(vmSize=written).vm_size == canonical


def test_four_actual_cost_alerts_fit_next_to_the_forecast_one():
    assert load(budgetAlertPercents="[25, 50, 75, 100]").budget_alert_percents == (25, 50, 75, 100)


def test_a_region_typo_fails_with_the_region_it_probably_meant():
    with pytest.raises(ConfigError) as caught:
        load(location="westeurpoe")
    message = str(caught.value)
    assert "config 'location' is 'westeurpoe'" in message
    assert "did you mean westeurope?" in message and "pulumi config set location" in message


@pytest.mark.parametrize("written", ["westeurope", "West Europe", "WESTEUROPE", " swedencentral "])
def test_known_regions_are_read_in_azures_programmatic_spelling(written):
    assert load(location=written).location == written.strip().lower().replace(" ", "")


def test_the_providers_own_region_key_is_honoured_when_the_project_key_is_not_set():
    assert load_settings(lambda key: None, "proj", "dev", provider_location="eastus").location == "eastus"
    assert load_settings(lambda key: None, "proj", "dev").location == "westeurope"


def test_both_region_keys_must_agree_and_the_message_names_both():
    same = load_settings({"location": "East US"}.get, "proj", "dev", provider_location="eastus")
    assert same.location == "eastus"
    with pytest.raises(ConfigError) as caught:
        load_settings({"location": "westeurope"}.get, "proj", "dev", provider_location="eastus")
    message = str(caught.value)
    assert "config 'location' is 'westeurope' but config 'azure-native:location' is 'eastus'" in message
    assert "pulumi config rm azure-native:location" in message


def test_a_typo_in_the_providers_region_key_names_that_key():
    with pytest.raises(ConfigError) as caught:
        load_settings(lambda key: None, "proj", "dev", provider_location="eastu2")
    assert "config 'azure-native:location' is 'eastu2'" in str(caught.value)
    assert "did you mean eastus2?" in str(caught.value)


def test_every_bad_config_value_is_listed_at_once():
    # One `pulumi preview` names every key to fix, not only the first (jobs/ has always listed all).
    config = {"vmSize": "big", "maxNodes": "0", "endpointAuthMode": "password", "budgetEmails": "nobody"}
    with pytest.raises(ConfigError) as error:
        load_settings(config.get, "heart-failure", "dev")
    message = str(error.value)
    assert message.startswith("invalid config:")
    for key in config:
        assert f"config '{key}' is" in message, key
    assert len(message.splitlines()) == 1 + len(config)


def test_one_bad_value_reads_as_before():
    with pytest.raises(ConfigError) as error:
        load_settings({"minNodes": "x"}.get, "heart-failure", "dev")
    assert str(error.value).startswith("config 'minNodes' is 'x': ")


def _problems(config: dict[str, str], stack: str = "dev") -> list[str]:
    """The lines of the one ConfigError load_config raises for `config` (the Pulumi program's own call)."""
    with pytest.raises(ConfigError) as error:
        load_config(config.get, "heart-failure", stack)
    message = str(error.value)
    lines = message.splitlines()
    texts = [problem.text for problem in error.value.problems]
    assert texts == (lines[1:] if lines[0] == "invalid config:" else [message])
    assert all(problem.text.startswith(f"config '{problem.key}'") for problem in error.value.problems)
    return texts


def test_a_settings_problem_and_an_environment_problem_come_out_in_one_error():
    problems = _problems({"maxNodes": "0", "sharedStack": "no such/stack/at all/here"})
    assert [p.split(" is ")[0] for p in problems] == ["config 'maxNodes'", "config 'sharedStack'"]


def test_every_environment_problem_is_listed_at_once():
    config = {
        "stackKind": "shared",
        "vmSize": "Standard_D4s_v5",
        "budgetEmails": '["a@example.com"]',
        "registryRegions": '["westeurope", "westeurope"]',
        "ciPrincipalId": "ci-bot",
        "logRetentionDays": "31",
    }
    problems = _problems(config, stack="shared")
    for key in ("vmSize", "budgetEmails", "registryRegions", "ciPrincipalId", "logRetentionDays"):
        assert sum(f"config '{key}'" in p for p in problems) == 1, (key, problems)
    assert len(problems) == 5
    # A workspace key on the shared stack is refused for being there, not also for its value (31 days is not a
    # retention Log Analytics takes, but the shared stack has no Log Analytics).
    (retention,) = [p for p in problems if "'logRetentionDays'" in p]
    assert "only a workspace stack reads it" in retention


def test_a_wrong_region_is_listed_once_and_not_again_as_a_registry_region():
    # registryRegions must include the stack's region; with that region wrong, saying so would be a second,
    # misleading line about the same mistake.
    problems = _problems({"stackKind": "shared", "location": "westeuropa", "registryRegions": '["northeurope"]'})
    assert len(problems) == 1 and problems[0].startswith("config 'location' is 'westeuropa'"), problems


def test_a_consumer_is_checked_for_its_form_even_when_the_regions_are_wrong():
    config = {"stackKind": "shared", "registryRegions": "westeurope", "registryConsumers": '["dev"]'}
    problems = _problems(config, stack="shared")
    assert [p.split(" is ")[0] for p in problems] == ["config 'registryRegions'", "config 'registryConsumers'"]


def test_a_good_config_gives_the_settings_and_the_environment():
    settings, environment = load_config({"sharedStack": "shared"}.get, "heart-failure", "dev")
    assert settings.stack == "dev" and environment.shared_stack == "shared"


def test_a_bad_node_count_is_not_compared_as_its_default():
    """maxNodes 'abc' is reported as itself; no second message about a maxNodes of 3 the user never wrote."""
    with pytest.raises(ConfigError) as error:
        load_settings({"minNodes": "5", "maxNodes": "abc"}.get, "heart-failure", "dev")
    message = str(error.value)
    assert "config 'maxNodes' is 'abc'" in message and "at least minNodes" not in message
