"""The identity of every resource the program registers, pinned.

Pulumi keys a resource's state by its URN: its type, its logical name (the first argument) and the
types of its parents. A refactor that renames a resource or moves it under another parent gives it a
new URN, and `pulumi up` on a real stack would then create the new one and delete the old: the
workspace, its registry and its storage included. This test pins the full set, with every optional
resource switched on, so any such change fails here first.
"""

from __future__ import annotations

import pytest

from tests import fakes

COMPONENT = "heartfailure:platform:MlPlatform"
STACK = "pulumi:pulumi:Stack"

# (type, logical name, logical name of the parent); the stack is the component's parent. (Whether the
# mock monitor sees the stack itself registered depends on the tests run before, so it is left out.)
EXPECTED = {
    (COMPONENT, "heartfailure", "azureml-heart-failure-dev"),
    ("random:index/randomString:RandomString", "heartfailure-suffix", "heartfailure"),
    ("random:index/randomString:RandomString", "heartfailure-cluster-suffix", "heartfailure"),
    ("azure-native:resources:ResourceGroup", "heartfailure-rg", "heartfailure"),
    ("azure-native:storage:StorageAccount", "heartfailure-storage", "heartfailure"),
    ("azure-native:keyvault:Vault", "heartfailure-kv", "heartfailure"),
    ("azure-native:operationalinsights:Workspace", "heartfailure-logs", "heartfailure"),
    ("azure-native:applicationinsights:Component", "heartfailure-appi", "heartfailure"),
    ("azure-native:containerregistry:Registry", "heartfailure-acr", "heartfailure"),
    ("azure-native:machinelearningservices:Workspace", "heartfailure-workspace", "heartfailure"),
    ("azure-native:storage:ManagementPolicy", "heartfailure-collected-data-retention", "heartfailure"),
    ("azure-native:machinelearningservices:Compute", "heartfailure-cluster", "heartfailure"),
    ("azure-native:machinelearningservices:OnlineEndpoint", "heartfailure-endpoint", "heartfailure"),
    ("azure-native:consumption:Budget", "heartfailure-budget", "heartfailure"),
}

# Every optional resource on: today only the budget is optional.
ALL_ON = {"budgetEmails": '["ml-team@example.com"]'}


class _ParentRecordingMonitor(fakes.RecordingMonitor):
    """The project's recording monitor, also keeping each registration's type, name, parent URN and URN."""

    registrations: list[tuple[str, str, str, str]]

    def __init__(self, mocks: fakes.PulumiMocks) -> None:
        super().__init__(mocks)
        self.registrations = []
        _ParentRecordingMonitor.last = self

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        self.registrations.append((request.type, request.name, request.parent, response.urn))
        return response


@pytest.fixture(scope="module")
def registrations():
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fakes, "RecordingMonitor", _ParentRecordingMonitor)
        fakes.run_program(ALL_ON)
    return _ParentRecordingMonitor.last.registrations


def test_every_resource_keeps_its_type_logical_name_and_parent(registrations):
    # A URN ends with "::<logical name>".
    found = [
        (typ, name, parent.rsplit("::", 1)[-1] if parent else None)
        for typ, name, parent, _ in registrations
        if typ != STACK
    ]
    assert len(found) == len(set(found)), "a resource was registered twice"
    assert set(found) == EXPECTED


def test_the_urns_a_real_stack_has_stay_the_same(registrations):
    # The URN is what the state is keyed by; it spells the parent's type before the child's, so a
    # component renamed or re-typed moves every child too. (The mock monitor spells the component's
    # own URN with the stack's type in front, which the engine does not; its children are spelled alike.)
    urns = {urn for *_, urn in registrations}
    prefix = "urn:pulumi:dev::azureml-heart-failure::"
    children = {(typ, name) for typ, name, parent in EXPECTED if parent == "heartfailure"}
    assert len(children) == len(EXPECTED) - 1
    for typ, name in children:
        assert f"{prefix}{COMPONENT}${typ}::{name}" in urns, name
