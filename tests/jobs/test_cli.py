"""The command line and the Azure connection: help, messages for what is missing, dry runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from azure.ai.ml import load_data, load_job, load_model, load_online_deployment

from jobs.azure import stack_outputs
from jobs.cli import main
from jobs.dataset import content_version

ROOT = Path(__file__).resolve().parents[2]
OUTPUTS = {
    "subscription_id": "00000000-0000-0000-0000-000000000001", "resource_group": "rg-azureml-heart-failure-dev-x",
    "workspace_name": "mlw-dev-x", "compute_name": "cpu-dev-x-aml", "compute_max_nodes": 3,
    "endpoint_name": "hf-dev-x", "location": "westeurope", "scoring_uri": "https://hf-dev-x/score",
    "studio_url": "https://ml.azure.com/?wsid=x",
}


@pytest.fixture
def outputs_file(tmp_path):
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(OUTPUTS))
    return path


@pytest.fixture(autouse=True)
def no_pulumi_cli(monkeypatch):
    monkeypatch.setattr(stack_outputs.shutil, "which", lambda _: None)
    for var in stack_outputs.ENV.values():
        monkeypatch.delenv(var, raising=False)


@pytest.mark.parametrize("command", ["train", "register", "deploy", "invoke", "all"])
def test_every_command_has_help_with_defaults(command, capsys):
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert "--target" in text and "(default: local)" in text
    if command in ("train", "all"):
        assert "(default: AUC_weighted)" in text and "(default: 20" in text and "(default: 3)" in text
    if command in ("deploy", "all"):
        assert "(default: Standard_DS3_v2)" in text


def test_dry_run_writes_specs_that_load_back(outputs_file, tmp_path, capsys):
    out = tmp_path / "specs"
    code = main(["all", "--target", "azure", "--outputs", str(outputs_file), "--dry-run", "--out", str(out),
                 "--drop", "time"])
    assert code == 0, capsys.readouterr().err

    data = load_data(str(out / "data.yml"))
    assert data.name == "heart-failure-records"
    assert data.version == content_version(ROOT / "data" / "heart_failure_clinical_records_dataset.csv", ("time",))
    table = yaml.safe_load((out / Path(yaml.safe_load((out / "data.yml").read_text())["path"]) / "MLTable").read_text())
    assert {"drop_columns": ["time"]} in table["transformations"]

    job = load_job(str(out / "automl-job.yml"))
    assert job.type == "automl" and job.task_type.lower() == "classification"
    assert job.target_column_name == "DEATH_EVENT"
    assert job.compute == "cpu-dev-x-aml"
    assert (job.limits.timeout_minutes, job.limits.max_concurrent_trials) == (20, 3)
    assert job.limits.enable_early_termination is True
    raw_job = (out / "automl-job.yml").read_text()
    assert yaml.safe_load(raw_job)["training_data"]["path"] == f"azureml:heart-failure-records:{data.version}"
    assert "azureml:./" not in raw_job and "azureml:/" not in raw_job

    model = load_model(str(out / "model.yml"))
    assert model.type == "mlflow_model" and model.name == "heart-failure-automl"
    assert model.path.endswith("/outputs/artifacts/paths/outputs/mlflow-model/")

    deployment = load_online_deployment(str(out / "deployment.yml"))
    assert deployment.endpoint_name == "hf-dev-x"
    assert (deployment.instance_type, deployment.instance_count) == ("Standard_DS3_v2", 1)
    assert deployment.app_insights_enabled is True
    raw = yaml.safe_load((out / "deployment.yml").read_text())
    assert (out / raw["code_configuration"]["code"] / "score.py").is_file()

    request = json.loads((out / "request.json").read_text())
    assert request["data"][0]["serum_creatinine"] == "1.40"


def test_dry_run_needs_no_credentials_and_no_pulumi(outputs_file, tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a dry run must not connect")

    monkeypatch.setattr("jobs.azure.session.connect", refuse)
    assert main(["train", "--target", "azure", "--outputs", str(outputs_file), "--dry-run", "--out",
                 str(tmp_path / "o")]) == 0


def test_missing_stack_outputs_say_what_to_run(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = main(["train", "--target", "azure", "--stack", "prod"])
    err = capsys.readouterr().err
    assert code == 2
    assert "cannot locate the Azure ML workspace" in err
    assert "pulumi up --stack prod" in err and "--outputs FILE" in err
    assert "Traceback" not in err


def test_an_outputs_file_that_is_not_json_is_named(tmp_path, capsys):
    bad = tmp_path / "outputs.json"
    bad.write_text("Current stack outputs (3):")
    assert main(["train", "--target", "azure", "--outputs", str(bad)]) == 2
    assert f"--outputs {bad} is not JSON" in capsys.readouterr().err


def test_flags_and_environment_override_the_outputs(outputs_file, monkeypatch):
    monkeypatch.setenv("AZUREML_ENDPOINT_NAME", "hf-from-env")
    resolved = stack_outputs.resolve("dev", outputs_file, {"workspace_name": "mlw-from-flag"})
    assert (resolved.workspace_name, resolved.endpoint_name) == ("mlw-from-flag", "hf-from-env")
    assert resolved.compute_max_nodes == 3


def test_config_json_locates_the_workspace(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"subscription_id": "s", "resource_group": "r",
                                                      "workspace_name": "w"}))
    resolved = stack_outputs.resolve("dev", environ={}, cwd=tmp_path)
    assert (resolved.subscription_id, resolved.resource_group, resolved.workspace_name) == ("s", "r", "w")


def test_missing_credentials_say_az_login(outputs_file, capsys, monkeypatch):
    from azure.core.exceptions import ClientAuthenticationError

    class NoCredential:
        def __init__(self, **kwargs):
            pass

        def get_token(self, *scopes):
            raise ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token: EnvironmentCredential"
                                            ", ManagedIdentityCredential, AzureCliCredential ...")

    monkeypatch.setattr("azure.identity.DefaultAzureCredential", NoCredential)
    code = main(["register", "--target", "azure", "--outputs", str(outputs_file), "--job", "x"])
    err = capsys.readouterr().err
    assert code == 2
    assert "no Azure credentials: run `az login`" in err
    assert "Traceback" not in err and "ManagedIdentityCredential" not in err


def test_local_target_refuses_dry_run(capsys):
    assert main(["train", "--dry-run"]) == 2
    assert "--dry-run builds Azure ML specs" in capsys.readouterr().err


def test_bad_training_flags_are_listed_together(capsys):
    code = main(["train", "--metric", "f1", "--cv-folds", "1", "--block-model", "Magic", "--featurization", "on"])
    err = capsys.readouterr().err
    assert code == 2
    for fragment in ("--metric 'f1'", "--cv-folds 1", "--block-model Magic", "--featurization 'on'"):
        assert fragment in err


def test_invoke_from_a_file_that_is_not_json(tmp_path, capsys):
    bad = tmp_path / "request.json"
    bad.write_text("{oops")
    assert main(["invoke", "--file", str(bad)]) == 2
    assert f"--file {bad} is not JSON" in capsys.readouterr().err


def test_all_against_the_fake_workspace_trains_registers_deploys_and_invokes(outputs_file, tmp_path, monkeypatch,
                                                                              capsys):
    from jobs.azure.session import RunDetails
    from tests.fakes import FakeMLClient, FakeSession

    session = FakeSession(FakeMLClient(endpoint_name="hf-dev-x"))
    session.ml.job_statuses["automl_job_1"] = ["Running", "Completed"]
    session.runs["automl_job_1"] = RunDetails({"automl_best_child_run_id": "automl_job_1_5"}, {})
    session.runs["automl_job_1_5"] = RunDetails({}, {"AUC_weighted": 0.9})
    monkeypatch.setattr("jobs.azure.session.connect", lambda outputs: session)
    monkeypatch.setattr("jobs.azure.backend.ROOT", tmp_path)  # the last-job state file
    monkeypatch.setattr("time.sleep", lambda seconds: None)

    code = main(["all", "--target", "azure", "--outputs", str(outputs_file)])
    out = capsys.readouterr().out
    assert code == 0
    assert out.strip().splitlines()[-1] == '{"result": [false]}'
    assert [op for op, _ in session.ml.calls if op.endswith(("create_or_update", "invoke"))] == [
        "data.create_or_update", "jobs.create_or_update", "models.create_or_update",
        "online_deployments.begin_create_or_update", "online_endpoints.invoke",
        "online_endpoints.begin_create_or_update", "online_endpoints.invoke",
    ]
    assert session.ml.endpoints["hf-dev-x"].traffic == {"blue": 100}
