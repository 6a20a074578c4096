"""The Azure backend against the fake MLClient: specs, idempotence, the gate, blue/green, retries."""

from __future__ import annotations

import json

import pytest
from azure.core.exceptions import HttpResponseError, ServiceRequestError

from jobs.azure.backend import AzureBackend
from jobs.azure.stack_outputs import StackOutputs
from jobs.backend import DeployOptions
from jobs.dataset import DEFAULT_CSV, content_version
from jobs.errors import JobsError
from jobs.training import TrainingSettings
from tests.fakes import FakeSession

OUTPUTS = StackOutputs(
    subscription_id="sub",
    resource_group="rg",
    workspace_name="mlw",
    compute_name="cpu-dev-aml",
    compute_max_nodes=3,
    endpoint_name="hf-dev-abc123",
)


@pytest.fixture
def session():
    return FakeSession()


@pytest.fixture
def backend(session, tmp_path):
    messages: list[str] = []
    sleeps: list[float] = []
    b = AzureBackend(session, OUTPUTS, "dev", say=messages.append, sleep=sleeps.append, state_dir=tmp_path)
    b.messages, b.sleeps = messages, sleeps
    return b


def http_error(status: int) -> HttpResponseError:
    error = HttpResponseError(message=f"status {status}")
    error.status_code = status
    return error


def test_train_submits_the_lessons_automl_job(backend, session):
    name = backend.train(TrainingSettings(), DEFAULT_CSV, wait=False)
    job = session.ml.submitted[name].spec
    assert job.target_column_name == "DEATH_EVENT"
    assert job.primary_metric == "AUCWeighted"
    assert job.compute == "cpu-dev-aml"
    assert (job.limits.timeout_minutes, job.limits.max_concurrent_trials) == (20, 3)
    assert job.limits.enable_early_termination is True
    assert job.featurization.mode == "auto"
    # Honest by default: the leaking `time` is left out, and the data version says so.
    assert job.training_data.path == f"azureml:heart-failure-records:{content_version(DEFAULT_CSV, ('time',))}"
    assert job.tags["data_version"] == content_version(DEFAULT_CSV, ("time",))
    assert job.tags["leaking_columns_used"] == "none"
    assert any("https://ml.azure.com/runs/" in m for m in backend.messages)


def test_the_data_asset_is_registered_once_for_the_same_content(backend, session):
    backend.train(TrainingSettings(), DEFAULT_CSV, wait=False)
    backend.train(TrainingSettings(), DEFAULT_CSV, wait=False)
    assert len(session.ml.ops("data.create_or_update")) == 1
    assert len(session.ml.ops("jobs.create_or_update")) == 2


def test_dropping_a_column_is_a_new_data_version(backend, session, tmp_path):
    backend.train(TrainingSettings(drop_columns=("platelets",)), DEFAULT_CSV, wait=False)
    backend.train(TrainingSettings(), DEFAULT_CSV, wait=False)
    versions = [call["data"].version for call in session.ml.ops("data.create_or_update")]
    assert len(set(versions)) == 2


def test_flags_change_the_job(backend, session):
    settings = TrainingSettings(
        primary_metric="accuracy",
        timeout_minutes=45,
        max_concurrent_trials=2,
        enable_early_termination=False,
        featurization="off",
        trial_timeout_minutes=5,
        max_trials=30,
        n_cross_validations=10,
        blocked_models=("KNN", "SVM"),
    )
    job = session.ml.submitted[backend.train(settings, DEFAULT_CSV, wait=False)].spec
    assert (job.limits.timeout_minutes, job.limits.max_concurrent_trials, job.limits.max_trials) == (45, 2, 30)
    assert job.limits.trial_timeout_minutes == 5
    assert job.limits.enable_early_termination is False
    assert job.n_cross_validations == 10
    assert job.featurization.mode == "off"
    assert job.training.blocked_training_algorithms == ["KNN", "SVM"]


