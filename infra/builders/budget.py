"""The monthly cost budget on the resource group."""

from __future__ import annotations

from datetime import date

from pulumi_azure_native import consumption, resources

from infra.builders.scope import Scope


def budget(scope: Scope, group: resources.ResourceGroup) -> consumption.Budget | None:
    """A monthly cost budget on the resource group that mails the configured people; None without emails."""
    s = scope.settings
    if not s.budget_emails:
        return None
    notifications = {
        f"actual-{percent}": consumption.NotificationArgs(
            enabled=True,
            operator=consumption.OperatorType.GREATER_THAN_OR_EQUAL_TO,
            threshold=percent,
            threshold_type=consumption.ThresholdType.ACTUAL,
            contact_emails=list(s.budget_emails),
        )
        for percent in s.budget_alert_percents
    }
    # A forecast alert warns before the money is spent, not after.
    notifications["forecast-100"] = consumption.NotificationArgs(
        enabled=True,
        operator=consumption.OperatorType.GREATER_THAN_OR_EQUAL_TO,
        threshold=100,
        threshold_type=consumption.ThresholdType.FORECASTED,
        contact_emails=list(s.budget_emails),
    )
    return consumption.Budget(
        f"{scope.name}-budget",
        budget_name=group.name.apply(lambda rg: f"budget-{rg}"[:63]),
        scope=group.id,
        amount=s.budget_amount,
        category=consumption.CategoryType.COST,
        time_grain=consumption.TimeGrainType.MONTHLY,
        # Azure wants the first day of a month; the month the stack was created in. Later runs
        # must not move it, or every `pulumi up` in a new month would show a change.
        time_period=consumption.BudgetTimePeriodArgs(start_date=date.today().strftime("%Y-%m-01T00:00:00Z")),
        notifications=notifications,
        opts=scope.opts(ignore_changes=["timePeriod"]),
    )
