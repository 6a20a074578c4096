"""Monitoring: a Log Analytics workspace and the workspace-based Application Insights on it."""

from __future__ import annotations

from dataclasses import dataclass

from pulumi_azure_native import applicationinsights, operationalinsights, resources

from infra.builders.scope import Scope


@dataclass(frozen=True)
class Monitoring:
    """What `monitoring` creates."""

    log_analytics: operationalinsights.Workspace
    app_insights: applicationinsights.Component


def monitoring(scope: Scope, group: resources.ResourceGroup) -> Monitoring:
    """Log Analytics (retention from config, in days) and Application Insights ingesting into it."""
    s = scope.settings
    log_analytics = operationalinsights.Workspace(
        f"{scope.name}-logs",
        workspace_name=scope.name_of("log_analytics"),
        resource_group_name=group.name,
        location=s.location,
        sku=operationalinsights.WorkspaceSkuArgs(name=operationalinsights.WorkspaceSkuNameEnum.PER_GB2018),
        retention_in_days=s.log_retention_days,
        tags=scope.tags,
        opts=scope.opts(),
    )
    app_insights = applicationinsights.Component(
        f"{scope.name}-appi",
        resource_name_=scope.name_of("app_insights"),
        resource_group_name=group.name,
        location=s.location,
        kind="web",
        application_type=applicationinsights.ApplicationType.WEB,
        ingestion_mode=applicationinsights.IngestionMode.LOG_ANALYTICS,
        workspace_resource_id=log_analytics.id,
        tags=scope.tags,
        opts=scope.opts(),
    )
    return Monitoring(log_analytics=log_analytics, app_insights=app_insights)