def test_more_concurrent_trials_than_nodes_is_refused_before_anything_is_sent(backend, session):
    with pytest.raises(JobsError, match="more than the cluster's 3 nodes"):
        backend.train(TrainingSettings(max_concurrent_trials=4), DEFAULT_CSV, wait=False)
    assert session.ml.calls == []


def test_wait_streams_status_until_the_end(backend, session):
    session.ml.job_statuses["automl_job_1"] = ["Queued", "Running", "Running", "Completed"]
    backend.train(TrainingSettings(), DEFAULT_CSV, wait=True)
    statuses = [m.split(": ")[-1] for m in backend.messages if m.startswith("[")]
    assert statuses == ["Queued", "Running", "Completed"]


def test_a_failed_job_is_an_error(backend, session):
    session.ml.job_statuses["automl_job_1"] = ["Running", "Failed"]
    with pytest.raises(JobsError, match="ended Failed"):
        backend.train(TrainingSettings(), DEFAULT_CSV, wait=True)


def test_transient_errors_are_retried_with_backoff(backend, session):
    session.ml.failures["jobs.create_or_update"] = [http_error(503), ServiceRequestError("reset"), http_error(429)]
    backend.train(TrainingSettings(), DEFAULT_CSV, wait=False)
    assert len(session.ml.submitted) == 1
    assert backend.sleeps == [2.0, 4.0, 8.0]


def test_a_client_error_is_not_retried(backend, session):
    session.ml.failures["jobs.create_or_update"] = [http_error(400)]
    with pytest.raises(JobsError, match="submitting the AutoML job failed: Azure ML answered 400"):
        backend.train(TrainingSettings(), DEFAULT_CSV, wait=False)
    assert backend.sleeps == []


def test_register_tags_lineage(backend, session):
    name = backend.train(TrainingSettings(), DEFAULT_CSV, wait=False)
    session.finish_job(name, auc=0.91)
    version = backend.register(None, 0.80)  # the last submitted job
    model = session.ml.registered[-1]
    assert version == model.version == "1"
    assert model.path == f"azureml://jobs/{name}_7/outputs/artifacts/paths/outputs/mlflow-model/"
    assert model.tags["training_run"] == name
    assert model.tags["best_child_run"] == f"{name}_7"
    assert model.tags["metric.AUC_weighted"] == "0.910000"
    assert model.tags["data_version"] == content_version(DEFAULT_CSV, ("time",))
    assert model.tags["git_commit"]


def test_register_twice_creates_nothing_new(backend, session):
    name = backend.train(TrainingSettings(), DEFAULT_CSV, wait=False)
    session.finish_job(name, auc=0.91)
    assert backend.register(name, 0.80) == backend.register(name, 0.80)
    assert len(session.ml.ops("models.create_or_update")) == 1


def test_the_quality_gate_refuses_a_weak_model(backend, session):
    name = backend.train(TrainingSettings(), DEFAULT_CSV, wait=False)
    session.finish_job(name, auc=0.72)
    with pytest.raises(JobsError, match=r"AUC_weighted 0\.7200 is below the threshold 0\.8000"):
        backend.register(name, 0.80)
    assert session.ml.ops("models.create_or_update") == []


def test_register_needs_a_completed_job(backend, session):
    name = backend.train(TrainingSettings(), DEFAULT_CSV, wait=False)
    with pytest.raises(JobsError, match="is Running, not Completed"):
        backend.register(name, 0.80)


def registered_model(backend, session):
    name = backend.train(TrainingSettings(), DEFAULT_CSV, wait=False)
    session.finish_job(name, auc=0.91)
    return backend.register(name, 0.80)


