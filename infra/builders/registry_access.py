"""Who may do what on the shared Azure ML registry: the role assignments the stacks declare.

Azure assigns roles by itself only where its docs say so, and none of those is on a registry:
a system-assigned endpoint identity gets AcrPull on the workspace's container registry, Storage Blob
Data Reader on its default datastore and AzureML Metrics Writer on the workspace (Azure ML docs,
concept-endpoints-online-auth, "Automatic role assignment for endpoint identity"); the workspace's own
identity gets its roles on the four linked resources (how-to-identity-based-service-authentication).
The registry's own storage and container registry sit in a resource group Azure manages for the
registry (REST spec, Registry.managedResourceGroup) and are reached through the registry, so the
grants here are on the registry itself and nothing is declared on its storage or ACR.

Each (scope, principal, role) is declared once across the three stacks, because a second assignment of
the same triple fails with RoleAssignmentExists: the per-stack identities (workspace, endpoint) in
their workspace stack, the CI identity, shared by dev and prod, in the shared stack.
"""

from __future__ import annotations

import uuid

import pulumi
from pulumi_azure_native import authorization

from infra.builders.scope import Scope

# Built-in role ids, the same in every tenant (learn.microsoft.com/azure/role-based-access-control/built-in-roles).
# Reader: "To let a user only read assets, you can grant the user the built-in Reader role" (Azure ML docs,
# how-to-manage-registries, "Allow users to use assets from the registry").
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
# AzureML Registry User: "Can perform all actions on Machine Learning Services Registry assets as well as get
# Registry resources" (built-in-roles, AI + machine learning): what sharing a model to the registry needs,
# without Contributor's right to update or delete the registry (how-to-manage-registries, the warning).
AZUREML_REGISTRY_USER = "1823dd4f-9b8c-4ab6-ab4e-7397a3684615"
ROLE_NAMES = {READER: "Reader", AZUREML_REGISTRY_USER: "AzureML Registry User"}
# The only roles the program grants on a registry (policy/guardrails.py enforces it at preview).
REGISTRY_ROLES = frozenset(ROLE_NAMES)
# A namespace for the assignments' names: a role assignment's name is a GUID, and deriving it from
# (scope, principal, role) makes it the same on every run and new when any of the three changes.
_NAMESPACE = uuid.UUID("6f1c2a55-1d43-4c0c-9a4e-6d1f0c2b9e11")


def assignment_name(scope_id: str, principal_id: str, role_id: str) -> str:
    """The role assignment's name (a GUID) for one (scope, principal, role), stable across runs."""
    return str(uuid.uuid5(_NAMESPACE, f"{scope_id.lower()}|{principal_id.lower()}|{role_id}"))


def grant(
    scope: Scope,
    what: str,
    registry_id: pulumi.Input[str],
    subscription_id: pulumi.Input[str],
    principal_id: pulumi.Input[str],
    role_id: str,
) -> authorization.RoleAssignment:
    """`role_id` on the registry for one principal; `what` names it (the logical name's tail).

    Every principal here is a service principal: a managed identity, or the app registration the CI
    signs in as with OpenID Connect. Saying so spares Azure the wait for directory replication of an
    identity created moments before (role-assignments-template, principalType).
    """
    role_definition = pulumi.Output.from_input(subscription_id).apply(
        lambda sub: f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{role_id}"
    )
    name = pulumi.Output.all(registry_id, principal_id).apply(
        lambda ids: assignment_name(str(ids[0]), str(ids[1]), role_id)
    )
    return authorization.RoleAssignment(
        f"{scope.name}-{what}",
        role_assignment_name=name,
        scope=registry_id,
        principal_id=principal_id,
        principal_type=authorization.PrincipalType.SERVICE_PRINCIPAL,
        role_definition_id=role_definition,
        description=f"{ROLE_NAMES[role_id]} on the shared Azure ML registry ({scope.settings.stack}: {what}).",
        opts=scope.opts(),
    )
