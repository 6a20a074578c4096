"""The shared stack's Azure ML registry, which models and environments are promoted through.

What Azure does and does not allow for a registry, each with its source:
- It creates its own storage account in every region it is in and one container registry replicated to
  each of them; existing ones cannot be given ("Using existing Azure resource instances for those when
  creating the registry is not supported": az ml registry create; the REST spec 2025-12-01 knows only
  `systemCreatedAcrAccount` and `systemCreatedStorageAccount`, with no other property allowed).
- The container registry is Premium: the only SKU azure-ai-ml offers for it (constants/_registry.py,
  AcrAccountSku) and the one geo-replication needs ("Geo-replication requires the Premium SKU",
  container-registry-geo-replication). Azure charges "Premium registry fees for each region" (same page).
- The primary region is fixed at creation; more regions can be added later (how-to-manage-registries,
  "Choose Azure regions"); the region list includes the primary one (reference-yaml-registry).
- The name (3 to 32 characters, infra/naming.py) is unique in the Entra tenant and cannot change.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import pulumi
from pulumi_azure_native import machinelearningservices as ml
from pulumi_azure_native import resources

from infra.builders.scope import Scope, field_of
from infra.environments import Environment

# The container registry SKU Azure ML creates for a registry (see the module docstring).
REGISTRY_ACR_SKU = "Premium"
# Locally redundant storage: the registry already keeps a copy in each of its regions, and LRS is the
# cheapest account type the REST spec lists for a system-created account (SystemCreatedStorageAccount).
REGISTRY_STORAGE_TYPE = "Standard_LRS"


def ml_registry(scope: Scope, group: resources.ResourceGroup, environment: Environment) -> ml.Registry:
    """The registry in every region of `environment.registry_regions` (the stack's own region first),
    with a system-assigned identity (Azure ML manages the registry's own resources with it)."""
    s = scope.settings
    regions = [
        ml.RegistryRegionArmDetailsArgs(
            location=region,
            acr_details=[
                ml.AcrDetailsArgs(
                    system_created_acr_account=ml.SystemCreatedAcrAccountArgs(acr_account_sku=REGISTRY_ACR_SKU)
                )
            ],
            storage_account_details=[
                ml.StorageAccountDetailsArgs(
                    system_created_storage_account=ml.SystemCreatedStorageAccountArgs(
                        storage_account_type=REGISTRY_STORAGE_TYPE,
                        storage_account_hns_enabled=False,
                        allow_blob_public_access=False,
                    )
                )
            ],
        )
        for region in environment.registry_regions
    ]
    return ml.Registry(
        f"{scope.name}-mlregistry",
        registry_name=scope.name_of("ml_registry"),
        resource_group_name=group.name,
        location=s.location,
        identity=ml.ManagedServiceIdentityArgs(type=ml.ManagedServiceIdentityType.SYSTEM_ASSIGNED),
        public_network_access=s.public_network_access,
        region_details=regions,
        tags=scope.tags,
        opts=scope.opts(),
    )


class RegionRemoved(pulumi.RunError):
    """Config drops a region the registry is in; the message says why `pulumi up` cannot, and what to do."""


def regions_kept(name: str, environment: Environment, parent: pulumi.Resource) -> pulumi.Output[bool]:
    """True once config keeps every region the live registry is in; RegionRemoved otherwise.

    The registry is found from this stack's own last outputs (a StackReference to the stack itself reads
    them: pulumi/pulumi issue 3722); a stack without them has no registry yet and nothing to keep. Its
    regions are read from Azure (an invoke), so a region removed outside Pulumi is not asked back.
    Azure removes a region only with the registry's removeRegions action (REST spec 2025-12-01,
    Registries_RemoveRegions); no source says a PUT without it does, and a workspace stack there would
    lose the registry's models.
    """
    own = f"{pulumi.get_organization()}/{pulumi.get_project()}/{pulumi.get_stack()}"
    previous = pulumi.StackReference(f"{name}-previous", stack_name=own, opts=pulumi.ResourceOptions(parent=parent))

    def read(outputs: dict[str, object]) -> pulumi.Output[bool]:
        registry, group = (outputs or {}).get("registry_name"), (outputs or {}).get("resource_group")
        if not registry or not group:
            return pulumi.Output.from_input(True)
        live = ml.get_registry_output(
            registry_name=str(registry),
            resource_group_name=str(group),
            opts=pulumi.InvokeOutputOptions(parent=parent),
        )
        return live.region_details.apply(lambda details: _kept(str(registry), details or [], environment))

    return previous.outputs.apply(read)


def _kept(registry: str, details: Sequence[object], environment: Environment) -> bool:
    live = [str(field_of(detail, "location", "location")) for detail in details]
    removed = [region for region in live if region not in environment.registry_regions]
    if removed:
        kept = json.dumps([*environment.registry_regions, *removed])
        raise RegionRemoved(
            f"config 'registryRegions' leaves out {', '.join(removed)}, where the registry {registry} is, and "
            "`pulumi up` cannot take a region out of a registry: Azure does that only with the registry's "
            "removeRegions action (REST API, Registries_RemoveRegions). First destroy or move the workspace "
            "stacks there and take them out of registryConsumers; then remove the region with "
            f"`az rest --method post --url <registry id>/removeRegions?api-version=2025-12-01 ...` and run "
            f"`pulumi refresh`. To keep it: `pulumi config set registryRegions '{kept}'`."
        )
    return True
