"""Settings fixed at creation, checked against what the stack has; and why no access is declared.

Some settings can be chosen only when the stack is created, because Azure cannot apply a change in
place without cutting service; `FixedAtCreation` refuses such a change with a message that says
what to do instead. Each check is an output the component registers, so `pulumi up` stops with
the message before it changes anything.

No role assignment is declared anywhere: every identity in the stack is system-assigned, and Azure ML
grants those identities their roles itself (see the comments at each identity, in workspace.py,
compute.py and endpoint.py). Declaring the same (scope, principal, role) again fails with
RoleAssignmentExists.
"""

from __future__ import annotations

from typing import TypeVar

import pulumi
import pulumi_random as random
from pulumi_azure_native import keyvault, resources
from pulumi_azure_native import machinelearningservices as ml

from infra.builders.scope import Scope, field_of
from infra.settings import AUTH_MODES

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


def location(scope: Scope, suffix: random.RandomString) -> pulumi.Output[str]:
    """The stack's location, as recorded in the suffix's keepers when the stack was created."""
    s = scope.settings
    # Every resource's location is fixed when it is created (ARM refuses to move one), and
    # globally unique names cannot be created twice, so a new region means a new stack.
    return suffix.keepers.apply(
        lambda recorded: fixed(
            "location",
            (recorded or {}).get("location", s.location),
            s.location,
            "Azure cannot move a resource to another region",
            "Create a new stack for the new region (`pulumi stack init <name>`), or `pulumi destroy` this one first.",
        )
    )


def purge_protection(scope: Scope, vault: keyvault.Vault) -> pulumi.Output[str]:
    """The vault's purge protection ("true"/"false"); refuses switching it off once on."""
    s = scope.settings
    return vault.properties.apply(
        lambda p: fixed(
            "keyVaultPurgeProtection",
            "true" if field_of(p, "enable_purge_protection", "enablePurgeProtection") else "false",
            "true" if s.key_vault_purge_protection else "false",
            "Azure cannot switch purge protection off once it is on (Key Vault soft-delete overview)",
        )
    )


ENDPOINT_UPDATE = (
    "Change it on the endpoint with `az ml online-endpoint update --name {endpoint} --resource-group {rg} "
    "--workspace-name {ws} --set {field}={value}` (it sends the live traffic back), then run `pulumi "
    "refresh` so the stack records it."
)


def endpoint_settings(
    scope: Scope, endpoint: ml.OnlineEndpoint, group: resources.ResourceGroup, ws: ml.Workspace
) -> pulumi.Output[str]:
    """The endpoint's auth mode in Azure's spelling (Key, AADToken); refuses a config change of its
    auth mode or network access, which only `az ml online-endpoint update` can make without cutting
    traffic (see infra/builders/endpoint.py)."""
    s = scope.settings

    def check(args: list[object]) -> str:
        props, endpoint_name, rg, workspace = args
        auth_mode = field_of(props, "auth_mode", "authMode")
        reverse: dict[object, object] = {azure: key for key, azure in AUTH_MODES.items()}
        if auth_mode != s.endpoint_auth_mode:
            raise refuse(
                "endpointAuthMode",
                reverse.get(auth_mode, auth_mode),
                reverse.get(s.endpoint_auth_mode, s.endpoint_auth_mode),
                "an update of the endpoint from `pulumi up` would cut its live traffic",
                ENDPOINT_UPDATE.format(
                    endpoint=endpoint_name,
                    rg=rg,
                    ws=workspace,
                    field="auth_mode",
                    value=reverse.get(s.endpoint_auth_mode),
                ),
            )
        network = field_of(props, "public_network_access", "publicNetworkAccess")
        if network is not None and network != s.public_network_access:
            raise refuse(
                "publicNetworkAccess",
                network,
                s.public_network_access,
                "an update of the endpoint from `pulumi up` would cut its live traffic",
                ENDPOINT_UPDATE.format(
                    endpoint=endpoint_name,
                    rg=rg,
                    ws=workspace,
                    field="public_network_access",
                    value=s.public_network_access.lower(),
                ),
            )
        return str(auth_mode)  # Azure's spelling (Key, AADToken), as the stack always exported it

    return pulumi.Output.all(endpoint.properties, endpoint.name, group.name, ws.name).apply(check)
