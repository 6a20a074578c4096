"""What a stack is in the dev-to-prod chain, from config: a workspace stack or the shared stack.

One program, three stacks (docs/environments.md): the `shared` stack owns the Azure ML registry that
models are promoted through; `dev` and `prod` are workspace stacks (the workspace, cluster and
endpoint) that read that registry through a `pulumi.StackReference` named by `sharedStack`. Which keys
belong to which kind is declared once, in `KEYS_OF`, and every check and message is derived from it,
so a key set on the wrong kind of stack is refused at `pulumi preview`, before anything is registered.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from infra.settings import (
    DEFAULTS,
    ConfigError,
    PlatformSettings,
    Problem,
    _fail,
    _json_list,
    _region,
    load_settings,
    location_of,
)

_T = TypeVar("_T")

WORKSPACE = "workspace"
SHARED = "shared"
STACK_KINDS = (WORKSPACE, SHARED)
# The keys each kind of stack reads; a key of the other kind set on a stack is refused.
# The shared stack has no cluster, endpoint or key vault; its budget would not see the registry's costs,
# which accrue in the resource group Azure manages for the registry (REST spec, managedResourceGroup).
KEYS_OF: dict[str, tuple[str, ...]] = {
    WORKSPACE: (
        "sharedStack",
        "vmSize",
        "vmPriority",
        "minNodes",
        "maxNodes",
        "idleSecondsBeforeScaleDown",
        "endpointAuthMode",
        "keyVaultPurgeProtection",
        "logRetentionDays",
        "budgetAmount",
        "budgetEmails",
        "budgetAlertPercents",
        "collectedDataRetentionDays",
    ),
    SHARED: ("registryRegions", "registryConsumers", "ciPrincipalId"),
}
# A stack reference: `stack`, `org/stack` or `org/project/stack`; each part as `pulumi stack init` takes it
# (letters, digits, '-', '_', '.'; acceptance/run.py keeps the same rule for a stack name). Pulumi docs,
# "Stack references": the fully qualified form is <organization>/<project>/<stack>.
STACK_REFERENCE = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9_.-]{0,99}/){0,2}[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
# A Microsoft Entra object id is a GUID in its 8-4-4-4-12 hex form (role assignments take the principal's
# object id: learn.microsoft.com/azure/role-based-access-control/role-assignments-template, principalId).
GUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


@dataclass(frozen=True)
class Environment:
    """The stack's place in the chain.

    `kind`: "workspace" or "shared". Workspace stacks: `shared_stack` is the stack reference of the
    shared stack, or None for a stack without a registry (the dev loop of a single stack keeps working).
    Shared stack: `registry_regions` (the primary region first, then the others, each once),
    `consumers` (workspace stack name -> its region), `ci_principal_id` (the object id the promotion
    workflow runs as; None grants nothing).
    """

    kind: str = WORKSPACE
    shared_stack: str | None = None
    registry_regions: tuple[str, ...] = ()
    consumers: Mapping[str, str] = field(default_factory=dict)
    ci_principal_id: str | None = None

    @property
    def is_shared(self) -> bool:
        return self.kind == SHARED


def stack_kind(get: Callable[[str], str | None]) -> str:
    """The stack's `stackKind` as set (checked by load_environment against STACK_KINDS)."""
    value = get("stackKind")
    return (DEFAULTS["stackKind"] if value is None else str(value)).strip()


def misplaced(get: Callable[[str], str | None], kind: str) -> list[str]:
    """The keys set (to other than their default) that only the other kind of stack reads; [] for an unknown kind."""
    if kind not in STACK_KINDS:
        return []
    other = SHARED if kind == WORKSPACE else WORKSPACE
    return [key for key in KEYS_OF[other] if (value := get(key)) is not None and str(value) != DEFAULTS[key]]


def load_config(
    get: Callable[[str], str | None], project: str, stack: str, provider_location: str | None = None
) -> tuple[PlatformSettings, Environment]:
    """The stack's settings (infra/settings.py load_settings) and its environment, from one config getter.

    Raises one ConfigError listing every bad value of both at once, so that one `pulumi preview` names
    every key to fix. With the region itself wrong, the checks that compare with it are left out."""
    problems: list[Problem] = []
    settings: PlatformSettings | None = None
    # A key set on the wrong kind of stack is refused as that; whether its value would be valid is beside the point.
    wrong_kind = set(misplaced(get, stack_kind(get)))
    try:
        settings = load_settings(get, project, stack, provider_location)
        location: str | None = settings.location
    except ConfigError as error:
        problems.extend(problem for problem in error.problems if problem.key not in wrong_kind)
        try:
            location = location_of(get, provider_location)
        except ConfigError:
            location = None  # already listed
    try:
        environment = load_environment(get, stack, location)
    except ConfigError as error:
        problems.extend(error.problems)
    if problems or settings is None:
        raise ConfigError(*problems)
    return settings, environment


