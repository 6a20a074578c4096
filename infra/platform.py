"""The Azure ML platform as one Pulumi component.

Resource group, storage, key vault, Log Analytics + Application Insights, container registry,
the ML workspace linked to all four, a compute cluster that scales to zero, a managed online
endpoint (without deployments: `jobs/` owns those), and the role assignments that let the
endpoint pull its image and read its model.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pulumi
import pulumi_random as random
from pulumi_azure_native import (
    applicationinsights,
    authorization,
    consumption,
    containerregistry,
    keyvault,
    operationalinsights,
    resources,
    storage,
)
from pulumi_azure_native import (
    machinelearningservices as ml,
)

from infra.naming import SUFFIX_LENGTH, resource_names
from infra.settings import PlatformSettings

# Built-in Azure role definition ids (the same in every tenant).
ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
ACR_PUSH = "8311e382-0749-4cb8-b61a-304f252e45ec"
STORAGE_BLOB_DATA_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
STORAGE_BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"

STUDIO = "https://ml.azure.com"


@dataclass(frozen=True)
class PlatformOutputs:
    """What the job scripts need from the stack; no secrets."""

    subscription_id: pulumi.Output[str]
    tenant_id: pulumi.Output[str]
    resource_group: pulumi.Output[str]
    workspace_name: pulumi.Output[str]
    compute_name: pulumi.Output[str]
    compute_max_nodes: int
    endpoint_name: pulumi.Output[str]
    endpoint_auth_mode: str
    scoring_uri: pulumi.Output[str]
    location: str
    studio_url: pulumi.Output[str]

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


class MlPlatform(pulumi.ComponentResource):
    """Everything `pulumi up` creates, parented under one component."""

    def __init__(self, name: str, settings: PlatformSettings, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("heartfailure:platform:MlPlatform", name, None, opts)
        s = settings
        child = pulumi.ResourceOptions(parent=self)
        tags = s.tags

        # Drawn once per stack lifetime; see infra/naming.py for why names carry it.
        self.suffix = random.RandomString(
            f"{name}-suffix", length=SUFFIX_LENGTH, special=False, upper=False, numeric=True, lower=True, opts=child
        )
        names = self.suffix.result.apply(lambda sfx: resource_names(s.project, s.stack, sfx))

        def name_of(kind: str) -> pulumi.Output[str]:
            return names.apply(lambda n: n[kind])

        client = authorization.get_client_config_output(opts=pulumi.InvokeOutputOptions(parent=self))

        self.resource_group = resources.ResourceGroup(
            f"{name}-rg", resource_group_name=name_of("resource_group"), location=s.location, tags=tags, opts=child
        )
        rg = self.resource_group.name

        self.storage_account = storage.StorageAccount(
            f"{name}-storage",
            account_name=name_of("storage_account"),
            resource_group_name=rg,
            location=s.location,
            kind=storage.Kind.STORAGE_V2,
            sku=storage.SkuArgs(name=storage.SkuName.STANDARD_LRS),
            enable_https_traffic_only=True,
            minimum_tls_version=storage.MinimumTlsVersion.TLS1_2,
            allow_blob_public_access=False,
            tags=tags,
            opts=child,
        )

        self.key_vault = keyvault.Vault(
            f"{name}-kv",
            vault_name=name_of("key_vault"),
            resource_group_name=rg,
            location=s.location,
            properties=keyvault.VaultPropertiesArgs(
                tenant_id=client.tenant_id,
                sku=keyvault.SkuArgs(family=keyvault.SkuFamily.A, name=keyvault.SkuName.STANDARD),
                enable_rbac_authorization=True,
                enable_soft_delete=True,
                # Azure accepts only `true` here (purge protection cannot be switched off once on),
                # so "off" means leaving the property out.
                enable_purge_protection=True if s.key_vault_purge_protection else None,
                # The shortest retention when purge protection is off, so a destroyed dev vault is
                # gone in a week; the longest when a team asked for protection.
                soft_delete_retention_in_days=90 if s.key_vault_purge_protection else 7,
                public_network_access=s.public_network_access,
            ),
            tags=tags,
            opts=child,
        )

        self.log_analytics = operationalinsights.Workspace(
            f"{name}-logs",
            workspace_name=name_of("log_analytics"),
            resource_group_name=rg,
            location=s.location,
            sku=operationalinsights.WorkspaceSkuArgs(name=operationalinsights.WorkspaceSkuNameEnum.PER_GB2018),
            retention_in_days=s.log_retention_days,
            tags=tags,
            opts=child,
        )

        self.app_insights = applicationinsights.Component(
            f"{name}-appi",
            resource_name_=name_of("app_insights"),
            resource_group_name=rg,
            location=s.location,
            kind="web",
            application_type=applicationinsights.ApplicationType.WEB,
            ingestion_mode=applicationinsights.IngestionMode.LOG_ANALYTICS,
            workspace_resource_id=self.log_analytics.id,
            tags=tags,
            opts=child,
        )

        self.container_registry = containerregistry.Registry(
            f"{name}-acr",
            registry_name=name_of("container_registry"),
            resource_group_name=rg,
            location=s.location,
            sku=containerregistry.SkuArgs(name=containerregistry.SkuName.BASIC),
            admin_user_enabled=False,
            tags=tags,
            opts=child,
        )

        self.workspace = ml.Workspace(
            f"{name}-workspace",
            workspace_name=name_of("ml_workspace"),
            resource_group_name=rg,
            location=s.location,
            identity=ml.ManagedServiceIdentityArgs(type=ml.ManagedServiceIdentityType.SYSTEM_ASSIGNED),
            sku=ml.SkuArgs(name="Basic", tier=ml.SkuTier.BASIC),
            storage_account=self.storage_account.id,
            key_vault=self.key_vault.id,
            application_insights=self.app_insights.id,
            container_registry=self.container_registry.id,
            public_network_access=s.public_network_access,
            friendly_name=f"Heart failure AutoML ({s.stack})",
            description=(
                "AutoML classifier for DEATH_EVENT on the UCI heart-failure records, "
                f"managed by Pulumi project {s.project}, stack {s.stack}."
            ),
            tags=tags,
            opts=child,
        )
        ws = self.workspace.name

        self.compute = ml.Compute(
            f"{name}-cluster",
            compute_name=name_of("compute_cluster"),
            workspace_name=ws,
            resource_group_name=rg,
            location=s.location,
            properties=ml.AmlComputeArgs(
                compute_type="AmlCompute",
                description="AutoML training cluster; scales to zero when idle.",
                disable_local_auth=True,
                properties=ml.AmlComputePropertiesArgs(
                    vm_size=s.vm_size,
                    vm_priority=s.vm_priority,
                    os_type=ml.OsType.LINUX,
                    scale_settings=ml.ScaleSettingsArgs(
                        min_node_count=s.min_nodes,
                        max_node_count=s.max_nodes,
                        node_idle_time_before_scale_down=s.idle_time_iso,
                    ),
                    remote_login_port_public_access=ml.RemoteLoginPortPublicAccess.DISABLED,
                    # Without a VNet, nodes need a public IP to reach the workspace.
                    enable_node_public_ip=True,
                ),
            ),
            tags=tags,
            opts=child,
        )

        self.endpoint = ml.OnlineEndpoint(
            f"{name}-endpoint",
            endpoint_name=name_of("online_endpoint"),
            workspace_name=ws,
            resource_group_name=rg,
            location=s.location,
            identity=ml.ManagedServiceIdentityArgs(type=ml.ManagedServiceIdentityType.SYSTEM_ASSIGNED),
            properties=ml.OnlineEndpointPropertiesArgs(
                auth_mode=s.endpoint_auth_mode,
                public_network_access=s.public_network_access,
                description="Scores heart-failure records; deployments are managed by `python -m jobs deploy`.",
            ),
            tags=tags,
            # `jobs deploy` moves traffic between blue/green deployments; without this, every
            # `pulumi up` would reset it to what the program says (nothing) and cut the service.
            opts=pulumi.ResourceOptions(
                parent=self, ignore_changes=["properties.traffic", "properties.mirrorTraffic"]
            ),
        )

        def role(
            suffix: str, principal: pulumi.Output[str], scope: pulumi.Output[str], role_id: str
        ) -> authorization.RoleAssignment:
            return authorization.RoleAssignment(
                f"{name}-{suffix}",
                principal_id=principal,
                principal_type=authorization.PrincipalType.SERVICE_PRINCIPAL,
                role_definition_id=client.subscription_id.apply(
                    lambda sub: f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{role_id}"
                ),
                scope=scope,
                opts=child,
            )

        endpoint_principal = self.endpoint.identity.apply(lambda i: i.principal_id)
        workspace_principal = self.workspace.identity.apply(lambda i: i.principal_id)
        self.role_assignments = [
            # The deployment's container image is built into this registry; the endpoint's
            # identity pulls it when an instance starts.
            role("endpoint-acr-pull", endpoint_principal, self.container_registry.id, ACR_PULL),
            # Registered models live in the workspace's blob storage; the endpoint's identity
            # downloads the model into each instance.
            role("endpoint-blob-read", endpoint_principal, self.storage_account.id, STORAGE_BLOB_DATA_READER),
            # The workspace builds environment images and pushes them to its registry.
            role("workspace-acr-push", workspace_principal, self.container_registry.id, ACR_PUSH),
            # The workspace writes job outputs and model files into its storage.
            role("workspace-blob-write", workspace_principal, self.storage_account.id, STORAGE_BLOB_DATA_CONTRIBUTOR),
        ]

        self.budget = self._budget(name, s) if s.budget_emails else None

        self.outputs = PlatformOutputs(
            subscription_id=client.subscription_id,
            tenant_id=client.tenant_id,
            resource_group=rg,
            workspace_name=ws,
            compute_name=self.compute.name,
            compute_max_nodes=s.max_nodes,
            endpoint_name=self.endpoint.name,
            endpoint_auth_mode=s.endpoint_auth_mode,
            scoring_uri=self.endpoint.properties.apply(lambda p: p.scoring_uri),
            location=s.location,
            studio_url=pulumi.Output.all(client.subscription_id, rg, ws, client.tenant_id).apply(
                lambda a: f"{STUDIO}/?wsid=/subscriptions/{a[0]}/resourceGroups/{a[1]}"
                f"/providers/Microsoft.MachineLearningServices/workspaces/{a[2]}&tid={a[3]}"
            ),
        )
        self.register_outputs(self.outputs.as_dict())

    def _budget(self, name: str, s: PlatformSettings) -> consumption.Budget:
        """A monthly cost budget on the resource group that mails the configured people."""
        notifications = {
            f"actual-{percent}": consumption.NotificationArgs(
                enabled=True, operator=consumption.OperatorType.GREATER_THAN_OR_EQUAL_TO, threshold=percent,
                threshold_type=consumption.ThresholdType.ACTUAL, contact_emails=list(s.budget_emails),
            )
            for percent in s.budget_alert_percents
        }
        # A forecast alert warns before the money is spent, not after.
        notifications["forecast-100"] = consumption.NotificationArgs(
            enabled=True, operator=consumption.OperatorType.GREATER_THAN_OR_EQUAL_TO, threshold=100,
            threshold_type=consumption.ThresholdType.FORECASTED, contact_emails=list(s.budget_emails),
        )
        return consumption.Budget(
            f"{name}-budget",
            budget_name=self.resource_group.name.apply(lambda rg: f"budget-{rg}"[:63]),
            scope=self.resource_group.id,
            amount=s.budget_amount,
            category=consumption.CategoryType.COST,
            time_grain=consumption.TimeGrainType.MONTHLY,
            # Azure wants the first day of a month; the month the stack was created in. Later runs
            # must not move it, or every `pulumi up` in a new month would show a change.
            time_period=consumption.BudgetTimePeriodArgs(start_date=date.today().strftime("%Y-%m-01T00:00:00Z")),
            notifications=notifications,
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["timePeriod"]),
        )
