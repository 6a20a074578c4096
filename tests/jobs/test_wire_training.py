"""Data, training and registration through the real MLClient on the wire (tests/jobs/wire): what the SDK
sends, how it reads Azure's answers, and what a user sees when Azure refuses or throttles."""

from __future__ import annotations

import pytest

from jobs.dataset import ASSET_NAME, DEFAULT_CSV, content_version
from jobs.errors import JobsError
from jobs.training import TrainingSettings
from tests.jobs.wire import fixtures, scenario, service
from tests.jobs.wire.service import arm_error, throttled

# The fake Azure ML on the wire and the real MLClient (tests/jobs/wire/fixtures.py).
wire = fixtures.wire
ml = fixtures.ml

VERSION = content_version(DEFAULT_CSV, ("time",))  # honest by default: the leaking `time` is left out


@pytest.fixture
def backend(wire, ml, tmp_path):
    return scenario.backend(wire, ml, tmp_path)


def test_train_uploads_the_data_registers_it_and_submits_the_lessons_job(backend, wire):
    name = backend.train(TrainingSettings(), DEFAULT_CSV, wait=False)
    azure = wire.azure
    uploaded = sorted(n.rsplit("/", 1)[-1] for c, n in azure.blobs if c == service.BLOB_CONTAINER)
    assert "MLTable" in uploaded and DEFAULT_CSV.name in uploaded
    (data_put,) = azure.calls("PUT", f"/data/{ASSET_NAME}/versions/{VERSION}$")
    data = data_put.json()["properties"]
    assert data["dataType"] == "mltable"
    assert data["dataUri"].startswith("azureml://") and "/LocalUpload/" in data["dataUri"]
    (job_put,) = azure.calls("PUT", f"/jobs/{name}$")
    task = job_put.json()["properties"]["taskDetails"]
    assert task["targetColumnName"] == "DEATH_EVENT" and task["primaryMetric"] == "AUCWeighted"
    assert task["trainingData"]["uri"].endswith(f"/data/{ASSET_NAME}/versions/{VERSION}")
    assert job_put.json()["properties"]["computeId"].endswith("/computes/cpu-dev-aml")
    # The studio link is the one Azure answered with (REC_AUTOML: services.Studio.endpoint).
    assert any(f"https://ml.azure.com/runs/{name}?wsid=" in m for m in backend.messages)
    # Every call carried the credential's token, for ARM and for the storage account alike.
    assert all(r.headers.get("Authorization") == "Bearer dummy-token" for r in azure.requests if "blob" not in r.host)


def test_the_same_data_is_not_uploaded_twice(backend, wire):
    backend.train(TrainingSettings(), DEFAULT_CSV, wait=False)
    blobs_before = len(wire.azure.calls("PUT", r"/LocalUpload/"))
    backend.train(TrainingSettings(), DEFAULT_CSV, wait=False)
    assert len(wire.azure.calls("PUT", f"/data/{ASSET_NAME}/versions/")) == 1
    assert len(wire.azure.calls("PUT", r"/LocalUpload/")) == blobs_before
    assert len(wire.azure.calls("PUT", r"/jobs/")) == 2


def test_waiting_prints_each_status_as_azure_names_it(backend, wire):
    # The SDK returns an AutoML job's status as its REST enum; the messages must still say "Running".
    name = backend.train(TrainingSettings(), DEFAULT_CSV, wait=False)
    wire.azure.job_statuses[name] = ["NotStarted", "Running", "Running", "Completed"]
    backend.wait_for_job(name, 3600)
    statuses = [m.split(": ")[-1] for m in backend.messages if m.startswith("[")]
    assert statuses == ["NotStarted", "Running", "Completed"]


def test_a_failed_job_says_failed_in_azures_words(backend, wire):
    name = backend.train(TrainingSettings(), DEFAULT_CSV, wait=False)
    wire.azure.job_statuses[name] = ["Failed"]
    with pytest.raises(JobsError, match=f"AutoML job {name} ended Failed. Nothing was registered"):
        backend.wait_for_job(name, 60)


def test_a_throttled_submission_waits_as_long_as_azure_asks_then_goes_through(backend, wire):
    wire.azure.fail("PUT", r"/jobs/", throttled(retry_after_s=7))
    backend.train(TrainingSettings(), DEFAULT_CSV, wait=False)
    assert len(wire.azure.calls("PUT", r"/jobs/")) == 2
    # azure-core's RetryPolicy honoured Retry-After itself; our own retry loop never saw the 429.
    assert 7 in wire.sleeps
    assert backend.sleeps == []


def test_a_user_error_is_one_clear_message_not_a_traceback_and_not_retried(backend, wire):
    message = "Compute cpu-dev-aml not found in workspace."  # SPEC_ERROR shape; wording illustrative
    wire.azure.fail("PUT", r"/jobs/", arm_error(400, "UserError", message))
    with pytest.raises(JobsError) as caught:
        backend.train(TrainingSettings(), DEFAULT_CSV, wait=False)
    assert str(caught.value) == (f"submitting the AutoML job failed: Azure ML answered 400 (UserError): {message}")
    assert len(wire.azure.calls("PUT", r"/jobs/")) == 1 and backend.sleeps == []


def test_register_reads_the_run_from_mlflow_and_registers_the_best_childs_model(backend, wire):
    name = scenario.finished_job(wire, backend, auc=0.91)
    assert backend.register(name, 0.80) == "1"
    (put,) = wire.azure.calls("PUT", r"/models/heart-failure-automl/versions/1$")
    model = put.json()["properties"]
    assert model["modelType"] == "mlflow_model"
    assert model["modelUri"] == f"azureml://jobs/{name}_7/outputs/artifacts/paths/outputs/mlflow-model/"
    assert model["tags"]["training_run"] == name and model["tags"]["metric.AUC_weighted"] == "0.910000"
    assert model["tags"]["data_version"] == VERSION
    # The MLflow reads went to the region's tracking API with the credential's ARM token.
    runs = [r for r in wire.azure.requests if r.path.endswith("/mlflow/runs/get")]
    assert [r.query["run_id"] for r in runs] == [name, f"{name}_7"]
    assert {r.headers["Authorization"] for r in runs} == {"Bearer dummy-token"}
    # A second register finds the version already there and creates nothing.
    assert backend.register(name, 0.80) == "1"
    assert len(wire.azure.calls("PUT", r"/models/heart-failure-automl/versions/")) == 1


def test_register_of_a_job_that_is_still_running_says_so_in_azures_words(backend, wire):
    name = backend.train(TrainingSettings(), DEFAULT_CSV, wait=False)
    wire.azure.job_statuses[name] = ["Running"]
    with pytest.raises(JobsError, match=f"AutoML job {name} is Running, not Completed"):
        backend.register(name, 0.80)
