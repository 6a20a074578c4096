"""Azure: the deployment's data collector, and a model monitoring schedule with the local signals.

Sources (one line each):
- data collector, `model_inputs`/`model_outputs`, azureml-ai-monitoring in the environment: Azure ML docs,
  how-to-collect-production-data ("Perform custom logging for model monitoring").
- the schedule's shape (trigger, serverless Spark compute, monitoring_target.endpoint_deployment_id,
  data_drift with training reference_data, alert_notification.emails): azureml-examples
  cli/monitoring/advanced-model-monitoring.yaml and out-of-box-monitoring.yaml.
- the metric names and defaults: azure-ai-ml 1.35.2 entities/_monitoring/thresholds.py (see drift.py).
"""

from __future__ import annotations

import copy
import math
import re
from typing import Any

from jobs.errors import JobsError
from jobs.monitoring.check import CATEGORICAL, PREDICTION, Thresholds

MONITOR_NAME = "heart_failure_monitoring"
# azureml-ai-monitoring's only release (PyPI); added to the deployment's environment with --collect only,
# so the default scoring environment (and scoring/constraints.txt) stays as it is.
MONITORING_PACKAGE = "azureml-ai-monitoring==1.0.0"
COLLECTIONS = ("model_inputs", "model_outputs")
# Serverless Spark for the monitoring job, as the azureml-examples schedules use.
SPARK_INSTANCE_TYPE = "standard_e4s_v3"
SPARK_RUNTIME = "3.4"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


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


def collected_data(endpoint: str, deployment: str, collection: str) -> str:
    """The data asset Azure ML registers for a deployment's collection (how-to-collect-production-data:
    "<endpoint_name>-<deployment_name>-model_inputs"); version 1, as the docs' examples name it."""
    return f"azureml:{endpoint}-{deployment}-{collection}:1"


def _signals(thresholds: Thresholds, data_ref: str, endpoint: str, deployment: str, window_days: int) -> dict[str, Any]:
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
        # Named, not left to the service's default, so that re-pointing after a swap moves it too
        # (azureml-examples cli/monitoring/model-monitoring-with-collected-data.yaml).
        path = collected_data(endpoint, deployment, collection)
        return ProductionData(
            input_data=Input(type="uri_folder", path=path),
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
) -> Any:
    """A daily MonitorSchedule for endpoint/deployment, training data `data_ref` (azureml:name:version) as reference.

    Raises JobsError for thresholds or emails Azure would refuse.
    """
    from azure.ai.ml.constants import TimeZone
    from azure.ai.ml.entities import (
        AlertNotification,
        MonitorDefinition,
        MonitoringTarget,
        MonitorSchedule,
        RecurrencePattern,
        RecurrenceTrigger,
        ServerlessSparkCompute,
    )

    problems = thresholds.problems() + [f"--email {e!r} is not an email address" for e in emails if not _EMAIL.match(e)]
    if not window_hours > 0:
        problems.append(f"--window-hours {window_hours} must be above 0")
    if problems:
        raise JobsError("invalid monitoring settings:\n  - " + "\n  - ".join(problems))
    definition = MonitorDefinition(
        compute=ServerlessSparkCompute(instance_type=SPARK_INSTANCE_TYPE, runtime_version=SPARK_RUNTIME),
        monitoring_target=MonitoringTarget(
            ml_task="classification", endpoint_deployment_id=f"azureml:{endpoint}:{deployment}"
        ),
        # Azure's lookback window is in whole days: --window-hours rounded up.
        monitoring_signals=_signals(thresholds, data_ref, endpoint, deployment, math.ceil(window_hours / 24)),
        alert_notification=AlertNotification(emails=list(emails)) if emails else None,
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


def repoint(existing: Any, endpoint: str, deployment: str) -> Any | None:
    """The schedule re-targeted at the deployment that now takes the traffic; None when already so."""
    target = existing.create_monitor.monitoring_target
    wanted = f"azureml:{endpoint}:{deployment}"
    if target.endpoint_deployment_id == wanted:
        return None
    target.endpoint_deployment_id = wanted
    for signal in existing.create_monitor.monitoring_signals.values():
        production = getattr(signal, "production_data", None)
        if production is not None and production.data_context in COLLECTIONS:
            production.input_data.path = collected_data(endpoint, deployment, production.data_context)
    return existing