def load_environment(get: Callable[[str], str | None], stack: str, location: str | None) -> Environment:
    """The stack's environment from its config getter; `location` is the stack's region (already checked;
    None when it is wrong, and the registry-region checks that compare with it are left out).

    Raises ConfigError listing every problem at once (each: key, value, what is allowed): an unknown kind,
    each key of the other kind of stack, a bad stack reference, region or object id, a region list without
    the primary region, a consumer whose region the registry does not cover.
    """
    problems: list[Problem] = []

    def raw(key: str) -> str:
        value = get(key)
        return DEFAULTS[key] if value is None else str(value)

    def checked(key: str, parse: Callable[[str], _T], fallback: _T) -> _T:
        """`parse` of the key's value; a ConfigError is kept, and `fallback` stands in so the others are checked."""
        try:
            return parse(raw(key))
        except ConfigError as error:
            problems.extend(error.problems)
            return fallback

    kind = stack_kind(get)
    if kind not in STACK_KINDS:
        # Which keys are the other kind's cannot be said without a kind: this one problem is the whole answer.
        raise _fail("stackKind", kind, "allowed values are " + ", ".join(STACK_KINDS))
    other = SHARED if kind == WORKSPACE else WORKSPACE
    problems.extend(
        Problem(
            key,
            f"config '{key}' is set to {raw(key)!r}, but this stack's stackKind is {kind!r} and only a "
            f"{other} stack reads it. Remove it with `pulumi config rm {key}`, or set it on the {other} "
            f"stack (`pulumi config set {key} ... --stack <the {other} stack>`).",
        )
        for key in misplaced(get, kind)
    )
    if kind == WORKSPACE:
        environment = Environment(
            kind=kind, shared_stack=checked("sharedStack", lambda v: _shared_stack(v, stack), None)
        )
    else:
        regions = checked("registryRegions", lambda v: _regions(v, location), None)
        environment = Environment(
            kind=kind,
            registry_regions=regions or (),
            consumers=checked("registryConsumers", lambda v: _consumers(v, regions), {}),
            ci_principal_id=checked("ciPrincipalId", _principal, None),
        )
    if problems:
        raise ConfigError(*problems)
    return environment


def _shared_stack(raw: str, stack: str) -> str | None:
    reference = raw.strip()
    if not reference:
        return None
    if not STACK_REFERENCE.match(reference):
        raise _fail(
            "sharedStack",
            raw,
            "expected the shared stack's name, e.g. shared or my-org/azureml-heart-failure/shared "
            "(letters, digits, '-', '_', '.')",
        )
    if reference.rsplit("/", 1)[-1] == stack:
        raise _fail("sharedStack", raw, f"it names this stack ({stack}); name the shared stack that owns the registry")
    return reference


def _regions(raw: str, location: str | None) -> tuple[str, ...] | None:
    """The registry's regions, the primary (the stack's own) first; None when the stack's region is unknown
    (wrong itself, listed apart) and so the list cannot be checked against it."""
    example = '["westeurope", "northeurope"]'
    items = _json_list("registryRegions", raw, example)
    if not all(isinstance(item, str) for item in items):
        raise _fail("registryRegions", raw, f"expected an array of region names, e.g. {example}")
    listed = [_region("registryRegions", str(item)) for item in items]
    if location is None:
        return None
    if not listed:
        return (location,)
    repeated = sorted({region for region in listed if listed.count(region) > 1})
    if repeated:
        raise _fail("registryRegions", raw, f"each region once ({', '.join(repeated)} is repeated)")
    # Azure ML CLI registry YAML: replication_locations "must include the primary location of registry"
    # (learn.microsoft.com/azure/machine-learning/reference-yaml-registry).
    if location not in listed:
        raise _fail(
            "registryRegions",
            raw,
            f"it must include the stack's own region {location!r}, the registry's primary region "
            "(Azure ML docs, reference-yaml-registry: the list must include the primary location)",
        )
    return (location, *[region for region in listed if region != location])


def _consumers(raw: str, regions: tuple[str, ...] | None) -> dict[str, str]:
    """Workspace stack -> its region; with `regions` None (the registry's regions are wrong or cannot be
    known), each entry's form is checked, not whether the registry covers it."""
    example = '["dev=westeurope", "prod=westeurope"]'
    consumers: dict[str, str] = {}
    for item in _json_list("registryConsumers", raw, example):
        name, sep, region = item.partition("=") if isinstance(item, str) else ("", "", "")
        name = name.strip()
        if not sep or not STACK_REFERENCE.match(name) or "/" in name:
            raise _fail("registryConsumers", raw, f'each entry must be a "<stack>=<region>" string, e.g. {example}')
        if name in consumers:
            raise _fail("registryConsumers", raw, f"stack {name!r} is listed twice; a workspace stack has one region")
        region = _region("registryConsumers", region)
        # A workspace can use a registry's assets only in a region the registry is in (Azure ML docs,
        # how-to-share-models-pipelines-across-workspaces-with-registries: "provided the location of the
        # workspace is one of the locations supported by the registry").
        if regions is not None and region not in regions:
            raise _fail(
                "registryConsumers",
                raw,
                f"stack {name!r} is in {region}, which the registry does not cover ({', '.join(regions)}); add "
                f"{region} to registryRegions (Azure ML registries serve only workspaces in their regions)",
            )
        consumers[name] = region
    return consumers


def _principal(raw: str) -> str | None:
    value = raw.strip()
    if not value:
        return None
    if not GUID.match(value):
        raise _fail(
            "ciPrincipalId",
            raw,
            "expected the object id (a GUID) of the identity the promotion workflow runs as "
            "(`az ad sp show --id <client id> --query id -o tsv`)",
        )
    return value.lower()
