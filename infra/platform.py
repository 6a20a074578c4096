"""The Azure ML platform as one Pulumi component.

Resource group, storage, key vault, Log Analytics + Application Insights, container registry,
the ML workspace linked to all four, a compute cluster that scales to zero and a managed online
endpoint (without deployments: `jobs/` owns those), and the lifecycle rule that expires the
endpoint's collected production data. Each concern has its builder in
`infra/builders/`; this component calls them in order and parents everything under itself.

No role assignment is declared here: every identity in the stack is system-assigned, and Azure ML
grants those identities their roles itself (see the comments at each identity). Declaring the
same (scope, principal, role) again fails with RoleAssignmentExists.

Some settings can be chosen only when the stack is created, because Azure cannot apply a change in
place without cutting service; `FixedAtCreation` (infra/builders/checks.py) refuses such a change
with a message that says what to do instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_azure_native import authorization

from infra.builders import checks
from infra.builders.budget import budget
from infra.builders.compute import compute, max_nodes
from infra.builders.endpoint import endpoint
from infra.builders.group import names_from, resource_group, stack_suffix
from infra.builders.monitoring import monitoring
from infra.builders.registry import registry
from infra.builders.scope import Scope
from infra.builders.storage import collected_data_retention, storage_and_secrets
from infra.builders.workspace import workspace
from infra.settings import PlatformSettings

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


class MlPlatform(pulumi.ComponentResource):
    """Everything `pulumi up` creates, parented under one component."""

    def __init__(self, name: str, settings: PlatformSettings, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("heartfailure:platform:MlPlatform", name, None, opts)
        self.suffix = stack_suffix(name, settings, parent=self)
        # Every name waits for this, so a refused change stops the program before any resource is
        # registered with a changed input (infra/builders/checks.py says why that matters).
        checked = checks.preflight(settings, self.suffix, parent=self)
        scope = Scope(name, settings, names_from(checked, settings), parent=self)
        client = authorization.get_client_config_output(opts=pulumi.InvokeOutputOptions(parent=self))

        self.resource_group = resource_group(scope)
        store = storage_and_secrets(scope, self.resource_group, client.tenant_id)
        self.storage_account, self.key_vault = store.account, store.key_vault
        monitor = monitoring(scope, self.resource_group)
        self.log_analytics, self.app_insights = monitor.log_analytics, monitor.app_insights
        self.container_registry = registry(scope, self.resource_group)
        self.workspace = workspace(scope, self.resource_group, store, self.app_insights, self.container_registry)
        # jobs deploy --collect: the collected production data is deleted after collectedDataRetentionDays.
        self.collected_data_policy = collected_data_retention(
            scope, self.resource_group, self.storage_account, self.workspace.workspace_id
        )
        cluster = compute(scope, self.resource_group, self.workspace)
        self.cluster_suffix, self.compute = cluster.suffix, cluster.compute
        self.endpoint = endpoint(scope, self.resource_group, self.workspace)
        self.budget = budget(scope, self.resource_group)

        # Access needs nothing declared (see the module docstring). Past preflight, the second line
        # of checks, on what the resources report.
        location = checked.apply(lambda _: settings.location)
        purge_protection = checks.purge_protection(scope, self.key_vault)
        endpoint_auth_mode = checks.endpoint_settings(scope, self.endpoint, self.resource_group, self.workspace)

        self.outputs = self._outputs(client, location, endpoint_auth_mode)
        self.register_outputs({**self.outputs.as_dict(), "checks": purge_protection})

    def _outputs(
        self,
        client: pulumi.Output[authorization.GetClientConfigResult],
        location: pulumi.Output[str],
        endpoint_auth_mode: pulumi.Output[str],
    ) -> PlatformOutputs:
        """What the stack exports for the job scripts."""
        rg, ws = self.resource_group.name, self.workspace.name
        return PlatformOutputs(
            subscription_id=client.subscription_id,
            tenant_id=client.tenant_id,
            resource_group=rg,
            workspace_name=ws,
            compute_name=self.compute.name,
            # What the cluster has, not what config asks for.
            compute_max_nodes=self.compute.properties.apply(max_nodes),
            endpoint_name=self.endpoint.name,
            endpoint_auth_mode=endpoint_auth_mode,
            scoring_uri=self.endpoint.properties.apply(lambda p: p.scoring_uri),
            location=location,
            studio_url=pulumi.Output.all(client.subscription_id, rg, ws, client.tenant_id).apply(
                lambda a: (
                    f"{STUDIO}/?wsid=/subscriptions/{a[0]}/resourceGroups/{a[1]}"
                    f"/providers/Microsoft.MachineLearningServices/workspaces/{a[2]}&tid={a[3]}"
                )
            ),
        )
