"""Storage and secrets: the workspace's storage account, its key vault, and how long collected data stays.

`jobs deploy --target azure --collect` makes the deployment's data collector write what score.py
collects to the workspace's default blob datastore (workspaceblobstore), under
`modelDataCollector/<endpoint>/<deployment>/<collection>/...` (Azure ML docs,
how-to-collect-production-data, "Blob storage output/format"). That datastore is the container
`azureml-blobstore-<GUID>` of the workspace's storage account (Azure ML docs, how-to-use-parallel-run-step:
results under `azureml-blobstore-GUID/...`). That the GUID is the workspace's id (`workspaceId`) is what
public samples show, not what the docs state: after the first `pulumi up`, compare with
`az ml datastore show --name workspaceblobstore --query container_name`.
"""

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
RETENTION_PATH = "properties.softDeleteRetentionInDays"

# Azure: a storage account has one management policy and its name "should always be 'default'"
# (pulumi-azure-native ManagementPolicy docs, from the REST spec).
POLICY_NAME = "default"
RULE_NAME = "expire-collected-production-data"
COLLECTOR_PREFIX = "modelDataCollector/"


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
        # softDeleteRetentionInDays is create-only (the comment on KEY_VAULT_RETENTION_DAYS): Pulumi sends it
        # when it creates the vault and keeps the recorded value in every later PUT (ignore_changes applies to
        # updates only: Pulumi docs, resource options, ignoreChanges), so a vault made with another value (7, by
        # earlier versions of this program) is not sent 90, which Key Vault answers with "softDeleteRetentionInDays
        # has been set already and it can't be modified" (review N6).
        opts=scope.opts(
            ignore_changes=[
                RETENTION_PATH,
                *([] if s.key_vault_purge_protection else ["properties.enablePurgeProtection"]),
            ],
        ),
    )


def collected_data_retention(
    scope: Scope, group: resources.ResourceGroup, account: storage.StorageAccount, workspace_id: pulumi.Input[str]
) -> storage.ManagementPolicy:
    """Delete the collected production data `collectedDataRetentionDays` after its last write.

    Called once the workspace exists: the rule's prefix is the workspace's datastore container, named
    after the workspace's id, and the workspace needs the storage account first (so this cannot run in
    `storage_and_secrets`). Append blobs too: a lifecycle rule may delete them
    (learn.microsoft.com/azure/storage/blobs/lifecycle-management-policy-structure: blobTypes blockBlob or
    appendBlob; delete is the one action for append blobs), and a collector that appends may write them.
    """
    prefix = pulumi.Output.concat("azureml-blobstore-", workspace_id, "/", COLLECTOR_PREFIX)
    return storage.ManagementPolicy(
        f"{scope.name}-collected-data-retention",
        account_name=account.name,
        resource_group_name=group.name,
        management_policy_name=POLICY_NAME,
        policy=storage.ManagementPolicySchemaArgs(
            rules=[
                storage.ManagementPolicyRuleArgs(
                    name=RULE_NAME,
                    enabled=True,
                    type=storage.RuleType.LIFECYCLE,
                    definition=storage.ManagementPolicyDefinitionArgs(
                        filters=storage.ManagementPolicyFilterArgs(
                            blob_types=["blockBlob", "appendBlob"], prefix_match=[prefix]
                        ),
                        actions=storage.ManagementPolicyActionArgs(
                            base_blob=storage.ManagementPolicyBaseBlobArgs(
                                delete=storage.DateAfterModificationArgs(
                                    days_after_modification_greater_than=scope.settings.collected_data_retention_days
                                )
                            )
                        ),
                    ),
                )
            ]
        ),
        opts=scope.opts(),
    )
