"""Blue/green deployment, invocation and monitoring through the real MLClient on the wire (tests/jobs/wire):
the long-running operations polled as Azure answers them, and Azure's refusals as a user sees them."""

from __future__ import annotations

import pytest

from jobs.backend import DeployOptions, RequestRefused
from jobs.errors import JobsError
from jobs.monitoring.check import Thresholds
from tests.jobs.wire import fixtures, scenario, service
from tests.jobs.wire.service import Answer, arm_error, conflict, throttled

# The fake Azure ML on the wire and the real MLClient (tests/jobs/wire/fixtures.py).
wire = fixtures.wire
ml = fixtures.ml

ENDPOINT = scenario.ENDPOINT
DEPLOYMENTS = f"/onlineEndpoints/{ENDPOINT}/deployments"


@pytest.fixture
def backend(wire, ml, tmp_path):
    return scenario.registered(wire, ml, tmp_path)


def traffic(wire):
    return wire.azure.resource(f"/onlineEndpoints/{ENDPOINT}")["properties"]["traffic"]


def test_first_deploy_creates_blue_polls_it_to_succeeded_then_moves_all_traffic(backend, wire):
    assert backend.deploy(None, DeployOptions(threshold=0.3)) == "blue"
    azure = wire.azure
    (put,) = azure.calls("PUT", f"{DEPLOYMENTS}/blue$")
    sent = put.json()
    assert sent["sku"]["capacity"] == 1 and sent["properties"]["instanceType"] == "Standard_DS3_v2"
    assert sent["properties"]["model"].endswith("/models/heart-failure-automl/versions/1")
    assert sent["properties"]["codeConfiguration"]["scoringScript"] == "score.py"
    # The environment registered on the way holds the model's own Python and pins (read from its
    # conda.yaml, downloaded from the job's outputs) plus the scoring server.
    (env,) = azure.calls("PUT", r"/environments/heart-failure-scoring/versions/")
    conda = env.json()["properties"]["condaFile"]
    assert "python=3.9.19" in conda and "scikit-learn==1.5.1" in conda and "azureml-inference-server-http" in conda
    # REC_DEPLOYMENT: 201 + Azure-AsyncOperation, polled "Updating" ... "Succeeded", then the resource GET.
    polls = [r for r in azure.requests if "mfeOperationsStatus" in r.path]
    assert len(polls) >= 2
    assert azure.resource(f"{DEPLOYMENTS}/blue")["properties"]["provisioningState"] == "Succeeded"
    # The smoke test went to blue alone, with the endpoint's key.
    (smoke,) = [r for r in azure.requests if r.path == "/score"]
    assert smoke.headers["azureml-model-deployment"] == "blue"
    assert smoke.headers["Authorization"] == f"Bearer {service.ENDPOINT_KEY}"
    # Traffic moved in one endpoint PUT, itself a long-running operation polled to its end.
    (move,) = azure.calls("PUT", f"/onlineEndpoints/{ENDPOINT}$")
    assert move.json()["properties"]["traffic"] == {"blue": 100}
    assert traffic(wire) == {"blue": 100}
    assert any("takes 100% of traffic" in m for m in backend.messages)


def test_second_deploy_goes_green_and_deletes_blue_through_its_own_operation(backend, wire):
    backend.deploy(None, DeployOptions(threshold=0.3))
    assert backend.deploy("1", DeployOptions(instance_count=2, threshold=0.3)) == "green"
    assert traffic(wire) == {"green": 100}
    (move,) = wire.azure.calls("PUT", f"/onlineEndpoints/{ENDPOINT}$")[-1:]
    assert move.json()["properties"]["traffic"] == {"green": 100}  # the SDK strips blue's 0 before the PUT
    assert len(wire.azure.calls("DELETE", f"{DEPLOYMENTS}/blue$")) == 1
    # REC_DEPLOYMENT, DELETE: 202, polled to Succeeded; blue is gone from the endpoint's deployments.
    assert wire.azure.resource(f"{DEPLOYMENTS}/blue") is None
    assert wire.azure.resource(f"{DEPLOYMENTS}/green")["sku"]["capacity"] == 2


def test_a_deployment_whose_provisioning_fails_says_why_from_its_log_and_moves_no_traffic(backend, wire):
    wire.azure.operation_statuses = ["Updating", "Failed"]
    # The error a crashed scoring container ends the operation with (Azure ML docs,
    # how-to-troubleshoot-online-endpoints: "ResourceNotReady: User container has crashed or terminated").
    wire.azure.operation_error = {"code": "ResourceNotReady", "message": "User container has crashed or terminated."}
    wire.azure.deployment_logs = (
        "2026-11-29 INFO Loading model\nTraceback (most recent call last):\n"
        "ModuleNotFoundError: No module named 'azureml.automl'\n"
    )
    with pytest.raises(JobsError) as caught:
        backend.deploy(None, DeployOptions(threshold=0.3))
    message = str(caught.value)
    assert "deployment blue: creating it failed: (ResourceNotReady) User container has crashed" in message
    assert message.splitlines()[-1] == "Why, from its log: ModuleNotFoundError: No module named 'azureml.automl'"
    assert traffic(wire) == {}
    assert wire.azure.calls("POST", f"{DEPLOYMENTS}/blue/getLogs$")
    assert wire.azure.calls("PUT", f"/onlineEndpoints/{ENDPOINT}$") == []


