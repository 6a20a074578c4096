"""Storage and secrets: the workspace's storage account and its key vault."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_azure_native import keyvault, resources, storage

from infra.builders.scope import Scope

# A deleted vault's secrets stay recoverable this long. The interval "can only be configured during
# key vault creation and can't be changed afterwards" (Key Vault soft-delete overview), so it is one
# constant, whatever purge protection says; 90 is Azure's default. The stack never re-uses a vault name, so a
# soft-deleted vault never blocks a re-created stack.
KEY_VAULT_RETENTION_DAYS = 90


@dataclass(frozen=True)
class Storage:
    """What `storage_and_secrets` creates."""

    account: storage.StorageAccount
    key_vault: keyvault.Vault


def storage_and_secrets(scope: Scope, group: resources.ResourceGroup, tenant_id: pulumi.Input[str]) -> Storage:
    """The storage account (HTTPS only, TLS 1.2, no public blobs) and the key vault (RBAC, soft delete)."""
    return Storage(account=storage_account(scope, group), key_vault=key_vault(scope, group, tenant_id))


def storage_account(scope: Scope, group: resources.ResourceGroup) -> storage.StorageAccount:
    """The workspace's default storage: job outputs, models, registered data."""
    s = scope.settings
    return storage.StorageAccount(
        f"{scope.name}-storage",
        account_name=scope.name_of("storage_account"),
        resource_group_name=group.name,
        location=s.location,
        kind=storage.Kind.STORAGE_V2,
        sku=storage.SkuArgs(name=storage.SkuName.STANDARD_LRS),
        enable_https_traffic_only=True,
        minimum_tls_version=storage.MinimumTlsVersion.TLS1_2,
        allow_blob_public_access=False,
        tags=scope.tags,
        opts=scope.opts(),
    )


def key_vault(scope: Scope, group: resources.ResourceGroup, tenant_id: pulumi.Input[str]) -> keyvault.Vault:
    """The workspace's key vault, authorised by Azure RBAC; purge protection as config says
    (infra/builders/checks.py refuses switching it off)."""
    s = scope.settings
    return keyvault.Vault(
        f"{scope.name}-kv",
        vault_name=scope.name_of("key_vault"),
        resource_group_name=group.name,
        location=s.location,
        properties=keyvault.VaultPropertiesArgs(
            tenant_id=tenant_id,
            sku=keyvault.SkuArgs(family=keyvault.SkuFamily.A, name=keyvault.SkuName.STANDARD),
            enable_rbac_authorization=True,
            enable_soft_delete=True,
            # Azure accepts only `true` here (purge protection cannot be switched off once on),
            # so "off" means leaving the property out.
            enable_purge_protection=True if s.key_vault_purge_protection else None,
            soft_delete_retention_in_days=KEY_VAULT_RETENTION_DAYS,
            public_network_access=s.public_network_access,
        ),
        tags=scope.tags,
        # While config says "off", the vault keeps whatever it has: a vault that had purge
        # protection keeps it (Azure ignores a PUT without it), and the state keeps saying so,
        # which lets the fixed-at-creation check refuse the change instead of reporting a success that is not one.
        opts=scope.opts(
            ignore_changes=[] if s.key_vault_purge_protection else ["properties.enablePurgeProtection"],
        ),
    )
