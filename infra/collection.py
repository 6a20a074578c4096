"""How long the endpoint's collected production data is kept: a storage lifecycle rule.

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

import pulumi
from pulumi_azure_native import storage

# Azure: a storage account has one management policy and its name "should always be 'default'"
# (pulumi-azure-native ManagementPolicy docs, from the REST spec).
POLICY_NAME = "default"
RULE_NAME = "expire-collected-production-data"
COLLECTOR_PREFIX = "modelDataCollector/"


def collected_data_policy(name: str, account_name: pulumi.Input[str], resource_group_name: pulumi.Input[str],
                          workspace_id: pulumi.Input[str], retention_days: int,
                          opts: pulumi.ResourceOptions) -> storage.ManagementPolicy:
    """Delete collected blobs `retention_days` after their last write.

    Append blobs too: a lifecycle rule may delete them (learn.microsoft.com/azure/storage/blobs/
    lifecycle-management-policy-structure: blobTypes blockBlob or appendBlob; delete is the one action
    for append blobs), and a collector that appends may write them.
    """
    prefix = pulumi.Output.concat("azureml-blobstore-", workspace_id, "/", COLLECTOR_PREFIX)
    return storage.ManagementPolicy(
        f"{name}-collected-data-retention",
        account_name=account_name,
        resource_group_name=resource_group_name,
        management_policy_name=POLICY_NAME,
        policy=storage.ManagementPolicySchemaArgs(rules=[storage.ManagementPolicyRuleArgs(
            name=RULE_NAME,
            enabled=True,
            type=storage.RuleType.LIFECYCLE,
            definition=storage.ManagementPolicyDefinitionArgs(
                filters=storage.ManagementPolicyFilterArgs(blob_types=["blockBlob", "appendBlob"],
                                                           prefix_match=[prefix]),
                actions=storage.ManagementPolicyActionArgs(base_blob=storage.ManagementPolicyBaseBlobArgs(
                    delete=storage.DateAfterModificationArgs(days_after_modification_greater_than=retention_days))),
            ),
        )]),
        opts=opts,
    )
