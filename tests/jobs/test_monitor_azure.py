"""Collection and the monitoring schedule on the Azure target, against the fake MLClient and the real SDK entities."""

from __future__ import annotations

import pytest
import yaml
from azure.core.exceptions import HttpResponseError

from jobs import cli
from jobs.azure import monitoring
from jobs.backend import DeployOptions
from jobs.dataset import DEFAULT_CSV, content_version
from jobs.errors import JobsError
from jobs.monitoring.check import Thresholds
from tests.jobs.test_azure_backend import backend, registered_model, session  # noqa: F401 (fixtures)


def _pip(deployment) -> list[str]:
    conda = deployment.environment.conda_file
    return next(d["pip"] for d in conda["dependencies"] if isinstance(d, dict))


def test_deploy_without_collect_has_no_collector_and_the_default_environment(backend, session):  # noqa: F811
    registered_model(backend, session)
    backend.deploy(None, DeployOptions(threshold=0.3))
    blue = session.ml.deployments["blue"]
    assert blue.data_collector is None
    assert "HEART_FAILURE_COLLECT" not in blue.environment_variables
    assert not any(p.startswith("azureml-ai-monitoring") for p in _pip(blue))


def test_deploy_with_collect_turns_on_both_collections_and_the_collector_package(backend, session):  # noqa: F811
    registered_model(backend, session)
    backend.deploy(None, DeployOptions(collect=True, threshold=0.3))
    blue = session.ml.deployments["blue"]
    assert {name: c.enabled for name, c in blue.data_collector.collections.items()} == {
        "model_inputs": "true",
        "model_outputs": "true",
    }
    assert blue.environment_variables["HEART_FAILURE_COLLECT"] == "azure"
    assert monitoring.MONITORING_PACKAGE in _pip(blue)


def test_a_retried_deployment_with_collection_is_built_afresh(backend, session, monkeypatch):  # noqa: F811
    # DataCollector._to_rest_object deletes its own sampling_rate (azure-ai-ml 1.35.2), so sending
    # the same entity twice, as a retry after a 503 would, raises AttributeError in the SDK.
    registered_model(backend, session)
    original = type(session.ml.online_deployments).begin_create_or_update
    attempts = []

    def flaky(self, deployment, **kwargs):
        attempts.append(deployment)
        if len(attempts) == 1:
            deployment._to_rest_object(location="westeurope")  # the SDK builds the body, then the 503 comes
            error = HttpResponseError(message="status 503")
            error.status_code = 503
            raise error
        return original(self, deployment, **kwargs)

    monkeypatch.setattr(type(session.ml.online_deployments), "begin_create_or_update", flaky)
    assert backend.deploy(None, DeployOptions(collect=True, threshold=0.3)) == "blue"
    assert len(attempts) == 2


def test_monitor_creates_a_schedule_for_the_live_deployment_with_the_training_data(backend, session):  # noqa: F811
    version = registered_model(backend, session)
    backend.deploy(None, DeployOptions(collect=True, threshold=0.3))
    backend.monitor(None, Thresholds(numerical=0.2), 168, None, ["ml-team@example.com"])
    schedule = session.ml.schedules.get(monitoring.MONITOR_NAME)
    definition = schedule.create_monitor
    assert definition.monitoring_target.endpoint_deployment_id == "azureml:hf-dev-abc123:blue"
    drift = definition.monitoring_signals["data_drift"]
    assert drift.reference_data.input_data.path.endswith(
        f"heart-failure-records:{content_version(DEFAULT_CSV, ('time',))}"
    )
    assert drift.metric_thresholds.numerical.normalized_wasserstein_distance == 0.2
    assert drift.metric_thresholds.categorical.jensen_shannon_distance == 0.1
    assert (
        definition.monitoring_signals["prediction_drift"].metric_thresholds.categorical.jensen_shannon_distance == 0.1
    )
    assert definition.alert_notification.emails == ["ml-team@example.com"]
    assert any(f"heart-failure-automl version {version}" in m for m in backend.messages)


def test_a_blue_green_swap_re_points_the_schedule_at_the_new_deployment(backend, session):  # noqa: F811
    registered_model(backend, session)
    backend.deploy(None, DeployOptions(collect=True, threshold=0.3))
    backend.monitor(None, Thresholds(), 168, None, [])
    assert backend.deploy(None, DeployOptions(collect=True, threshold=0.3)) == "green"
    target = session.ml.schedules.get(monitoring.MONITOR_NAME).create_monitor.monitoring_target
    assert target.endpoint_deployment_id == "azureml:hf-dev-abc123:green"
    assert "blue" not in session.ml.deployments
    # The signals and thresholds survive the re-pointing.
    signals = session.ml.schedules.get(monitoring.MONITOR_NAME).create_monitor.monitoring_signals
    assert set(signals) == {"data_drift", "prediction_drift"}
    # ... and so does the production data: the new deployment's collected assets.
    assert signals["data_drift"].production_data.input_data.path.endswith("hf-dev-abc123-green-model_inputs:1")
    assert signals["prediction_drift"].production_data.input_data.path.endswith("hf-dev-abc123-green-model_outputs:1")


