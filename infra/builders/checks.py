"""Settings fixed at creation, checked before anything can change; and why no access is declared.

Some settings can be chosen only when the stack is created, because Azure cannot apply a change in
place without cutting service; `FixedAtCreation` refuses such a change with a message that says
what to do instead.

When the refusal fires matters. Pulumi runs the program and the deployment at once: a resource's
step starts as soon as the program registers it with resolved inputs, and an exception raised later
in the program does not undo the steps already under way. `pulumi up --yes --skip-preview` (what the
Automation API, and so pulumi/actions, runs: pulumi/pulumi sdk/python/lib/pulumi/automation/_stack.py)
has no preview to fail first. So the refusals are made in `preflight`, from plain config and from
what the stack recorded when it was created (the keepers of its suffix, which are never updated), and
every Azure name waits for `preflight` (infra/builders/group.py): before a refusal, the only resource
registered is the suffix, whose inputs never change. Only when config asks for an endpoint setting
other than the record does `preflight` read the endpoint as it is now (an invoke, not a resource),
since `az ml online-endpoint update` may have made the change already.

Two checks stay on what a resource reports, as a second line: the endpoint's settings after a change
made outside Pulumi (a refreshed endpoint that differs from a config equal to the record), and purge
protection switched on after the stack was created. Both refuse later, after other resources with
allowed changes may have been updated; neither lets a refused change through.

No role assignment is declared on a workspace stack's own resources: every identity in the stack is
system-assigned, and Azure ML grants those identities their roles itself (see the comments at each
identity, in workspace.py, compute.py and endpoint.py). Declaring the same (scope, principal, role) again
fails with RoleAssignmentExists. The only assignments declared are on the shared registry, where Azure
grants nothing by itself (infra/builders/registry_access.py).
"""

from __future__ import annotations

from typing import TypeVar, cast

import pulumi
import pulumi_random as random
from pulumi_azure_native import keyvault, resources
from pulumi_azure_native import machinelearningservices as ml

from infra.builders.scope import Scope, field_of
from infra.environments import SHARED, WORKSPACE
from infra.naming import resource_names
from infra.settings import AUTH_MODES, PlatformSettings

T = TypeVar("T")


class FixedAtCreation(pulumi.RunError):
    """A setting changed that Azure cannot change in place without an outage; the message says what to do."""


def refuse(key: str, recorded: object, wanted: object, why: str, instead: str = "") -> FixedAtCreation:
    """The refusal of a config change from `recorded` (what the stack has) to `wanted`."""
    return FixedAtCreation(
        f"config '{key}' is {wanted!r}, but the stack has {recorded!r}, and {why}. "
        f"{instead + ' ' if instead else ''}To keep {recorded!r}: `pulumi config set {key} {recorded}`."
    )


def fixed(key: str, recorded: T, wanted: T, why: str, instead: str = "") -> T:
    """`recorded` when it equals `wanted`; otherwise refuse the change (FixedAtCreation)."""
    if recorded != wanted:
        raise refuse(key, recorded, wanted, why, instead)
    return recorded


def creation_record(s: PlatformSettings, kind: str = WORKSPACE) -> dict[str, str]:
    """What the stack suffix's keepers record when the stack is created (infra/builders/group.py).

    A stack recorded before `stackKind` existed has none, and is a workspace stack."""
    if kind == SHARED:
        return {"location": s.location, "stackKind": SHARED}
    return {
        "location": s.location,
        "endpointAuthMode": s.endpoint_auth_mode,
        "publicNetworkAccess": s.public_network_access,
        "keyVaultPurgeProtection": _flag(s.key_vault_purge_protection),
        "stackKind": WORKSPACE,
    }


# The record's keys that the endpoint's own settings can move away from (`az ml online-endpoint update`).
ENDPOINT_KEYS = ("endpointAuthMode", "publicNetworkAccess")


def _flag(value: bool) -> str:
    return "true" if value else "false"


LOCATION_WHY = "Azure cannot move a resource to another region"
LOCATION_INSTEAD = (
    "Create a new stack for the new region (`pulumi stack init <name>`), or `pulumi destroy` this one first."
)
PURGE_WHY = "Azure cannot switch purge protection off once it is on (Key Vault soft-delete overview)"
# The two kinds build different resources under the same component: a changed kind would delete every
# resource of the old one (the workspace with its models, or the registry with every promoted model).
KIND_WHY = "a stack cannot change its kind: `pulumi up` would delete every resource of the other kind"
KIND_INSTEAD = "Create a stack of the other kind instead (`pulumi stack init <name>`, docs/environments.md)."


