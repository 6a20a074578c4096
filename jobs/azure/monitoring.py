"""Azure: the deployment's data collector, and a model monitoring schedule with the local signals.

Sources (one line each):
- data collector, `model_inputs`/`model_outputs`, azureml-ai-monitoring in the environment: Azure ML docs,
  how-to-collect-production-data ("Perform custom logging for model monitoring").
- the schedule's shape (trigger, serverless Spark compute, monitoring_target.endpoint_deployment_id,
  data_drift with training reference_data, alert_notification.emails): azureml-examples
  cli/monitoring/advanced-model-monitoring.yaml and out-of-box-monitoring.yaml.
- the metric names and defaults: azure-ai-ml 1.35.2 entities/_monitoring/thresholds.py (see jobs/monitoring/drift.py).
- the production data assets: what the deployment records (data_collector.collections[c].data, the ARM id of
  the data asset azure-ai-ml registers for each collection at deploy time: operations/_online_deployment_
  operations.py _register_collection_data_assets, and read back the same way by
  operations/_schedule_operations.py _resolve_monitor_schedule_arm_id).
- alert mails: a monitoring run whose features breach a threshold ends as a failed run ("has failed due to
  one or more features violating metric thresholds": how-to-monitor-model-performance, Event Grid section);
  the SDK sends emailOn [JobFailed, JobCompleted] (entities/_monitoring/alert_notification.py), the
  2023-06-01-preview NotificationSetting.emailOn takes JobCompleted | JobFailed | JobCancelled.
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass
from typing import Any

from jobs.errors import JobsError
from jobs.monitoring.check import CATEGORICAL, PREDICTION, Thresholds

MONITOR_NAME = "heart_failure_monitoring"
# azureml-ai-monitoring's only release (PyPI); added to the deployment's environment with --collect only,
# so the default scoring environment (and scoring/constraints.txt) stays as it is.
MONITORING_PACKAGE = "azureml-ai-monitoring==1.0.0"
COLLECTIONS = ("model_inputs", "model_outputs")
# The tag a schedule carries while it is disabled because its deployment collects nothing; a later deploy with
# --collect turns it back on only then, never a schedule someone disabled by hand.
DISABLED_TAG = "disabled-by-deploy"
# azure-rest-api-specs machinelearningservices NotificationSetting.emails: "a limitation of 499 characters in total".
MAX_EMAIL_CHARS = 499
# "JobFailed" only: a breached threshold (an alert) and a broken run both end as failed runs; "JobCompleted"
# would mail every recipient after every clean daily run.
EMAIL_ON = ("JobFailed",)
_DATA_ARM_ID = re.compile(r"/workspaces/[^/]+/data/(?P<name>[^/]+)/versions/(?P<version>[^/]+)$", re.IGNORECASE)
# Serverless Spark for the monitoring job, as the azureml-examples schedules use.
SPARK_INSTANCE_TYPE = "standard_e4s_v3"
SPARK_RUNTIME = "3.4"


def email_problems(emails: list[str]) -> list[str]:
    """Why `emails` cannot receive the schedule's alerts ([] when they can): each address that is not one (the
    pattern infra/settings.py checks the budget's addresses with), and Azure ML's cap on their total length."""
    from infra.settings import EMAIL_PATTERN

    problems = [f"--email {e!r} is not an email address" for e in emails if not EMAIL_PATTERN.match(e)]
    if len(",".join(emails)) > MAX_EMAIL_CHARS:
        problems.append(
            f"the --email addresses take {len(','.join(emails))} characters together; Azure ML allows at most "
            f"{MAX_EMAIL_CHARS} in total: send the alerts to a distribution list instead"
        )
    return problems


def with_collection(conda: dict[str, Any], collect: bool) -> dict[str, Any]:
    """The deployment's conda environment, plus azureml-ai-monitoring when collection is on."""
    if not collect:
        return conda
    conda = copy.deepcopy(conda)
    pip = next(d for d in conda["dependencies"] if isinstance(d, dict) and "pip" in d)["pip"]
    if not any(str(req).lower().startswith("azureml-ai-monitoring") for req in pip):
        pip.append(MONITORING_PACKAGE)
    return conda


def data_collector(collect: bool) -> Any:
    """The deployment's DataCollector with the two collections score.py feeds, or None."""
    if not collect:
        return None
    from azure.ai.ml.entities import DataCollector, DeploymentCollection

    return DataCollector(collections={name: DeploymentCollection(enabled="true") for name in COLLECTIONS})


def collection_variables(collect: bool) -> dict[str, str]:
    """What turns scoring/collect.py's Azure mode on in the deployment."""
    return {"HEART_FAILURE_COLLECT": "azure"} if collect else {}


