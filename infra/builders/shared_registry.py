"""A workspace stack's view of the shared registry: read through a StackReference, checked before use.

The shared stack exports the registry's name, ARM id, regions and the workspace stacks it serves
(`EXPORTS`); a workspace stack reads them with `pulumi.StackReference(sharedStack)` and refuses, before
any Azure resource is registered (every name waits for `RegistryUse.checked`), a registry that is not
there yet, one that does not cover the stack's region, or one whose config does not list this stack.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi

from infra.environments import Environment
from infra.outputs import SHARED_FOR_WORKSPACES
from infra.settings import PlatformSettings

# What the shared stack exports about its registry and the workspace stacks read: declared in infra/outputs.py.
EXPORTS = SHARED_FOR_WORKSPACES


class RegistryNotUsable(pulumi.RunError):
    """The shared registry cannot serve this workspace stack; the message says what to do first."""


@dataclass(frozen=True)
class RegistryUse:
    """The shared registry as this stack uses it. `checked` resolves (to True) only once it may."""

    reference: pulumi.StackReference
    name: pulumi.Output[str]
    id: pulumi.Output[str]
    regions: pulumi.Output[list[str]]
    checked: pulumi.Output[bool]


def registry_problem(outputs: Mapping[str, Any], shared: str, s: PlatformSettings) -> str | None:
    """Why the shared stack's `outputs` cannot serve the workspace stack `s` (None when they can).

    In order: no registry exported yet, the stack's region not among the registry's, the stack not
    among the registry's declared consumers (or declared with another region)."""
    up_first = f"`pulumi up --stack {shared}` first (docs/environments.md: shared, then dev and prod)"
    missing = [key for key in EXPORTS if not outputs.get(key)]
    if missing:
        return (
            f"the shared stack '{shared}' (config 'sharedStack') exports no {', '.join(missing)}: "
            f"bring the registry up with {up_first}"
        )
    regions = [str(region) for region in outputs["registry_regions"]]
    entry = f'"{s.stack}={s.location}"'
    if s.location not in regions:
        # Azure ML docs, how-to-share-models-pipelines-across-workspaces-with-registries: a registry's model
        # deploys to a workspace "provided the location of the workspace is one of the locations supported
        # by the registry".
        return (
            f"this stack's region {s.location!r} is not one of the registry's regions ({', '.join(regions)}), and "
            f"Azure ML serves a registry's models only to workspaces in its regions. Add {s.location} to "
            f"registryRegions and {entry} to registryConsumers of the stack '{shared}', then {up_first}"
        )
    consumers = outputs["registry_consumers"]
    if not isinstance(consumers, Mapping) or consumers.get(s.stack) != s.location:
        declared = consumers.get(s.stack) if isinstance(consumers, Mapping) else None
        listed = f"lists it in {declared}" if declared else "does not list it"
        return (
            f"the shared stack '{shared}' {listed}; its registryConsumers declare which stacks use the registry "
            f"and where, so that it keeps their regions. Add {entry} to registryConsumers there, then {up_first}"
        )
    return None


def read_registry(name: str, s: PlatformSettings, environment: Environment, parent: pulumi.Resource) -> RegistryUse:
    """The shared stack's registry (`environment.shared_stack` must be set), read and checked."""
    shared = str(environment.shared_stack)
    reference = pulumi.StackReference(f"{name}-shared", stack_name=shared, opts=pulumi.ResourceOptions(parent=parent))

    def check(outputs: Mapping[str, Any]) -> bool:
        problem = registry_problem(outputs or {}, shared, s)
        if problem is not None:
            raise RegistryNotUsable(problem)
        return True

    checked = reference.outputs.apply(check)

    def value(key: str) -> pulumi.Output[Any]:
        return pulumi.Output.all(checked, reference.outputs).apply(lambda args: args[1][key])

    return RegistryUse(reference, value("registry_name"), value("registry_id"), value("registry_regions"), checked)