def preflight(
    s: PlatformSettings, suffix: random.RandomString, parent: pulumi.Resource, kind: str = WORKSPACE
) -> pulumi.Output[str]:
    """The stack's suffix, resolved only once no setting fixed at creation is asked to change.

    Raises FixedAtCreation (inside the output, so `pulumi preview` and `pulumi up` fail with its message)
    when config changes the stack's kind (`stackKind`) or its location, switches purge protection off
    that the stack was created with, or asks for an endpoint auth mode or network access the endpoint
    does not have. The record is the suffix's keepers; a stack created before they held the endpoint's
    settings has only `location` (and is a workspace stack), and its endpoint is read instead.
    """

    def check(args: list[object]) -> pulumi.Output[str]:
        keepers, sfx = args
        recorded: dict[str, str] = dict(cast(dict[str, str], keepers or {}))
        fixed("stackKind", recorded.get("stackKind", WORKSPACE), kind, KIND_WHY, KIND_INSTEAD)
        fixed("location", recorded.get("location", s.location), s.location, LOCATION_WHY, LOCATION_INSTEAD)
        if kind == SHARED:  # no endpoint, no key vault
            return pulumi.Output.from_input(str(sfx))
        if recorded.get("keyVaultPurgeProtection") == "true":
            fixed("keyVaultPurgeProtection", "true", _flag(s.key_vault_purge_protection), PURGE_WHY)
        wanted = creation_record(s, kind)
        if all(recorded.get(key) == wanted[key] for key in ENDPOINT_KEYS):
            return pulumi.Output.from_input(str(sfx))
        # Config asks for other endpoint settings than the stack was created with: allowed only if
        # the endpoint has them already (changed with `az ml online-endpoint update`).
        names = resource_names(s.project, s.stack, str(sfx))
        live = ml.get_online_endpoint_output(
            endpoint_name=names["online_endpoint"],
            resource_group_name=names["resource_group"],
            workspace_name=names["ml_workspace"],
            opts=pulumi.InvokeOutputOptions(parent=parent),
        )
        return live.properties.apply(
            lambda props: _endpoint_agrees(
                s, props, names["online_endpoint"], names["resource_group"], names["ml_workspace"], str(sfx)
            )
        )

    return pulumi.Output.all(suffix.keepers, suffix.result).apply(check)


def _endpoint_agrees(s: PlatformSettings, props: object, endpoint: str, rg: str, ws: str, result: T) -> T:
    """`result` when the endpoint's properties match config; otherwise the refusal."""
    refusal = endpoint_refusal(s, props, endpoint, rg, ws)
    if refusal is not None:
        raise refusal
    return result


def purge_protection(scope: Scope, vault: keyvault.Vault) -> pulumi.Output[str]:
    """The vault's purge protection ("true"/"false"); refuses switching it off once on. `preflight`
    refuses it first when the vault was created with it; this covers a vault that got it later."""
    s = scope.settings
    return vault.properties.apply(
        lambda p: fixed(
            "keyVaultPurgeProtection",
            "true" if field_of(p, "enable_purge_protection", "enablePurgeProtection") else "false",
            _flag(s.key_vault_purge_protection),
            PURGE_WHY,
        )
    )


ENDPOINT_UPDATE = (
    "Change it on the endpoint with `az ml online-endpoint update --name {endpoint} --resource-group {rg} "
    "--workspace-name {ws} --set {field}={value}` (it sends the live traffic back), then run `pulumi "
    "refresh` so the stack records it."
)


_CUTS_TRAFFIC = "an update of the endpoint from `pulumi up` would cut its live traffic"


def endpoint_refusal(s: PlatformSettings, props: object, endpoint: str, rg: str, ws: str) -> FixedAtCreation | None:
    """The refusal of config's endpoint auth mode or network access when the endpoint (its `properties`
    output or invoke result) has another one; None when they agree."""
    auth_mode = field_of(props, "auth_mode", "authMode")
    reverse: dict[object, object] = {azure: key for key, azure in AUTH_MODES.items()}
    if auth_mode != s.endpoint_auth_mode:
        return refuse(
            "endpointAuthMode",
            reverse.get(auth_mode, auth_mode),
            reverse.get(s.endpoint_auth_mode, s.endpoint_auth_mode),
            _CUTS_TRAFFIC,
            ENDPOINT_UPDATE.format(
                endpoint=endpoint, rg=rg, ws=ws, field="auth_mode", value=reverse.get(s.endpoint_auth_mode)
            ),
        )
    network = field_of(props, "public_network_access", "publicNetworkAccess")
    if network is not None and network != s.public_network_access:
        return refuse(
            "publicNetworkAccess",
            network,
            s.public_network_access,
            _CUTS_TRAFFIC,
            ENDPOINT_UPDATE.format(
                endpoint=endpoint, rg=rg, ws=ws, field="public_network_access", value=s.public_network_access.lower()
            ),
        )
    return None


def endpoint_settings(
    scope: Scope, endpoint: ml.OnlineEndpoint, group: resources.ResourceGroup, ws: ml.Workspace
) -> pulumi.Output[str]:
    """The endpoint's auth mode in Azure's spelling (Key, AADToken); the second line behind `preflight`:
    refuses a config that differs from what the (refreshed) endpoint reports, which only
    `az ml online-endpoint update` can change without cutting traffic (see infra/builders/endpoint.py)."""
    s = scope.settings

    def check(args: list[object]) -> str:
        props, endpoint_name, rg, workspace = args
        refusal = endpoint_refusal(s, props, str(endpoint_name), str(rg), str(workspace))
        if refusal is not None:
            raise refusal
        # Azure's spelling (Key, AADToken), as the stack always exported it.
        return str(field_of(props, "auth_mode", "authMode"))

    return pulumi.Output.all(endpoint.properties, endpoint.name, group.name, ws.name).apply(check)
