"""The workspace's container registry."""

from __future__ import annotations

from pulumi_azure_native import containerregistry, resources

from infra.builders.scope import Scope


def registry(scope: Scope, group: resources.ResourceGroup) -> containerregistry.Registry:
    """A Basic registry without the admin user: the cluster and the endpoint pull with their
    managed identities (see infra/builders/compute.py and endpoint.py)."""
    s = scope.settings
    return containerregistry.Registry(
        f"{scope.name}-acr",
        registry_name=scope.name_of("container_registry"),
        resource_group_name=group.name,
        location=s.location,
        sku=containerregistry.SkuArgs(name=containerregistry.SkuName.BASIC),
        admin_user_enabled=False,
        tags=scope.tags,
        opts=scope.opts(),
    )
