"""The lesson's challenge: train and register as one Azure ML pipeline job."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from azure.ai.ml import load_component, load_job

from jobs.azure.backend import AzureBackend
from jobs.azure.pipeline_step import automl_run, register_best_model
from jobs.azure.stack_outputs import StackOutputs
from jobs.backend import DeployOptions
from jobs.cli import main
from jobs.dataset import DEFAULT_CSV, content_version
from jobs.errors import JobsError
from jobs.lineage import TrainingRun
from jobs.paths import ROOT
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
def outputs_file(tmp_path):
    path = tmp_path / "outputs.json"
    path.write_text(
        json.dumps(
            {
                "subscription_id": "00000000-0000-0000-0000-0000000000aa",
                "resource_group": "r",
                "workspace_name": "w",
                "compute_name": "cpu-dev-x-aml",
                "compute_max_nodes": 3,
                "endpoint_name": "hf-x",
            }
        )
    )
    return path


def test_the_fake_mlclient_receives_one_pipeline_job(tmp_path):
    session = FakeSession()
    backend = AzureBackend(session, OUTPUTS, "dev", say=lambda _: None, sleep=lambda _: None, state_dir=tmp_path)
    backend.pipeline(TrainingSettings(), DEFAULT_CSV, 0.8, None, wait=False)
    submitted = session.ml.ops("jobs.create_or_update")
    assert len(submitted) == 1
    job = submitted[0]["job"]
    assert job.type == "pipeline"
    assert set(job.jobs) == {"train", "register"}
    assert job.settings.default_compute == "cpu-dev-aml"
    train = job.jobs["train"]
    assert train.target_column_name == "DEATH_EVENT"
    assert (train.limits.timeout_minutes, train.limits.max_concurrent_trials) == (20, 3)
    assert job.jobs["register"].inputs["min_auc"]._data == 0.8
    assert set(job.jobs["register"].inputs) == {"model", "model_name", "min_auc"}  # the rest comes from run tags


def test_without_a_floor_the_register_step_gets_no_min_auc(tmp_path):
    session = FakeSession()
    backend = AzureBackend(session, OUTPUTS, "dev", say=lambda _: None, sleep=lambda _: None, state_dir=tmp_path)
    backend.pipeline(TrainingSettings(), DEFAULT_CSV, None, None, wait=False)
    job = session.ml.ops("jobs.create_or_update")[0]["job"]
    assert "min_auc" not in job.jobs["register"].inputs or job.jobs["register"].inputs["min_auc"]._data is None
    assert job.jobs["train"].tags["data_version"] == content_version(DEFAULT_CSV, ("time",))


def test_the_azure_pipelines_deploy_step_is_refused_before_anything_is_submitted(tmp_path):
    # The deploy step cannot carry the model's contract and operating point (jobs/azure/specs.py).
    session = FakeSession()
    backend = AzureBackend(session, OUTPUTS, "dev", say=lambda _: None, sleep=lambda _: None, state_dir=tmp_path)
    with pytest.raises(JobsError, match="--with-deploy: the pipeline's deploy step cannot carry"):
        backend.pipeline(TrainingSettings(), DEFAULT_CSV, 0.8, DeployOptions(instance_count=2), wait=False)
    assert session.ml.ops("jobs.create_or_update") == []


def test_dry_run_writes_a_pipeline_that_loads_back_wired_by_best_model(outputs_file, tmp_path):
    out = tmp_path / "specs"
    assert main(["pipeline", "--target", "azure", "--outputs", str(outputs_file), "--dry-run", "--out", str(out)]) == 0
    job = load_job(str(out / "pipeline-job.yml"))
    assert job.type == "pipeline"
    assert set(job.jobs) == {"train", "register"}
    raw = yaml.safe_load((out / "pipeline-job.yml").read_text())
    assert raw["jobs"]["train"]["type"] == "automl"
    assert raw["jobs"]["train"]["outputs"]["best_model"] == {"type": "mlflow_model"}
    assert raw["jobs"]["register"]["inputs"]["model"]["path"] == "${{parent.jobs.train.outputs.best_model}}"
    assert raw["settings"]["default_compute"].endswith("cpu-dev-x-aml")
    assert (
        raw["inputs"]["training_data"]["path"]
        == f"azureml:heart-failure-records:{content_version(DEFAULT_CSV, ('time',))}"
    )
    code = out / raw["jobs"]["register"]["component"]["code"]
    assert (code / "jobs" / "azure" / "pipeline_step.py").is_file()


def test_the_components_load_and_upload_only_what_they_need():
    for name in ("register_model.yml", "deploy_model.yml"):
        component = load_component(source=str(ROOT / "jobs" / "azure" / "components" / name))
        assert component.type == "command"
        assert "python -m jobs.azure.pipeline_step" in component.command
    rules = [line for line in (ROOT / ".amlignore").read_text().splitlines() if line and not line.startswith("#")]
    assert rules[:4] == ["/*", "!/jobs/", "!/scoring/", "!/infra/"]


def test_the_steps_import_nothing_of_the_repository_that_is_not_uploaded():
    """Each step's module, with every module of the repository it imports (its deploy step goes through the
    Azure backend and the stack-output contract in infra/), lies in a folder .amlignore uploads: an import
    from another folder is "No module named ..." inside the job, after the training it waited for."""
    rules = (ROOT / ".amlignore").read_text().splitlines()
    uploaded = [line[2:].rstrip("/") for line in rules if line.startswith("!/")]
    probe = (
        "import sys, json; import jobs.azure.pipeline_step as s, jobs.azure.backend, jobs.azure.session, jobs.backend; "
        "print(json.dumps([getattr(m, '__file__', None) for m in list(sys.modules.values())]))"
    )
    found = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    ours = [Path(f).relative_to(ROOT) for f in json.loads(found.stdout) if f and Path(f).is_relative_to(ROOT)]
    ours = [path for path in ours if path.parts[0] not in (".venv", ".venv-scoring")]
    assert any(path.parts[0] == "infra" for path in ours)  # the contract, so the check below means something
    assert [str(path) for path in ours if path.parts[0] not in uploaded] == []


# --- the register step's logic, on its own -------------------------------------------------


@pytest.fixture(scope="module")
def small_model(tmp_path_factory) -> Path:
    import mlflow.sklearn
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    frame = pd.read_csv(DEFAULT_CSV)
    X = frame[["age", "ejection_fraction", "serum_creatinine"]].astype("float64")
    target = tmp_path_factory.mktemp("model") / "best_model"
    mlflow.sklearn.save_model(
        LogisticRegression(max_iter=500).fit(X, frame["DEATH_EVENT"]), str(target), pip_requirements=["scikit-learn"]
    )
    return target


@dataclass
class Registry:
    calls: list[tuple[Path, str, dict[str, str], str]] = field(default_factory=list)

    def __call__(self, folder: Path, name: str, tags: dict[str, str], description: str) -> str:
        self.calls.append((folder, name, tags, description))
        return str(len(self.calls))


RUN_TAGS = {
    "data_version": "abc123",
    "git_commit": "deadbeef",
    "setting.timeout_minutes": "20",
    "automl_best_child_run_id": "automl_run_3",
}


def training(auc: float, **extra: float) -> TrainingRun:
    return TrainingRun("automl_run", "automl_run_3", {"AUC_weighted": auc, **extra}, RUN_TAGS)


def trial(algorithm: str, score: float):
    return type("Job", (), {"properties": {"run_algorithm": algorithm, "score": str(score)}})()


def test_the_register_step_registers_a_model_that_passes_the_gate(small_model, tmp_path):
    registry = Registry()
    version = register_best_model(
        small_model,
        training(0.91, accuracy=0.86, log_loss=0.4),
        [trial("LightGBM", 0.91), trial("LogisticRegression", 0.85)],
        [],
        None,
        "heart-failure-automl",
        registry,
        tmp_path / "out",
    )
    assert version == "1"
    folder, name, tags, _ = registry.calls[0]
    assert (folder, name) == (small_model, "heart-failure-automl")
    assert tags["training_run"] == "automl_run" and tags["best_child_run"] == "automl_run_3"
    assert tags["data_version"] == "abc123" and tags["git_commit"] == "deadbeef"  # from the run, not the step
    assert tags["setting.timeout_minutes"] == "20" and tags["budget.trials"] == "2"
    assert tags["metric.AUC_weighted"] == "0.910000" and "metric.log_loss" not in tags
    assert tags["gate.baseline"].startswith("baseline LogisticRegression") and tags["gate.min_auc"] == "off"
    assert json.loads((tmp_path / "out" / "registration.json").read_text())["version"] == "1"


def test_the_register_step_refuses_a_weak_model_and_registers_nothing(small_model, tmp_path):
    registry = Registry()
    with pytest.raises(JobsError, match=r"0\.7000 is below the threshold 0\.8000"):
        register_best_model(small_model, training(0.70), [], [], 0.80, "m", registry, tmp_path / "out")
    assert registry.calls == []
    assert not (tmp_path / "out" / "registration.json").exists()


def test_the_register_step_refuses_a_model_below_the_champion_for_its_features(small_model, tmp_path):
    registry = Registry()
    champion = ("4", {"training_run": "older", "dropped_columns": "none", "metric.AUC_weighted": "0.900000"})
    with pytest.raises(JobsError, match=r"champion.*0\.8500 vs version 4 \(dropped: none\) 0\.9000"):
        register_best_model(small_model, training(0.85), [], [champion], None, "m", registry, tmp_path / "out")
    assert registry.calls == []


def test_the_register_step_needs_an_mlflow_model(tmp_path):
    with pytest.raises(JobsError, match="not an MLflow model"):
        register_best_model(tmp_path, training(0.9), [], [], 0.8, "m", Registry(), tmp_path)


def test_the_step_finds_the_automl_siblings_best_child():
    @dataclass
    class Run:
        run_id: str
        tags: dict
        metrics: dict

        @property
        def info(self):
            return type("Info", (), {"run_id": self.run_id, "experiment_id": "exp"})()

        @property
        def data(self):
            return type("Data", (), {"tags": self.tags, "metrics": self.metrics})()

    runs = {
        "pipeline": Run("pipeline", {"data_version": "v9", "git_commit": "c0ffee", "setting.seed": "42"}, {}),
        "register_step": Run("register_step", {"mlflow.parentRunId": "pipeline"}, {}),
        "automl": Run(
            "automl",
            {"mlflow.parentRunId": "pipeline", "automl_best_child_run_id": "automl_4", "setting.seed": "42"},
            {},
        ),
        "automl_4": Run("automl_4", {}, {"AUC_weighted": 0.93}),
    }

    class Client:
        def get_run(self, run_id):
            return runs[run_id]

        def search_runs(self, experiment_ids, filter_string):
            assert filter_string == "tags.mlflow.parentRunId = 'pipeline'"
            return [runs["register_step"], runs["automl"]]

    found = automl_run(Client(), "register_step")
    assert (found.name, found.best_child, dict(found.metrics)) == ("automl", "automl_4", {"AUC_weighted": 0.93})
    assert found.tags["data_version"] == "v9" and found.tags["git_commit"] == "c0ffee"


# --- dry-run files: usable with `az ml` as they are, or saying where not ---------------------------


def test_pipeline_dry_run_writes_the_data_asset_it_refers_to(outputs_file, tmp_path):
    from azure.ai.ml import load_data

    out = tmp_path / "specs"
    assert (
        main(
            [
                "pipeline",
                "--target",
                "azure",
                "--outputs",
                str(outputs_file),
                "--dry-run",
                "--out",
                str(out),
                "--drop",
                "time",
            ]
        )
        == 0
    )
    data = load_data(str(out / "data.yml"))
    raw = yaml.safe_load((out / "pipeline-job.yml").read_text())
    assert raw["inputs"]["training_data"]["path"] == f"azureml:{data.name}:{data.version}"
    assert (out / yaml.safe_load((out / "data.yml").read_text())["path"] / "MLTable").is_file()


def test_dry_run_marks_its_placeholders_in_the_files_and_the_output(outputs_file, tmp_path, capsys):
    from azure.ai.ml import load_model, load_online_deployment

    out = tmp_path / "specs"
    assert main(["all", "--target", "azure", "--outputs", str(outputs_file), "--dry-run", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    model_text = (out / "model.yml").read_text()
    model = load_model(str(out / "model.yml"))
    assert model_text.startswith("# PLACEHOLDER: ")
    assert "<best-child-run-id>" in model.path and "_best-child" not in model_text
    assert "automl_best_child_run_id" in model_text
    deployment_text = (out / "deployment.yml").read_text()
    deployment = load_online_deployment(str(out / "deployment.yml"))
    assert deployment_text.startswith("# PLACEHOLDER: environment.conda_file is scoring/conda.yaml")
    assert "version 1 stands for the version `register` returns" in deployment_text
    assert printed.count("  PLACEHOLDER: ") == model_text.count("# PLACEHOLDER") + deployment_text.count(
        "# PLACEHOLDER"
    )
    assert re.fullmatch(
        r"mcr\.microsoft\.com/azureml/openmpi4\.1\.0-ubuntu22\.04:\d{8}\.v\d+", deployment.environment.image
    )


def test_no_image_is_tagged_latest():
    from jobs.azure.specs import BASE_IMAGE

    for name in ("register_model.yml", "deploy_model.yml"):
        component = load_component(source=str(ROOT / "jobs" / "azure" / "components" / name))
        assert component.environment.image == BASE_IMAGE, name
    assert not BASE_IMAGE.endswith(":latest")


def test_each_step_runs_as_the_submitting_user_not_the_whole_pipeline(outputs_file, tmp_path):
    # The register (and deploy) steps call Azure ML with AzureMLOnBehalfOfCredential, which needs the step's own
    # identity to be the user's; the documented form sets it on the step (jobs/azure/specs.py pipeline).
    session = FakeSession()
    backend = AzureBackend(session, OUTPUTS, "dev", say=lambda _: None, sleep=lambda _: None, state_dir=tmp_path)
    backend.pipeline(TrainingSettings(), DEFAULT_CSV, 0.8, None, wait=False)
    job = session.ml.ops("jobs.create_or_update")[0]["job"]
    body = job._to_rest_object().properties
    assert body.identity is None
    # azure-ai-ml writes an AutoML node through its YAML schema ({"type": "user_identity"}) and a command node
    # through the REST model ({"identity_type": "UserIdentity"}): both are the user's identity.
    kinds = {
        name: step["identity"].get("type") or step["identity"].get("identity_type") for name, step in body.jobs.items()
    }
    assert {name: kind.replace("_", "").lower() for name, kind in kinds.items()} == {
        "train": "useridentity",
        "register": "useridentity",
    }
    out = tmp_path / "specs"
    assert main(["pipeline", "--target", "azure", "--outputs", str(outputs_file), "--dry-run", "--out", str(out)]) == 0
    raw = yaml.safe_load((out / "pipeline-job.yml").read_text())
    assert "identity" not in raw
    assert {name: step["identity"]["type"] for name, step in raw["jobs"].items()} == {
        "train": "user_identity",
        "register": "user_identity",
    }