def collected_assets(deployment: Any) -> dict[str, str]:
    """{collection: "azureml:<name>:<version>"} for each of COLLECTIONS whose data asset `deployment` (an
    OnlineDeployment as Azure returns it) records; empty for a deployment that collects nothing.

    The asset is the one azure-ai-ml registered when the deployment was created (the module docstring):
    named `<endpoint>-<deployment>-<collection>`, version 1, unless the deployment named its own. Read, not
    rebuilt from the names. A collection without a recorded asset counts as not collected: the SDK's own
    schedule code could not resolve it either.
    """
    collector = getattr(deployment, "data_collector", None)
    collections = getattr(collector, "collections", None) or {}
    found = {}
    for name in COLLECTIONS:
        data = getattr(collections.get(name), "data", None)
        if isinstance(data, str):
            match = _DATA_ARM_ID.search(data)
            if match:
                found[name] = f"azureml:{match['name']}:{match['version']}"
            elif data.startswith("azureml:") and data.count(":") == 2:
                found[name] = data
    return found


def alert_notification(emails: list[str]) -> Any:
    """The schedule's e-mail alert for `emails`, sent on failed runs only (EMAIL_ON), or None for no e-mail.

    azure-ai-ml's AlertNotification takes no emailOn and always sends [JobFailed, JobCompleted]
    (entities/_monitoring/alert_notification.py, 1.35.2); this subclass sends the same envelope with EMAIL_ON.
    tests/jobs/test_wire_deploy.py checks the body on the wire, so an SDK that changes the envelope fails there.
    """
    if not emails:
        return None
    from azure.ai.ml.entities import AlertNotification

    class FailedRunsOnly(AlertNotification):
        def _to_rest_object(self) -> dict[str, Any]:
            body: dict[str, Any] = super()._to_rest_object()
            body["emailNotificationSetting"].email_on = list(EMAIL_ON)
            return body

    return FailedRunsOnly(emails=list(emails))


def _signals(thresholds: Thresholds, data_ref: str, assets: dict[str, str], window_days: int) -> dict[str, Any]:
    from azure.ai.ml import Input
    from azure.ai.ml.constants import MonitorDatasetContext
    from azure.ai.ml.entities import (
        BaselineDataRange,
        CategoricalDriftMetrics,
        DataDriftMetricThreshold,
        DataDriftSignal,
        NumericalDriftMetrics,
        PredictionDriftMetricThreshold,
        PredictionDriftSignal,
        ProductionData,
        ReferenceData,
    )

    def reference() -> Any:
        return ReferenceData(
            input_data=Input(type="mltable", path=data_ref),
            data_context=MonitorDatasetContext.TRAINING,
            data_column_names={"target_column": PREDICTION},
        )

    def production(collection: str) -> Any:
        # Named, not left to the SDK's default (which would also set the window to "default"), so that
        # re-pointing after a swap moves it too (azureml-examples cli/monitoring/model-monitoring-with-
        # collected-data.yaml); the asset is the one the deployment records (collected_assets).
        return ProductionData(
            input_data=Input(type="uri_folder", path=assets[collection]),
            data_context=MonitorDatasetContext(collection),
            data_window=BaselineDataRange(lookback_window_size=f"P{window_days}D", lookback_window_offset="P0D"),
        )

    return {
        "data_drift": DataDriftSignal(
            production_data=production("model_inputs"),
            reference_data=reference(),
            features="all_features",
            alert_enabled=True,
            # The five booleans arrive as 0/1 numbers; without the override they would be numerical.
            feature_type_override=dict.fromkeys(CATEGORICAL, "categorical"),
            metric_thresholds=DataDriftMetricThreshold(
                # The key is one of the float metric keywords (Thresholds.problems checks it), never `metric`;
                # mypy types a **{str: float} as possibly also `metric` (a str keyword), hence the ignore.
                numerical=NumericalDriftMetrics(**{thresholds.numerical_metric: thresholds.numerical}),  # type: ignore[arg-type]
                categorical=CategoricalDriftMetrics(**{thresholds.categorical_metric: thresholds.categorical}),
            ),
        ),
        "prediction_drift": PredictionDriftSignal(
            production_data=production("model_outputs"),
            reference_data=reference(),
            alert_enabled=True,
            metric_thresholds=PredictionDriftMetricThreshold(
                categorical=CategoricalDriftMetrics(**{thresholds.categorical_metric: thresholds.prediction})
            ),
        ),
    }


