"""A refused change stops every change, however `pulumi up` is run.

Pulumi starts a resource's step as soon as the program registers it with resolved inputs, and
`pulumi up --yes --skip-preview` (the Automation API's `up`, which pulumi/actions runs) has no preview
that would fail first. So what matters is the order: the refusal must fire before any resource with a
changed input is registered. These tests record, under `pulumi.runtime.set_mocks`, every registration
(and whether the engine would find its inputs changed) and the moment the refusal is made.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pytest

from infra.builders import checks
from tests import fakes
from tests.fakes import run_program

SUFFIX = "heartfailure-suffix"
# What may be registered before a refusal: the component (no inputs, nothing in Azure) and the stack's
# suffix, whose keepers are the record and never change (ignore_changes).
FIRST = [("heartfailure", True), (SUFFIX, True)]
READS = {"heartfailure-previous", "heartfailure-shared"}


@dataclass
class Timeline:
    """("registered", logical name, inputs unchanged?) and ("refused", config key) in the order they happened."""

    events: list[tuple[str, str, bool]] = field(default_factory=list)

    def before_refusal(self) -> list[tuple[str, bool]]:
        names = []
        for kind, name, same in self.events:
            if kind == "refused":
                return names
            names.append((name, same))
        raise AssertionError(f"no refusal fired; registrations: {names}")

    def refused_keys(self) -> list[str]:
        return [name for kind, name, _ in self.events if kind == "refused"]

    def changed(self) -> list[str]:
        return [name for kind, name, same in self.events if kind == "registered" and not same]


@pytest.fixture
def timeline(monkeypatch: pytest.MonkeyPatch) -> Timeline:
    recorded = Timeline()
    new_resource = fakes.PulumiMocks.new_resource
    refuse = checks.refuse

    def registering(self: fakes.PulumiMocks, args: pulumi.runtime.MockResourceArgs):
        answer = new_resource(self, args)
        recorded.events.append(("registered", args.name, self.resources[-1].same_as_before))
        return answer

    def refusing(key: str, *args: object, **kwargs: object) -> checks.FixedAtCreation:
        recorded.events.append(("refused", key, True))
        return refuse(key, *args, **kwargs)

    monkeypatch.setattr(fakes.PulumiMocks, "new_resource", registering)
    monkeypatch.setattr(checks, "refuse", refusing)
    return recorded


TAGS = {"tags": '["owner=ml-team"]'}

# (the stack's config before, the refused config after, the key the refusal names). Each refused change
# comes with allowed ones (tags reach nearly every resource, maxNodes the cluster, vmSize its suffix), so
# that there is something a late refusal would let through.
REFUSED = {
    # A workspace stack run as the shared program would delete the workspace with every model in it.
    "stackKind": ({}, {"stackKind": "shared", **TAGS}, "stackKind"),
    "location": ({}, {"location": "eastus2", **TAGS, "vmSize": "Standard_D4s_v5"}, "location"),
    "endpointAuthMode": ({}, {"endpointAuthMode": "aad_token", **TAGS, "maxNodes": "6"}, "endpointAuthMode"),
    # The change that made a half-private stack: the workspace and the vault take publicNetworkAccess too.
    "publicNetworkAccess": ({}, {"publicNetworkAccess": "Disabled", **TAGS}, "publicNetworkAccess"),
    "keyVaultPurgeProtection": (
        {"keyVaultPurgeProtection": "true"},
        {"keyVaultPurgeProtection": "false", **TAGS, "logRetentionDays": "90"},
        "keyVaultPurgeProtection",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_refusal_fires_before_any_resource_with_a_changed_input_is_registered(case, timeline):
    before_config, after_config, key = REFUSED[case]
    before = run_program(before_config)
    timeline.events.clear()
    with pytest.raises(pulumi.RunError) as refused:
        run_program(after_config, prior=before)
    assert f"config '{key}'" in str(refused.value)
    assert timeline.refused_keys() == [key]
    # Reads of stack outputs (the shared program reads its own last ones) change nothing either.
    assert [event for event in timeline.before_refusal() if event[0] not in READS] == FIRST
    # And nothing with a changed input afterwards either: every other name waited for the checks.
    assert timeline.changed() == []


def test_the_same_allowed_changes_without_the_refused_one_do_reach_the_resources(timeline):
    # The control for the test above: its instrumentation sees changed inputs when there are some.
    before = run_program({})
    timeline.events.clear()
    run_program({**TAGS, "maxNodes": "6", "vmSize": "Standard_D4s_v5"}, prior=before)
    assert timeline.refused_keys() == []
    assert {"heartfailure-rg", "heartfailure-workspace", "heartfailure-cluster"} <= set(timeline.changed())


def test_a_stack_recorded_before_the_endpoint_settings_were_is_checked_against_the_endpoint_itself(timeline):
    before = run_program({})
    # A stack whose suffix was created when its keepers held the location alone.
    suffix = before.mocks.by_name()[SUFFIX]
    for state in (suffix.inputs, suffix.outputs):
        state["keepers"] = {"location": "westeurope"}
    timeline.events.clear()
    with pytest.raises(pulumi.RunError) as refused:
        run_program({"publicNetworkAccess": "Disabled", **TAGS}, prior=before)
    assert "config 'publicNetworkAccess' is 'Disabled', but the stack has 'Enabled'" in str(refused.value)
    assert timeline.before_refusal() == FIRST
    assert timeline.changed() == []
    # With the same config, such a stack reads its endpoint and goes through unchanged.
    again = run_program({}, prior=before)
    assert [token for token, _ in again.mocks.invokes] == ["azure-native:machinelearningservices:getOnlineEndpoint"]
    assert all(r.same_as_before for r in again.mocks.resources)


def test_an_unchanged_stack_reads_nothing_from_azure_before_it_goes_ahead():
    before = run_program({})
    after = run_program({}, prior=before)
    assert after.mocks.invokes == []
    assert all(r.same_as_before for r in after.mocks.resources)


def test_an_endpoint_setting_changed_outside_first_lets_the_config_follow_without_a_refusal(timeline):
    before = run_program({})
    endpoint = before.mocks.by_name()["heartfailure-endpoint"]
    endpoint.outputs["properties"]["publicNetworkAccess"] = "Disabled"  # az ml online-endpoint update
    timeline.events.clear()
    after = run_program({"publicNetworkAccess": "Disabled"}, prior=before)
    assert timeline.refused_keys() == []
    assert after.mocks.one("azure-native:machinelearningservices:Workspace").inputs["publicNetworkAccess"] == (
        "Disabled"
    )


def test_purge_protection_switched_on_after_creation_still_cannot_be_switched_off():
    # The record says "off" (the vault was created without it); the vault reports it on: the second line.
    created = run_program({})
    on = run_program({"keyVaultPurgeProtection": "true"}, prior=created)
    with pytest.raises(pulumi.RunError) as refused:
        run_program({"keyVaultPurgeProtection": "false"}, prior=on)
    assert "cannot switch purge protection off" in str(refused.value)
