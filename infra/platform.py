"""The Azure ML platform as one Pulumi component, in one of two kinds (infra/environments.py).

A workspace stack (dev, prod): resource group, storage, key vault, Log Analytics + Application
Insights, container registry, the ML workspace linked to all four, a compute cluster that scales to
zero and a managed online endpoint (without deployments: `jobs/` owns those), and the lifecycle rule
that expires the endpoint's collected production data. With `sharedStack` set, it also reads the shared
Azure ML registry (infra/builders/shared_registry.py) and grants its workspace's and its endpoint's
identities read access on it.

The shared stack: a resource group and the Azure ML registry models are promoted through
(infra/builders/ml_registry.py), and the CI identity's right to share models to it.

Each concern has its builder in `infra/builders/`; this component calls them in order and parents
everything under itself. Both kinds are this one component, so the stack's suffix (and the record of
what it was created as) keeps its URN whatever the kind, and a changed kind is refused.

Role assignments: Azure ML grants every system-assigned identity of a workspace stack its roles on the
workspace's own resources itself (see the comments at each identity), and declaring the same (scope,
principal, role) again fails with RoleAssignmentExists; so the only ones declared are on the shared
registry, where Azure grants nothing by itself (infra/builders/registry_access.py).

Some settings can be chosen only when the stack is created, because Azure cannot apply a change in
place without cutting service; `FixedAtCreation` (infra/builders/checks.py) refuses such a change
with a message that says what to do instead.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi_azure_native import authorization

from infra import outputs as contract
from infra.builders import checks
from infra.builders.budget import budget
from infra.builders.compute import compute, max_nodes
from infra.builders.endpoint import endpoint
from infra.builders.group import names_from, resource_group, stack_suffix
from infra.builders.ml_registry import ml_registry, regions_kept
from infra.builders.monitoring import monitoring
from infra.builders.registry import registry
from infra.builders.registry_access import AZUREML_REGISTRY_USER, READER, grant
from infra.builders.scope import Scope, field_of
from infra.builders.shared_registry import RegistryUse, read_registry
from infra.builders.storage import collected_data_retention, storage_and_secrets
from infra.builders.workspace import workspace
from infra.environments import SHARED, WORKSPACE, Environment
from infra.settings import PlatformSettings

STUDIO = "https://ml.azure.com"


class MlPlatform(pulumi.ComponentResource):
    """Everything `pulumi up` creates, parented under one component; `outputs` is what the stack exports, the
    keys infra/outputs.py declares for its kind (in that order), none of them a secret."""

    outputs: dict[str, pulumi.Output[Any]]

    def __init__(
        self,
        name: str,
        settings: PlatformSettings,
        environment: Environment | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("heartfailure:platform:MlPlatform", name, None, opts)
        env = environment or Environment()
        self.suffix = stack_suffix(name, settings, parent=self, kind=env.kind)
        # Every name waits for this, so a refused change stops the program before any resource is
        # registered with a changed input (infra/builders/checks.py says why that matters).
        checked = checks.preflight(settings, self.suffix, parent=self, kind=env.kind)
        # So does the registry: one that cannot serve this stack, or a region config takes out of it.
        registry_check = self._registry_check(name, settings, env)
        if registry_check is not None:
            checked = pulumi.Output.all(checked, registry_check).apply(lambda args: str(args[0]))
        scope = Scope(name, settings, names_from(checked, settings), parent=self)
        client = authorization.get_client_config_output(opts=pulumi.InvokeOutputOptions(parent=self))
        self.resource_group = resource_group(scope)
        if env.is_shared:
            self.outputs = self._shared(scope, env, client, checked)
            self.register_outputs(self.outputs)
            return

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
        self.registry_grants = self._registry_grants(scope, client) if self.registry_use else []

        # Past preflight, the second line of checks, on what the resources report.
        location = checked.apply(lambda _: settings.location)
        purge_protection = checks.purge_protection(scope, self.key_vault)
        endpoint_auth_mode = checks.endpoint_settings(scope, self.endpoint, self.resource_group, self.workspace)

        self.outputs = self._outputs(client, location, endpoint_auth_mode)
        self.register_outputs({**self.outputs, "checks": purge_protection})

    def _registry_check(self, name: str, settings: PlatformSettings, env: Environment) -> pulumi.Output[bool] | None:
        """What the names also wait for: a workspace stack's read of the shared registry, the shared stack's
        check that config keeps the live registry's regions; None for a workspace stack without a registry."""
        self.registry_use: RegistryUse | None = None
        if env.shared_stack:
            self.registry_use = read_registry(name, settings, env, self)
            return self.registry_use.checked
        return regions_kept(name, env, self) if env.is_shared else None

    def _shared(
        self,
        scope: Scope,
        env: Environment,
        client: pulumi.Output[authorization.GetClientConfigResult],
        checked: pulumi.Output[str],
    ) -> dict[str, pulumi.Output[Any]]:
        """The shared stack: the registry, and the CI identity's right to share models to it; its outputs."""
        self.ml_registry = ml_registry(scope, self.resource_group, env)
        self.registry_grants = (
            [
                grant(
                    scope,
                    "ci-registry-user",
                    self.ml_registry.id,
                    client.subscription_id,
                    env.ci_principal_id,
                    AZUREML_REGISTRY_USER,
                )
            ]
            if env.ci_principal_id
            else []
        )
        values: dict[str, pulumi.Output[Any]] = dict(
            subscription_id=client.subscription_id,
            tenant_id=client.tenant_id,
            resource_group=self.resource_group.name,
            location=checked.apply(lambda _: scope.settings.location),
            registry_name=self.ml_registry.name,
            registry_id=self.ml_registry.id,
            # What the registry reports, not what config asks for.
            registry_regions=self.ml_registry.region_details.apply(
                lambda details: [str(field_of(d, "location", "location")) for d in details or []]
            ),
            registry_consumers=checked.apply(lambda _: dict(env.consumers)),
            ci_principal_id=checked.apply(lambda _: env.ci_principal_id),
        )
        return contract.exports(SHARED, values)

    def _registry_grants(
        self, scope: Scope, client: pulumi.Output[authorization.GetClientConfigResult]
    ) -> list[authorization.RoleAssignment]:
        """Read access on the shared registry for the workspace's identity (jobs and image builds that use
        the registry's environments) and the endpoint's (a deployment of a registry model pulls it with
        the endpoint identity); nothing to write or delete there, which only the CI identity may."""
        use = self.registry_use
        assert use is not None
        identities = {
            "workspace-registry-reader": self.workspace.identity,
            "endpoint-registry-reader": self.endpoint.identity,
        }
        return [
            grant(
                scope,
                what,
                use.id,
                client.subscription_id,
                identity.apply(lambda i: str(field_of(i, "principal_id", "principalId"))),
                READER,
            )
            for what, identity in identities.items()
        ]

    def _outputs(
        self,
        client: pulumi.Output[authorization.GetClientConfigResult],
        location: pulumi.Output[str],
        endpoint_auth_mode: pulumi.Output[str],
    ) -> dict[str, pulumi.Output[Any]]:
        """What the workspace stack exports for the job scripts (infra/outputs.py declares each)."""
        rg, ws = self.resource_group.name, self.workspace.name
        use: RegistryUse | None = self.registry_use
        none: pulumi.Output[Any] = location.apply(lambda _: None)
        values: dict[str, pulumi.Output[Any]] = dict(
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
            registry_name=use.name if use else none,
            registry_id=use.id if use else none,
            registry_regions=use.regions if use else none,
        )
        return contract.exports(WORKSPACE, values)
