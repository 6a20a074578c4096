"""The AutoML training cluster, which scales to zero when idle."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import pulumi_random as random
from pulumi_azure_native import machinelearningservices as ml
from pulumi_azure_native import resources

from infra.builders.group import random_suffix
from infra.builders.scope import Scope, field_of
from infra.naming import resource_names
from infra.settings import PlatformSettings


@dataclass(frozen=True)
class Cluster:
    """What `compute` creates: the cluster and the random suffix its name carries."""

    suffix: random.RandomString
    compute: ml.Compute


def compute(scope: Scope, group: resources.ResourceGroup, ws: ml.Workspace) -> Cluster:
    """An AmlCompute cluster in the workspace, sized from config, with a system-assigned identity."""
    s = scope.settings
    suffix = _suffix(scope)
    cluster = ml.Compute(
        f"{scope.name}-cluster",
        compute_name=suffix.result.apply(lambda sfx: resource_names(s.project, s.stack, sfx)["compute_cluster"]),
        workspace_name=ws.name,
        resource_group_name=group.name,
        location=s.location,
        # Without the registry's admin user, the cluster pulls the images it builds from the
        # workspace registry with its managed identity, and Azure ML grants a system-assigned
        # cluster identity AcrPull on that registry itself (Azure ML docs,
        # how-to-identity-based-service-authentication, "Azure Container Registry without admin
        # user"). It is also what `disable_local_auth` needs: with it, "only MSI and AAD"
        # authenticate (azure-native Compute docs, from the REST spec), so the cluster must have one.
        identity=ml.ManagedServiceIdentityArgs(type=ml.ManagedServiceIdentityType.SYSTEM_ASSIGNED),
        properties=_aml_compute(s),
        # The cluster never gets an update with changed tags: see Scope.fixed_tags.
        tags=scope.fixed_tags,
        opts=scope.opts(
            replace_on_changes=["properties.properties.vmSize", "properties.properties.vmPriority"],
            # A replaced cluster is left in Azure, not deleted at the end of the same `up`: a job's
            # compute is fixed when it is submitted, so deleting the old cluster would end every job
            # still running or queued on it, and an outputs.json saved before the change would name a
            # cluster that no longer exists. Pulumi then drops it from the state without calling delete
            # (Pulumi docs, resource option retainOnDelete: "when deleting or replacing the resource").
            # At 0 nodes (minNodes 0, the default) it costs nothing; docs/infrastructure.md, "Changing a live stack",
            # says how to delete it once its jobs are done. `pulumi destroy` still removes it, with the
            # resource group it is in (ARM deletes a group's resources with it).
            retain_on_delete=True,
        ),
    )
    return Cluster(suffix=suffix, compute=cluster)


def _suffix(scope: Scope) -> random.RandomString:
    """The random suffix of the cluster's name, re-drawn whenever the cluster's shape (size, priority) changes."""
    s = scope.settings
    # A PUT to an existing AmlCompute applies the scale settings only (REST ClusterUpdateParameters
    # carries nothing else; azure-rest-api-specs issue 18889: a new vmSize is acknowledged and not
    # applied). So the cluster's name carries its own random suffix, re-drawn whenever anything
    # else the program sets changes: the change becomes a new cluster under a new name, created
    # before the old one is let go (see retain_on_delete in `compute`).
    # Re-using the old name is no option: the same issue shows a cluster re-created under its
    # old name coming back with the old size.
    cluster_shape = {"vmSize": s.vm_size, "vmPriority": s.vm_priority}
    # Like every other resource, the suffix waits for the checks (checks.preflight, through the names):
    # a refused change must not re-draw it first.
    checked_shape = scope.names.apply(lambda _: cluster_shape)
    return random_suffix(f"{scope.name}-cluster-suffix", checked_shape, scope.opts())


def _aml_compute(s: PlatformSettings) -> ml.AmlComputeArgs:
    """The cluster's properties from config: size, priority, scale to `minNodes` when idle, no SSH, no local auth."""
    return ml.AmlComputeArgs(
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
    )


def max_nodes(compute_properties: object) -> int:
    """The cluster's max node count, from the Compute resource's `properties` output."""
    aml = field_of(compute_properties, "properties", "properties")
    scale = field_of(aml, "scale_settings", "scaleSettings")
    # A number (a float when it comes through the engine's protobuf Struct); int() makes it whole.
    return int(cast(float, field_of(scale, "max_node_count", "maxNodeCount")))
