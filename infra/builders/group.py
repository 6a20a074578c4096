"""The stack's random suffix (and so its Azure names) and its resource group."""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_random as random
from pulumi_azure_native import resources

from infra.builders import checks
from infra.builders.scope import Scope
from infra.environments import WORKSPACE
from infra.naming import SUFFIX_LENGTH, resource_names
from infra.settings import PlatformSettings


def stack_suffix(
    name: str, settings: PlatformSettings, parent: pulumi.Resource, kind: str = WORKSPACE
) -> random.RandomString:
    """The suffix drawn once per stack lifetime; see infra/naming.py for why names carry it.

    Its keepers record the settings a stack cannot change (`checks.creation_record`), and are never
    updated (ignore_changes), so the state keeps what the stack was created with and registering the
    suffix never changes anything; `checks.preflight` compares config with that record before any other
    resource is registered.
    """
    return random_suffix(
        f"{name}-suffix",
        checks.creation_record(settings, kind),
        pulumi.ResourceOptions(parent=parent, ignore_changes=["keepers"]),
    )


def random_suffix(
    name: str, keepers: pulumi.Input[Mapping[str, pulumi.Input[str]]], opts: pulumi.ResourceOptions
) -> random.RandomString:
    """A name suffix of SUFFIX_LENGTH lowercase letters and digits, the only characters every Azure name here takes
    (infra/naming.py), re-drawn when `keepers` change."""
    return random.RandomString(
        name,
        length=SUFFIX_LENGTH,
        special=False,
        upper=False,
        numeric=True,
        lower=True,
        keepers=keepers,
        opts=opts,
    )


def names_from(checked_suffix: pulumi.Output[str], settings: PlatformSettings) -> pulumi.Output[dict[str, str]]:
    """Every resource's Azure name, by kind (infra/naming.py), from the suffix `checks.preflight` let
    through: every resource takes its name from here, so none is registered before a refusal."""
    return checked_suffix.apply(lambda sfx: resource_names(settings.project, settings.stack, sfx))


def resource_group(scope: Scope) -> resources.ResourceGroup:
    """The one resource group every other resource lives in."""
    s = scope.settings
    return resources.ResourceGroup(
        f"{scope.name}-rg",
        resource_group_name=scope.name_of("resource_group"),
        location=s.location,
        tags=scope.tags,
        opts=scope.opts(),
    )