def test_first_deploy_goes_blue_then_takes_all_traffic(backend, session):
    version = registered_model(backend, session)
    assert backend.deploy(None, DeployOptions(threshold=0.3)) == "blue"
    spec = session.ml.deployments["blue"]
    assert spec.model == f"azureml:heart-failure-automl:{version}"
    assert (spec.instance_type, spec.instance_count) == ("Standard_DS3_v2", 1)
    assert spec.app_insights_enabled is True
    assert spec.liveness_probe.initial_delay >= 30
    assert spec.code_configuration.scoring_script == "score.py"
    deps = spec.environment.conda_file["dependencies"]
    pip = next(d["pip"] for d in deps if isinstance(d, dict))
    # The model's own environment wins (its Python, its pins); only what score.py needs is added.
    assert "python=3.9.19" in deps
    assert "scikit-learn==1.5.1" in pip and "mlflow-skinny==2.9.2" in pip
    assert "azureml-inference-server-http==1.5.1" in pip and "inference-schema==1.8" in pip
    assert not any(req.startswith(("pandas", "numpy", "scikit-learn==1.9", "mlflow-skinny==3")) for req in pip)
    smoke = session.ml.ops("online_endpoints.invoke")[0]
    assert smoke["deployment_name"] == "blue"
    assert smoke["request"]["data"][0]["age"] == "60"
    assert session.ml.endpoints["hf-dev-abc123"].traffic == {"blue": 100}


def test_second_deploy_goes_green_and_removes_blue(backend, session):
    registered_model(backend, session)
    backend.deploy(None, DeployOptions(threshold=0.3))
    backend.deploy("1", DeployOptions(instance_count=2, threshold=0.3))
    assert session.ml.endpoints["hf-dev-abc123"].traffic == {"green": 100}
    assert [d["name"] for d in session.ml.ops("online_deployments.begin_delete")] == ["blue"]
    assert session.ml.deployments["green"].instance_count == 2


def test_a_failed_smoke_test_moves_no_traffic(backend, session):
    registered_model(backend, session)
    backend.deploy(None, DeployOptions(threshold=0.3))
    session.ml.invoke_answer = json.dumps({"message": "An unexpected error occurred in scoring script."})
    with pytest.raises(JobsError) as caught:
        backend.deploy(None, DeployOptions(threshold=0.3))
    assert "traffic was not moved" in str(caught.value)
    assert "ModuleNotFoundError" in str(caught.value)  # the log excerpt
    assert session.ml.endpoints["hf-dev-abc123"].traffic == {"blue": 100}
    assert session.ml.ops("online_deployments.begin_delete") == []


def test_deploy_of_an_unknown_version_fails_before_creating_anything(backend, session):
    registered_model(backend, session)
    with pytest.raises(Exception, match="not found"):
        backend.deploy("9", DeployOptions(threshold=0.3))
    assert session.ml.ops("online_deployments.begin_create_or_update") == []


def test_deploy_called_by_a_program_checks_its_options_against_the_same_declarations(backend, session):
    """Not only the command line: a pipeline step or a script calling deploy() gets every problem at once, in the
    command line's wording, before anything is created."""
    registered_model(backend, session)
    with pytest.raises(JobsError) as caught:
        backend.deploy("1", DeployOptions(instance_type="DS3", instance_count=0, threshold=1.5))
    message = str(caught.value)
    assert "argument --instance-count: 0 is not allowed; allowed: a whole number, at least 1" in message
    assert "argument --threshold: 1.5 is not allowed" in message
    assert "--instance-type 'DS3' is not an Azure VM size name" in message
    assert session.ml.ops("online_deployments.begin_create_or_update") == []


def test_invoke_returns_the_answer_and_a_4xx_is_a_clear_error(backend, session):
    assert backend.invoke({"data": [{"age": "60"}]})["result"] == [False]
    session.ml.failures["online_endpoints.invoke"] = [http_error(400)]
    with pytest.raises(JobsError, match="refused the request with 400"):
        backend.invoke({"data": []})


def test_waiting_gives_up_after_its_limit_and_says_the_job_goes_on(session, tmp_path):
    ticks = iter(range(0, 10**6, 600))  # every status read is ten minutes later
    backend = AzureBackend(
        session, OUTPUTS, "dev", say=lambda _: None, sleep=lambda _: None, state_dir=tmp_path, clock=lambda: next(ticks)
    )
    session.ml.job_statuses["automl_job_1"] = ["Queued"] * 100
    with pytest.raises(JobsError) as caught:
        backend.train(TrainingSettings(), DEFAULT_CSV, wait=True)
    assert "automl_job_1 Queued; it is still in Azure" in str(caught.value)
    assert "az ml job cancel --name automl_job_1" in str(caught.value)


