"""The stack's random suffix (and so its Azure names) and its resource group."""

from __future__ import annotations

import pulumi
import pulumi_random as random
from pulumi_azure_native import resources

from infra.builders.scope import Scope
from infra.naming import SUFFIX_LENGTH, resource_names
from infra.settings import PlatformSettings


def stack_suffix(name: str, settings: PlatformSettings, parent: pulumi.Resource) -> random.RandomString:
    """The suffix drawn once per stack lifetime; see infra/naming.py for why names carry it.

    Its keepers record the settings a stack cannot change, and are never updated (ignore_changes), so
    the state keeps what the stack was created with; infra/builders/checks.py compares config with that.
    """
    return random.RandomString(
        f"{name}-suffix",
        length=SUFFIX_LENGTH,
        special=False,
        upper=False,
        numeric=True,
        lower=True,
        keepers={"location": settings.location},
        opts=pulumi.ResourceOptions(parent=parent, ignore_changes=["keepers"]),
    )


def names_from(suffix: random.RandomString, settings: PlatformSettings) -> pulumi.Output[dict[str, str]]:
    """Every resource's Azure name, by kind (infra/naming.py), once the suffix is known."""
    return suffix.result.apply(lambda sfx: resource_names(settings.project, settings.stack, sfx))


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