def test_a_throttled_deployment_put_is_retried_after_what_azure_asks(backend, wire):
    wire.azure.fail("PUT", f"{DEPLOYMENTS}/blue$", throttled(retry_after_s=11))
    assert backend.deploy(None, DeployOptions(threshold=0.3)) == "blue"
    assert len(wire.azure.calls("PUT", f"{DEPLOYMENTS}/blue$")) == 2
    assert 11 in wire.sleeps and backend.sleeps == []


def test_a_traffic_update_refused_with_409_names_the_step_and_leaves_traffic(backend, wire):
    wire.azure.fail(
        "PUT", f"/onlineEndpoints/{ENDPOINT}$", conflict(f"Endpoint {ENDPOINT} has an operation in progress.")
    )
    with pytest.raises(JobsError) as caught:
        backend.deploy(None, DeployOptions(threshold=0.3))
    assert str(caught.value).startswith(
        f"moving traffic failed: Azure ML answered 409 (Conflict): Endpoint {ENDPOINT} has an operation in progress."
    )
    assert "wait for it to finish" in str(caught.value)
    assert traffic(wire) == {}


def test_a_deploy_of_a_version_that_does_not_exist_creates_nothing(backend, wire):
    with pytest.raises(Exception, match="Could not find asset"):
        backend.deploy("9", DeployOptions(threshold=0.3))
    assert wire.azure.calls("PUT", DEPLOYMENTS) == []


def test_invoke_sends_the_payload_with_the_key_and_a_refusal_is_the_endpoints_own_body(backend, wire):
    backend.deploy(None, DeployOptions(threshold=0.3))
    assert backend.invoke({"data": [{"age": "60"}]})["result"] == [False]
    plain = [r for r in wire.azure.requests if r.path == "/score"][-1]
    assert "azureml-model-deployment" not in plain.headers  # the smoke test's pin did not leak
    # scoring/schema.py's 400 body, as the endpoint forwards it.
    wire.azure.scoring_answer = Answer(400, {"message": "invalid request", "errors": ["age: missing"]})
    with pytest.raises(RequestRefused) as caught:
        backend.invoke({"data": [{}]})
    assert caught.value.status == 400
    assert "invalid request" in str(caught.value) and "age: missing" in str(caught.value)


def test_monitor_creates_the_schedule_for_the_live_deployment_and_a_redeploy_repoints_it(backend, wire):
    backend.deploy(None, DeployOptions(collect=True, threshold=0.3))
    assert backend.monitor(None, Thresholds(), 24, None, ["ops@example.com"]) == "heart_failure_monitoring"
    schedule = wire.azure.resource("/schedules/heart_failure_monitoring")
    assert schedule["properties"]["provisioningState"] == "Succeeded"
    (put,) = wire.azure.calls("PUT", r"/schedules/heart_failure_monitoring$")
    target = put.json()["properties"]["action"]["monitorDefinition"]["monitoringTarget"]
    assert target["deploymentId"].endswith(f"/onlineEndpoints/{ENDPOINT}/deployments/blue")
    backend.deploy(None, DeployOptions(collect=True, threshold=0.3))  # green
    (_, again) = wire.azure.calls("PUT", r"/schedules/heart_failure_monitoring$")
    target = again.json()["properties"]["action"]["monitorDefinition"]["monitoringTarget"]
    assert target["deploymentId"].endswith(f"/onlineEndpoints/{ENDPOINT}/deployments/green")


def test_monitor_without_a_collecting_deployment_refuses_before_any_write(backend, wire):
    backend.deploy(None, DeployOptions(threshold=0.3))
    with pytest.raises(JobsError, match="deployment blue collects no data"):
        backend.monitor(None, Thresholds(), 24, None, [])
    assert wire.azure.calls("PUT", r"/schedules/") == []


def test_a_schedule_refused_with_400_is_a_clear_message(backend, wire):
    backend.deploy(None, DeployOptions(collect=True, threshold=0.3))
    wire.azure.fail(
        "PUT", r"/schedules/", arm_error(400, "UserError", "Serverless Spark is not available in this region")
    )
    with pytest.raises(
        JobsError, match=r"creating the monitoring schedule failed: Azure ML answered 400 \(UserError\)"
    ):
        backend.monitor(None, Thresholds(), 24, None, [])