def test_ctrl_c_while_waiting_says_what_still_runs(backend, session, monkeypatch):
    def interrupted(seconds):
        raise KeyboardInterrupt

    backend.sleep = interrupted
    from jobs.errors import Interrupted

    with pytest.raises(Interrupted, match="AutoML job automl_job_1 is still running in Azure"):
        backend.train(TrainingSettings(), DEFAULT_CSV, wait=True)


def test_ctrl_c_during_a_deployment_leaves_traffic_alone_and_says_so(backend, session):
    from jobs.errors import Interrupted

    registered_model(backend, session)
    backend.deploy(None, DeployOptions(threshold=0.3))
    session.ml.failures["online_deployments.begin_create_or_update"] = [KeyboardInterrupt()]
    with pytest.raises(Interrupted, match="Deployment green is still being created in Azure with 0% traffic"):
        backend.deploy(None, DeployOptions(threshold=0.3))
    assert session.ml.endpoints["hf-dev-abc123"].traffic == {"blue": 100}


def test_an_answer_that_is_not_json_is_a_clear_error(backend, session):
    session.ml.invoke_answer = "<html>Bad Gateway</html>"
    with pytest.raises(JobsError, match="not JSON: '<html>Bad Gateway</html>'"):
        backend.invoke({"data": []})


# --- what the SDK itself does at call time ----------------------------------------------------


@pytest.fixture
def clean_invoke_headers():
    from azure.ai.ml.constants._endpoint import EndpointInvokeFields

    saved = dict(EndpointInvokeFields.DEFAULT_HEADER)
    yield EndpointInvokeFields.DEFAULT_HEADER
    EndpointInvokeFields.DEFAULT_HEADER.clear()
    EndpointInvokeFields.DEFAULT_HEADER.update(saved)


def test_a_smoke_test_does_not_pin_later_calls_to_its_deployment(backend, session, clean_invoke_headers):
    registered_model(backend, session)
    backend.deploy(None, DeployOptions(threshold=0.3))  # blue
    backend.deploy(None, DeployOptions(threshold=0.3))  # green, smoke-tested alone, then takes all traffic
    backend.invoke({"data": [{"age": "60"}]})
    smoke, plain = session.ml.ops("online_endpoints.invoke")[-2:]
    assert smoke["served_by"] == "green"
    assert plain["deployment_name"] is None and plain["served_by"] == "green"
    # After the calls, the SDK's shared header dict holds neither the deployment nor the key.
    assert clean_invoke_headers == {"Content-Type": "application/json"}


def test_a_plain_invoke_after_a_smoke_test_goes_where_traffic_goes(backend, session, clean_invoke_headers):
    registered_model(backend, session)
    backend.deploy(None, DeployOptions(threshold=0.3))
    # green fails its smoke test: traffic stays on blue, and so must the next plain call
    session.ml.invoke_answer = json.dumps({"message": "An unexpected error occurred in scoring script."})
    with pytest.raises(JobsError):
        backend.deploy(None, DeployOptions(threshold=0.3))
    session.ml.invoke_answer = json.dumps({"result": [False]})
    backend.invoke({"data": []})
    assert session.ml.ops("online_endpoints.invoke")[-1]["served_by"] == "blue"


def test_moving_traffic_names_the_old_slot_at_zero(backend, session):
    registered_model(backend, session)
    backend.deploy(None, DeployOptions(threshold=0.3))
    backend.deploy(None, DeployOptions(threshold=0.3))
    update = session.ml.ops("online_endpoints.begin_create_or_update")[-1]
    assert update["traffic"] == {"blue": 0, "green": 100}
    assert update["sent_traffic"] == {"green": 100}  # the SDK strips zero shares before the PUT


def test_the_first_registration_of_a_model_name_lists_no_versions(backend, session):
    assert registered_model(backend, session) == "1"
    assert len(session.ml.ops("models.list")) == 1


