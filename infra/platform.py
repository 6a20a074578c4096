"""The Azure ML platform as one Pulumi component.

Resource group, storage, key vault, Log Analytics + Application Insights, container registry,
the ML workspace linked to all four, a compute cluster that scales to zero and a managed online
endpoint (without deployments: `jobs/` owns those).

No role assignment is declared here: every identity in the stack is system-assigned, and Azure ML
grants those identities their roles itself (see the comments at each identity). Declaring the
same (scope, principal, role) again fails with RoleAssignmentExists.

Some settings can be chosen only when the stack is created, because Azure cannot apply a change in
place without cutting service; `FixedAtCreation` refuses such a change with a message that says
what to do instead.
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

from infra.collection import collected_data_policy
from infra.naming import SUFFIX_LENGTH, resource_names
from infra.settings import AUTH_MODES, PlatformSettings

# A deleted vault's secrets stay recoverable this long. The interval "can only be configured during
# key vault creation and can't be changed afterwards" (Key Vault soft-delete overview), so it is one
# constant, whatever purge protection says; 90 is Azure's default. The stack never re-uses a vault name, so a
# soft-deleted vault never blocks a re-created stack.
KEY_VAULT_RETENTION_DAYS = 90

STUDIO = "https://ml.azure.com"


@dataclass(frozen=True)
class PlatformOutputs:
    """What the job scripts need from the stack; no secrets."""

    subscription_id: pulumi.Output[str]
    tenant_id: pulumi.Output[str]
    resource_group: pulumi.Output[str]
    workspace_name: pulumi.Output[str]
    compute_name: pulumi.Output[str]
    compute_max_nodes: pulumi.Output[int]
    endpoint_name: pulumi.Output[str]
    endpoint_auth_mode: pulumi.Output[str]
    scoring_uri: pulumi.Output[str]
    location: pulumi.Output[str]
    studio_url: pulumi.Output[str]

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


class FixedAtCreation(pulumi.RunError):
    """A setting changed that Azure cannot change in place without an outage; the message says what to do."""


def _refuse(key: str, recorded: object, wanted: object, why: str, instead: str = "") -> FixedAtCreation:
    """The refusal of a config change from `recorded` (what the stack has) to `wanted`."""
    return FixedAtCreation(
        f"config '{key}' is {wanted!r}, but the stack has {recorded!r}, and {why}. "
        f"{instead + ' ' if instead else ''}To keep {recorded!r}: `pulumi config set {key} {recorded}`."
    )


def _field(node: object, snake: str, camel: str) -> object:
    """A field of a provider output that arrives as a typed object or, for union types, a plain dict."""
    if type(node) is dict:
        return node.get(camel, node.get(snake))
    return getattr(node, snake, None)


def _max_nodes(compute_properties: object) -> int:
    """The cluster's max node count, from the Compute resource's `properties` output."""
    aml = _field(compute_properties, "properties", "properties")
    scale = _field(aml, "scale_settings", "scaleSettings")
    return int(_field(scale, "max_node_count", "maxNodeCount"))  # type: ignore[arg-type]


class MlPlatform(pulumi.ComponentResource):
    """Everything `pulumi up` creates, parented under one component."""

    def __init__(self, name: str, settings: PlatformSettings, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("heartfailure:platform:MlPlatform", name, None, opts)
        s = settings
        child = pulumi.ResourceOptions(parent=self)
        tags = s.tags
        # The cluster and the endpoint never get an update with changed tags (see each), so they
        # carry only the tags that cannot change for a stack; config's extra tags go elsewhere.
        fixed_tags = {key: value for key, value in tags.items() if key in ("project", "stack", "managed-by")}

        # Drawn once per stack lifetime; see infra/naming.py for why names carry it. Its keepers
        # record the settings a stack cannot change, and are never updated (ignore_changes), so
        # the state keeps what the stack was created with; `_fixed` compares config with that.
        self.suffix = random.RandomString(
            f"{name}-suffix", length=SUFFIX_LENGTH, special=False, upper=False, numeric=True, lower=True,
            keepers={"location": s.location},
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["keepers"]),
        )
        names = self.suffix.result.apply(lambda sfx: resource_names(s.project, s.stack, sfx))

        def name_of(kind: str) -> pulumi.Output[str]:
            return names.apply(lambda n: n[kind])

        # Every resource's location is fixed when it is created (ARM refuses to move one), and
        # globally unique names cannot be created twice, so a new region means a new stack.
        location = self.suffix.keepers.apply(lambda recorded: self._fixed(
            "location", (recorded or {}).get("location", s.location), s.location,
            "Azure cannot move a resource to another region",
            "Create a new stack for the new region (`pulumi stack init <name>`), or `pulumi destroy` this one first."))

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
                soft_delete_retention_in_days=KEY_VAULT_RETENTION_DAYS,
                public_network_access=s.public_network_access,
            ),
            tags=tags,
            # While config says "off", the vault keeps whatever it has: a vault that had purge
            # protection keeps it (Azure ignores a PUT without it), and the state keeps saying so,
            # which lets `_fixed` refuse the change instead of reporting a success that is not one.
            opts=pulumi.ResourceOptions(
                parent=self,
                ignore_changes=[] if s.key_vault_purge_protection else ["properties.enablePurgeProtection"],
            ),
        )
        purge_protection = self.key_vault.properties.apply(lambda p: self._fixed(
            "keyVaultPurgeProtection", "true" if _field(p, "enable_purge_protection", "enablePurgeProtection")
            else "false", "true" if s.key_vault_purge_protection else "false",
            "Azure cannot switch purge protection off once it is on (Key Vault soft-delete overview)"))

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
            # Azure ML creates this identity's role assignments on the four linked resources itself
            # (Azure ML docs, how-to-identity-based-service-authentication: for a system-assigned
            # workspace identity "role assignment creation: managed by Microsoft"); the job outputs and
            # models go to the default datastore, which Azure ML reaches with the account key it keeps
            # in the key vault. Nothing is left for the program to grant.
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

        # jobs deploy --collect: the collected production data is deleted after collectedDataRetentionDays.
        self.collected_data_policy = collected_data_policy(
            name, self.storage_account.name, rg, self.workspace.workspace_id, s.collected_data_retention_days, child)

        # A PUT to an existing AmlCompute applies the scale settings only (REST ClusterUpdateParameters
        # carries nothing else; azure-rest-api-specs issue 18889: a new vmSize is acknowledged and not
        # applied). So the cluster's name carries its own random suffix, re-drawn whenever anything
        # else the program sets changes: the change becomes a new cluster under a new name, created
        # before the old one is deleted (an idle cluster at 0 nodes costs nothing to re-create).
        # Re-using the old name is no option: the same issue shows a cluster re-created under its
        # old name coming back with the old size.
        cluster_shape = {"vmSize": s.vm_size, "vmPriority": s.vm_priority}
        self.cluster_suffix = random.RandomString(
            f"{name}-cluster-suffix", length=SUFFIX_LENGTH, special=False, upper=False, numeric=True, lower=True,
            keepers=cluster_shape, opts=child,
        )
        self.compute = ml.Compute(
            f"{name}-cluster",
            compute_name=self.cluster_suffix.result.apply(
                lambda sfx: resource_names(s.project, s.stack, sfx)["compute_cluster"]),
            workspace_name=ws,
            resource_group_name=rg,
            location=s.location,
            # Without the registry's admin user, the cluster pulls the images it builds from the
            # workspace registry with its managed identity, and Azure ML grants a system-assigned
            # cluster identity AcrPull on that registry itself (Azure ML docs,
            # how-to-identity-based-service-authentication, "Azure Container Registry without admin
            # user"). It is also what `disable_local_auth` needs: with it, "only MSI and AAD"
            # authenticate (azure-native Compute docs, from the REST spec), so the cluster must have one.
            identity=ml.ManagedServiceIdentityArgs(type=ml.ManagedServiceIdentityType.SYSTEM_ASSIGNED),
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
            tags=fixed_tags,
            opts=pulumi.ResourceOptions(
                parent=self,
                replace_on_changes=["properties.properties.vmSize", "properties.properties.vmPriority"],
            ),
        )

        # The endpoint is never updated by the program after it is created. Any update is a PUT,
        # and a PUT without `traffic` resets the endpoint's traffic to nothing, cutting the live
        # deployment that `jobs deploy` put there; `ignore_changes` on `properties.traffic` alone
        # only hides that in the diff, the PUT still goes out when another property changes.
        # Auth mode and network access are changed with `az ml online-endpoint update` (it reads
        # the endpoint and sends its traffic back); `_fixed` refuses a config change that the
        # endpoint does not have yet and says so.
        self.endpoint = ml.OnlineEndpoint(
            f"{name}-endpoint",
            endpoint_name=name_of("online_endpoint"),
            workspace_name=ws,
            resource_group_name=rg,
            location=s.location,
            # A system-assigned endpoint identity gets AcrPull on the workspace registry and Storage
            # Blob Data Reader on its default datastore from Azure ML when the endpoint is created
            # (Azure ML docs, concept-endpoints-online-auth, "Automatic role assignment for endpoint
            # identity"): exactly what a deployment needs to pull its image and download the model.
            identity=ml.ManagedServiceIdentityArgs(type=ml.ManagedServiceIdentityType.SYSTEM_ASSIGNED),
            properties=ml.OnlineEndpointPropertiesArgs(
                auth_mode=s.endpoint_auth_mode,
                public_network_access=s.public_network_access,
                description="Scores heart-failure records; deployments are managed by `python -m jobs deploy`.",
            ),
            tags=fixed_tags,
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["properties", "tags", "identity"]),
        )
        endpoint_update = (
            "Change it on the endpoint with `az ml online-endpoint update --name {endpoint} --resource-group {rg} "
            "--workspace-name {ws} --set {field}={value}` (it sends the live traffic back), then run `pulumi "
            "refresh` so the stack records it."
        )

        def endpoint_settings(args: list[object]) -> str:
            props, endpoint, group, workspace = args
            auth_mode = _field(props, "auth_mode", "authMode")
            reverse = {azure: key for key, azure in AUTH_MODES.items()}
            if auth_mode != s.endpoint_auth_mode:
                raise _refuse("endpointAuthMode", reverse.get(auth_mode, auth_mode),
                              reverse.get(s.endpoint_auth_mode, s.endpoint_auth_mode),
                              "an update of the endpoint from `pulumi up` would cut its live traffic",
                              endpoint_update.format(endpoint=endpoint, rg=group, ws=workspace, field="auth_mode",
                                                     value=reverse.get(s.endpoint_auth_mode)))
            network = _field(props, "public_network_access", "publicNetworkAccess")
            if network is not None and network != s.public_network_access:
                raise _refuse("publicNetworkAccess", network, s.public_network_access,
                              "an update of the endpoint from `pulumi up` would cut its live traffic",
                              endpoint_update.format(endpoint=endpoint, rg=group, ws=workspace,
                                                     field="public_network_access",
                                                     value=s.public_network_access.lower()))
            return str(auth_mode)  # Azure's spelling (Key, AADToken), as the stack always exported it

        endpoint_auth_mode = pulumi.Output.all(self.endpoint.properties, self.endpoint.name, rg, ws).apply(
            endpoint_settings)

        self.budget = self._budget(name, s) if s.budget_emails else None

        self.outputs = PlatformOutputs(
            subscription_id=client.subscription_id,
            tenant_id=client.tenant_id,
            resource_group=rg,
            workspace_name=ws,
            compute_name=self.compute.name,
            # What the cluster has, not what config asks for.
            compute_max_nodes=self.compute.properties.apply(_max_nodes),
            endpoint_name=self.endpoint.name,
            endpoint_auth_mode=endpoint_auth_mode,
            scoring_uri=self.endpoint.properties.apply(lambda p: p.scoring_uri),
            location=location,
            studio_url=pulumi.Output.all(client.subscription_id, rg, ws, client.tenant_id).apply(
                lambda a: f"{STUDIO}/?wsid=/subscriptions/{a[0]}/resourceGroups/{a[1]}"
                f"/providers/Microsoft.MachineLearningServices/workspaces/{a[2]}&tid={a[3]}"
            ),
        )
        self.register_outputs({**self.outputs.as_dict(), "checks": purge_protection})

    @staticmethod
    def _fixed(key: str, recorded: object, wanted: object, why: str, instead: str = "") -> object:
        """`recorded` when it equals `wanted`; otherwise refuse the change (FixedAtCreation)."""
        if recorded != wanted:
            raise _refuse(key, recorded, wanted, why, instead)
        return recorded

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