def test_a_swap_to_a_deployment_without_collection_disables_the_schedule_and_collect_enables_it(backend, session):  # noqa: F811
    registered_model(backend, session)
    backend.deploy(None, DeployOptions(collect=True, threshold=0.3))
    backend.monitor(None, Thresholds(), 168, None, ["ml-team@example.com"])
    backend.deploy(None, DeployOptions(threshold=0.3))  # green, collecting nothing
    schedule = session.ml.schedules.get(monitoring.MONITOR_NAME)
    assert schedule.is_enabled is False
    assert schedule.tags[monitoring.DISABLED_TAG] == "deployment green collects no data"
    # Pointed at the live deployment (the old one is deleted), its production data left as it was.
    assert schedule.create_monitor.monitoring_target.endpoint_deployment_id == "azureml:hf-dev-abc123:green"
    drift = schedule.create_monitor.monitoring_signals["data_drift"]
    assert drift.production_data.input_data.path.endswith("hf-dev-abc123-blue-model_inputs:1")
    assert any(
        m.startswith("monitoring schedule heart_failure_monitoring disabled: deployment green")
        for m in backend.messages
    )
    backend.deploy(None, DeployOptions(collect=True, threshold=0.3))  # blue again, collecting
    schedule = session.ml.schedules.get(monitoring.MONITOR_NAME)
    assert schedule.is_enabled is True and monitoring.DISABLED_TAG not in schedule.tags
    drift = schedule.create_monitor.monitoring_signals["data_drift"]
    assert drift.production_data.input_data.path.endswith("hf-dev-abc123-blue-model_inputs:1")
    assert schedule.create_monitor.alert_notification.emails == ["ml-team@example.com"]
    assert any(m.endswith("enabled again (its data is collected)") for m in backend.messages)


def test_a_schedule_disabled_by_hand_stays_disabled_after_a_collecting_deploy(backend, session):  # noqa: F811
    registered_model(backend, session)
    backend.deploy(None, DeployOptions(collect=True, threshold=0.3))
    backend.monitor(None, Thresholds(), 168, None, [])
    body = session.ml.schedule_bodies[monitoring.MONITOR_NAME]
    body.properties.is_enabled = False  # `az ml schedule disable`, with no tag of ours
    backend.deploy(None, DeployOptions(collect=True, threshold=0.3))
    schedule = session.ml.schedules.get(monitoring.MONITOR_NAME)
    assert schedule.is_enabled is False
    assert schedule.create_monitor.monitoring_target.endpoint_deployment_id == "azureml:hf-dev-abc123:green"
    assert any("stays disabled, as it was disabled outside this tool" in m for m in backend.messages)


def test_monitor_refuses_more_email_addresses_than_azure_takes(backend, session):  # noqa: F811
    registered_model(backend, session)
    backend.deploy(None, DeployOptions(collect=True, threshold=0.3))
    emails = [f"clinician-{i:02d}@cardiology.example.org" for i in range(20)]  # 35 characters each, 719 with the commas
    with pytest.raises(JobsError, match=r"take 719 characters together; Azure ML allows at most 499 in total"):
        backend.monitor(None, Thresholds(), 168, None, emails)
    assert session.ml.ops("schedules.begin_create_or_update") == []


def test_monitor_refuses_a_deployment_that_collects_nothing_and_bad_emails(backend, session):  # noqa: F811
    registered_model(backend, session)
    with pytest.raises(JobsError, match="no live deployment"):
        backend.monitor(None, Thresholds(), 168, None, [])
    backend.deploy(None, DeployOptions(threshold=0.3))
    with pytest.raises(JobsError, match=r"collects no data \(model_inputs and model_outputs not recorded\); deploy"):
        backend.monitor(None, Thresholds(), 168, None, [])
    backend.deploy(None, DeployOptions(collect=True, threshold=0.3))
    with pytest.raises(JobsError, match="--email 'ml-team' is not an email address"):
        backend.monitor(None, Thresholds(), 168, None, ["ml-team"])
    assert session.ml.ops("schedules.begin_create_or_update") == []


def test_dry_run_writes_deployment_and_schedule_yaml_that_load_back(tmp_path, monkeypatch):
    outputs = tmp_path / "outputs.json"
    outputs.write_text(
        '{"subscription_id": "00000000-0000-0000-0000-0000000000aa", '
        '"resource_group": "rg", "workspace_name": "w", '
        '"endpoint_name": "hf-dev-abc123"}'
    )
    common = ["--target", "azure", "--dry-run", "--out", str(tmp_path / "out"), "--outputs", str(outputs)]
    assert cli.main(["deploy", "--collect", *common]) == 0
    deployment = yaml.safe_load((tmp_path / "out" / "deployment.yml").read_text())
    assert deployment["data_collector"]["collections"]["model_inputs"]["enabled"] in ("true", True, "True")
    assert (
        cli.main(
            [
                "monitor",
                "--email",
                "a@example.com",
                "--categorical-metric",
                "pearsons_chi_squared_test",
                "--categorical-threshold",
                "0.05",
                *common,
            ]
        )
        == 0
    )
    from azure.ai.ml.entities._load_functions import load_schedule

    loaded = load_schedule(str(tmp_path / "out" / "monitor.yml"))
    assert loaded.create_monitor.monitoring_target.endpoint_deployment_id == "azureml:hf-dev-abc123:blue"
    drift = loaded.create_monitor.monitoring_signals["data_drift"]
    assert drift.metric_thresholds.categorical.pearsons_chi_squared_test == 0.05
    assert drift.feature_type_override["anaemia"] == "categorical"


def test_the_pipelines_deploy_step_refuses_collect_rather_than_dropping_it(tmp_path):
    outputs = tmp_path / "outputs.json"
    outputs.write_text(
        '{"subscription_id": "00000000-0000-0000-0000-0000000000aa", '
        '"resource_group": "rg", "workspace_name": "w", '
        '"endpoint_name": "hf-dev-abc123", "compute_name": "c", "compute_max_nodes": 3}'
    )
    code = cli.main(
        [
            "pipeline",
            "--with-deploy",
            "--collect",
            "--target",
            "azure",
            "--dry-run",
            "--out",
            str(tmp_path / "out"),
            "--outputs",
            str(outputs),
        ]
    )
    assert code == 2
    assert not (tmp_path / "out" / "pipeline-job.yml").exists()