def pip_of(spec):
    return next(d["pip"] for d in spec.environment.conda_file["dependencies"] if isinstance(d, dict))


def test_no_mlflow_is_added_next_to_the_models_azureml_mlflow(backend, session):
    # azureml-mlflow 1.62.0.post6 requires mlflow-skinny<=3.15.0 (its PyPI metadata): an added
    # mlflow-skinny==3.17.2 would make the image build fail.
    session.ml.model_conda = (
        "channels: [conda-forge]\ndependencies:\n- python=3.9.19\n- pip\n- pip:\n"
        "  - azureml-mlflow==1.62.0.post6\n  - scikit-learn==1.5.1\n"
    )
    registered_model(backend, session)
    backend.deploy(None, DeployOptions(threshold=0.3))
    pip = pip_of(session.ml.deployments["blue"])
    assert [r for r in pip if r.startswith(("mlflow", "azureml-mlflow"))] == ["azureml-mlflow==1.62.0.post6"]


def test_mlflow_added_for_a_model_without_it_is_capped_not_pinned(backend, session):
    from packaging.requirements import Requirement

    session.ml.model_conda = "dependencies:\n- python=3.9.19\n- pip:\n  - scikit-learn==1.5.1\n"
    registered_model(backend, session)
    backend.deploy(None, DeployOptions(threshold=0.3))
    added = [Requirement(r) for r in pip_of(session.ml.deployments["blue"]) if r.startswith("mlflow")]
    assert len(added) == 1 and added[0].name == "mlflow-skinny"
    # Any older MLflow the model's other packages (or Python 3.9) need still resolves.
    assert added[0].specifier.contains("2.9.2") and not added[0].specifier.contains("3.18.0")


def test_a_deployment_whose_model_does_not_load_says_why_in_the_last_line(backend, session):
    registered_model(backend, session)
    error = HttpResponseError(message="ResourceNotReady: User container has crashed or terminated.")
    error.status_code = 400
    session.ml.failures["online_deployments.provisioning"] = [error]
    session.ml.deployment_log = (
        "2026-11-29 INFO Loading model\nTraceback (most recent call last):\n"
        '  File "/var/azureml-app/score.py", line 80, in init\n'
        "ModuleNotFoundError: No module named 'azureml.automl'\n"
        "2026-11-29 INFO Worker exiting (pid: 12)\n"
    )
    with pytest.raises(JobsError) as caught:
        backend.deploy(None, DeployOptions(threshold=0.3))
    message = str(caught.value)
    assert "creating it failed: ResourceNotReady: User container has crashed or terminated." in message
    assert message.splitlines()[-1] == "Why, from its log: ModuleNotFoundError: No module named 'azureml.automl'"
    assert session.ml.endpoints["hf-dev-abc123"].traffic == {}


def test_a_label_the_folds_cannot_split_is_refused_before_submitting(backend, session, tmp_path):
    rows = DEFAULT_CSV.read_text().splitlines()
    few = tmp_path / "few.csv"
    few.write_text(
        "\n".join(
            [rows[0], *[r for r in rows[1:] if r.endswith(",1")][:3], *[r for r in rows[1:] if r.endswith(",0")][:20]]
        )
        + "\n"
    )
    with pytest.raises(JobsError, match=r"has 3 row\(s\) of 1 and 20 of 0; 5-fold cross-validation needs at least 5"):
        backend.train(TrainingSettings(), few, wait=False)
    assert session.ml.calls == []


def test_a_log_that_names_no_error_adds_no_why_line(backend, session):
    registered_model(backend, session)
    session.ml.invoke_answer = json.dumps({"result": "not a list"})
    session.ml.deployment_log = "2026-11-29 INFO Scoring request\n2026-11-29 INFO 200\n"
    with pytest.raises(JobsError) as caught:
        backend.deploy(None, DeployOptions(threshold=0.3))
    assert "it failed its smoke test (JobsError: unexpected answer" in str(caught.value)
    assert "Why, from its log" not in str(caught.value)