def schedule(
    endpoint: str,
    deployment: str,
    data_ref: str,
    thresholds: Thresholds,
    emails: list[str],
    window_hours: float = 24 * 7,
    assets: dict[str, str] | None = None,
) -> Any:
    """A daily MonitorSchedule for endpoint/deployment, training data `data_ref` (azureml:name:version) as reference,
    the collected data `assets` (collected_assets of the deployment; None: the names azure-ai-ml registers by
    default, for a dry run that has no deployment to read) as production data; alert mails on failed runs only.

    Raises JobsError for thresholds or emails Azure would refuse.
    """
    from azure.ai.ml.constants import TimeZone
    from azure.ai.ml.entities import (
        MonitorDefinition,
        MonitoringTarget,
        MonitorSchedule,
        RecurrencePattern,
        RecurrenceTrigger,
        ServerlessSparkCompute,
    )

    from jobs.options import problems as bound_problems

    problems = thresholds.problems() + email_problems(emails) + bound_problems({"window_hours": window_hours})
    if problems:
        raise JobsError("invalid monitoring settings:\n  - " + "\n  - ".join(problems))
    definition = MonitorDefinition(
        compute=ServerlessSparkCompute(instance_type=SPARK_INSTANCE_TYPE, runtime_version=SPARK_RUNTIME),
        monitoring_target=MonitoringTarget(
            ml_task="classification", endpoint_deployment_id=f"azureml:{endpoint}:{deployment}"
        ),
        # Azure's lookback window is in whole days: --window-hours rounded up.
        monitoring_signals=_signals(
            thresholds,
            data_ref,
            assets or {c: f"azureml:{endpoint}-{deployment}-{c}:1" for c in COLLECTIONS},
            math.ceil(window_hours / 24),
        ),
        alert_notification=alert_notification(emails),
    )
    return MonitorSchedule(
        name=MONITOR_NAME,
        display_name="Heart-failure model monitoring",
        description="Data and prediction drift of the live deployment against the training data "
        "(python -m jobs monitor --target azure; re-pointed by every blue/green deploy)",
        trigger=RecurrenceTrigger(
            frequency="day", interval=1, schedule=RecurrencePattern(hours=3, minutes=15), time_zone=TimeZone.UTC
        ),
        create_monitor=definition,
        tags={"managed-by": "python -m jobs monitor"},
    )


@dataclass(frozen=True)
class Retarget:
    """What a deploy does to the schedule: `schedule` to send (None: nothing changes) and `message` to say."""

    schedule: Any
    message: str


def retarget(existing: Any, endpoint: str, deployment: str, assets: dict[str, str]) -> Retarget:
    """The schedule `existing` re-pointed at `deployment`, the one that now takes the traffic, with `assets`
    (collected_assets of that deployment) as production data.

    A deployment that collects nothing has no data to compare: the schedule is disabled (and tagged
    DISABLED_TAG) rather than pointed at an asset that does not exist, whose daily run would fail and mail.
    A later collecting deployment enables it again only if it carries that tag. The alert e-mail is re-sent
    on failed runs only (the schedule read back from Azure carries the SDK's plain AlertNotification).
    """
    definition = existing.create_monitor
    target = definition.monitoring_target
    wanted = f"azureml:{endpoint}:{deployment}"
    collects = all(c in assets for c in COLLECTIONS)
    was_enabled = existing.is_enabled is not False
    tags = dict(existing.tags or {})
    if target.endpoint_deployment_id == wanted and collects == was_enabled:
        return Retarget(None, f"monitoring schedule {existing.name} already watches deployment {deployment}")
    target.endpoint_deployment_id = wanted
    # begin_disable/begin_enable are get, _is_enabled, begin_create_or_update (operations/_schedule_operations.py,
    # 1.35.2); set here so that one PUT moves the target too: their own PUT would resolve the old target, the
    # deployment just deleted (_resolve_monitor_schedule_arm_id GETs it), and send the SDK's emailOn again.
    if collects:
        for signal in definition.monitoring_signals.values():
            production = getattr(signal, "production_data", None)
            if production is not None and production.data_context in COLLECTIONS:
                production.input_data.path = assets[production.data_context]
        message = f"monitoring schedule {existing.name} now watches deployment {deployment}"
        if not was_enabled and DISABLED_TAG in tags:
            existing._is_enabled = True
            tags.pop(DISABLED_TAG)
            message += ", enabled again (its data is collected)"
        elif not was_enabled:
            message += "; it stays disabled, as it was disabled outside this tool (`az ml schedule enable`)"
    else:
        existing._is_enabled = False
        tags[DISABLED_TAG] = f"deployment {deployment} collects no data"
        message = (
            f"monitoring schedule {existing.name} disabled: deployment {deployment} collects no data (deployed "
            f"without --collect), so there is nothing to compare; deploy with --collect to enable it again"
        )
    existing.tags = tags
    emails = getattr(definition.alert_notification, "emails", None)
    if emails and not isinstance(definition.alert_notification, str):
        definition.alert_notification = alert_notification(list(emails))
    return Retarget(existing, message)
