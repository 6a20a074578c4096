"""The monitoring schedule through the real MLClient on the wire (tests/jobs/wire): the production data the
deployment records, alert mails on failed runs only, and a swap to a deployment that collects nothing."""

from __future__ import annotations

import pytest

from jobs.azure import monitoring
from jobs.backend import DeployOptions
from jobs.monitoring.check import Thresholds
from tests.jobs.wire import fixtures, scenario

wire = fixtures.wire
ml = fixtures.ml

ENDPOINT = scenario.ENDPOINT
SCHEDULE = f"/schedules/{monitoring.MONITOR_NAME}"


@pytest.fixture
def backend(wire, ml, tmp_path):
    return scenario.registered(wire, ml, tmp_path)


def schedule_puts(wire):
    return [put.json()["properties"] for put in wire.azure.calls("PUT", SCHEDULE + "$")]


def production_paths(properties):
    signals = properties["action"]["monitorDefinition"]["signals"]
    return {name: signal["productionData"]["uri"] for name, signal in signals.items()}


def recorded_asset(wire, slot, collection):
    """The data asset id the deployment's PUT carried (azure-ai-ml registers it before the PUT)."""
    (put,) = wire.azure.calls("PUT", f"/onlineEndpoints/{ENDPOINT}/deployments/{slot}$")[-1:]
    return put.json()["properties"]["dataCollector"]["collections"][collection]["dataId"]


def test_the_schedule_reads_the_collected_data_assets_the_deployment_records(backend, wire):
    backend.deploy(None, DeployOptions(collect=True, threshold=0.3))
    # azure-ai-ml registers one data asset per collection (PUT data/<name>/versions/1) before the deployment.
    assert wire.azure.resource(f"/data/{ENDPOINT}-blue-model_inputs/versions/1") is not None
    backend.monitor(None, Thresholds(), 24, None, ["ops@example.com"])
    (sent,) = schedule_puts(wire)
    paths = production_paths(sent)
    assert paths["data_drift"] == recorded_asset(wire, "blue", "model_inputs")
    assert paths["prediction_drift"] == recorded_asset(wire, "blue", "model_outputs")
    assert paths["data_drift"].endswith(f"/data/{ENDPOINT}-blue-model_inputs/versions/1")


def test_alert_mails_go_out_on_failed_runs_only_also_after_a_re_point(backend, wire):
    backend.deploy(None, DeployOptions(collect=True, threshold=0.3))
    backend.monitor(None, Thresholds(), 24, None, ["ops@example.com"])
    backend.deploy(None, DeployOptions(collect=True, threshold=0.3))  # green: the schedule is read back, re-sent
    for sent in schedule_puts(wire):
        alert = sent["action"]["monitorDefinition"]["alertNotificationSetting"]
        assert alert["alertNotificationType"] == "Email"
        # A breached threshold fails the run (how-to-monitor-model-performance), so JobFailed carries the
        # alerts; JobCompleted, the SDK's default beside it, would mail after every clean daily run.
        assert alert["emailNotificationSetting"] == {"emails": ["ops@example.com"], "emailOn": ["JobFailed"]}


def test_a_swap_to_a_deployment_that_collects_nothing_disables_the_schedule_in_one_put(backend, wire):
    backend.deploy(None, DeployOptions(collect=True, threshold=0.3))
    backend.monitor(None, Thresholds(), 24, None, [])
    backend.deploy(None, DeployOptions(threshold=0.3))  # green, without --collect
    # The new deployment is read for its collections, then one PUT moves the target and disables the schedule
    # (begin_disable's own PUT would resolve the old target, blue, deleted by then: a 404).
    assert wire.azure.calls("GET", f"/onlineEndpoints/{ENDPOINT}/deployments/green$")
    created, disabled = schedule_puts(wire)
    assert disabled["isEnabled"] is False
    assert disabled["tags"][monitoring.DISABLED_TAG] == "deployment green collects no data"
    target = disabled["action"]["monitorDefinition"]["monitoringTarget"]["deploymentId"]
    assert target.endswith(f"/onlineEndpoints/{ENDPOINT}/deployments/green")
    # No asset that does not exist: the production data stays the (existing) assets of blue.
    assert production_paths(disabled) == production_paths(created)
    assert wire.azure.resource(f"/data/{ENDPOINT}-green-model_inputs/versions/1") is None
    stored = wire.azure.resource(SCHEDULE)["properties"]
    assert stored["isEnabled"] is False and stored["provisioningState"] == "Succeeded"  # REC_LIFETIME
    assert any("disabled: deployment green collects no data" in m for m in backend.messages)

    backend.deploy(None, DeployOptions(collect=True, threshold=0.3))  # blue again, collecting
    enabled = schedule_puts(wire)[-1]
    assert enabled["isEnabled"] is True and monitoring.DISABLED_TAG not in enabled["tags"]
    assert production_paths(enabled)["data_drift"] == recorded_asset(wire, "blue", "model_inputs")
    assert wire.azure.resource(SCHEDULE)["properties"]["isEnabled"] is True


def test_a_deploy_without_a_schedule_touches_no_schedule(backend, wire):
    backend.deploy(None, DeployOptions(threshold=0.3))
    assert wire.azure.calls("GET", SCHEDULE + "$")  # looked for: a 404
    assert schedule_puts(wire) == []
