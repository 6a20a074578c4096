"""The Azure ML workspace, linked to the storage account, key vault, Application Insights and registry."""

from __future__ import annotations

from pulumi_azure_native import applicationinsights, containerregistry, resources
from pulumi_azure_native import machinelearningservices as ml

from infra.builders.scope import Scope
from infra.builders.storage import Storage


def workspace(
    scope: Scope,
    group: resources.ResourceGroup,
    store: Storage,
    app_insights: applicationinsights.Component,
    container_registry: containerregistry.Registry,
) -> ml.Workspace:
    """The workspace with a system-assigned identity, wired to its four dependencies."""
    s = scope.settings
    return ml.Workspace(
        f"{scope.name}-workspace",
        workspace_name=scope.name_of("ml_workspace"),
        resource_group_name=group.name,
        location=s.location,
        # Azure ML creates this identity's role assignments on the four linked resources itself
        # (Azure ML docs, how-to-identity-based-service-authentication: for a system-assigned
        # workspace identity "role assignment creation: managed by Microsoft"); the job outputs and
        # models go to the default datastore, which Azure ML reaches with the account key it keeps
        # in the key vault. Nothing is left for the program to grant.
        identity=ml.ManagedServiceIdentityArgs(type=ml.ManagedServiceIdentityType.SYSTEM_ASSIGNED),
        sku=ml.SkuArgs(name="Basic", tier=ml.SkuTier.BASIC),
        storage_account=store.account.id,
        key_vault=store.key_vault.id,
        application_insights=app_insights.id,
        container_registry=container_registry.id,
        public_network_access=s.public_network_access,
        friendly_name=f"Heart failure AutoML ({s.stack})",
        description=(
            "AutoML classifier for DEATH_EVENT on the UCI heart-failure records, "
            f"managed by Pulumi project {s.project}, stack {s.stack}."
        ),
        tags=scope.tags,
        opts=scope.opts(),
    )
