"""The managed online endpoint, without deployments: `jobs/` owns those."""

from __future__ import annotations

from pulumi_azure_native import machinelearningservices as ml
from pulumi_azure_native import resources

from infra.builders.scope import Scope


def endpoint(scope: Scope, group: resources.ResourceGroup, ws: ml.Workspace) -> ml.OnlineEndpoint:
    """The endpoint with a system-assigned identity; auth mode and network access from config at creation.

    The endpoint is never updated by the program after it is created. Any update is a PUT,
    and a PUT without `traffic` resets the endpoint's traffic to nothing, cutting the live
    deployment that `jobs deploy` put there; `ignore_changes` on `properties.traffic` alone
    only hides that in the diff, the PUT still goes out when another property changes.
    Auth mode and network access are changed with `az ml online-endpoint update` (it reads
    the endpoint and sends its traffic back); `infra.builders.checks.endpoint_settings` refuses a
    config change that the endpoint does not have yet and says so.
    """
    s = scope.settings
    return ml.OnlineEndpoint(
        f"{scope.name}-endpoint",
        endpoint_name=scope.name_of("online_endpoint"),
        workspace_name=ws.name,
        resource_group_name=group.name,
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
        tags=scope.fixed_tags,
        opts=scope.opts(ignore_changes=["properties", "tags", "identity"]),
    )
