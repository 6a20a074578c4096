"""The lesson's challenge: train and register as one Azure ML pipeline job."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from azure.ai.ml import load_component, load_job

from jobs.azure.backend import AzureBackend
from jobs.azure.stack_outputs import StackOutputs
from jobs.backend import DeployOptions
from jobs.cli import main
from jobs.dataset import DEFAULT_CSV, content_version
from jobs.errors import JobsError
from jobs.pipeline_step import automl_metrics, register_best_model
from jobs.training import TrainingSettings
from tests.fakes import FakeSession

ROOT = Path(__file__).resolve().parents[2]
OUTPUTS = StackOutputs(subscription_id="sub", resource_group="rg", workspace_name="mlw", compute_name="cpu-dev-aml",
                       compute_max_nodes=3, endpoint_name="hf-dev-abc123")


@pytest.fixture
def outputs_file(tmp_path):
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps({"subscription_id": "s", "resource_group": "r", "workspace_name": "w",
                                "compute_name": "cpu-dev-x-aml", "compute_max_nodes": 3, "endpoint_name": "hf-x"}))
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


def test_the_deploy_step_is_off_by_default_and_on_with_the_flag(tmp_path):
    session = FakeSession()
    backend = AzureBackend(session, OUTPUTS, "dev", say=lambda _: None, sleep=lambda _: None, state_dir=tmp_path)
    backend.pipeline(TrainingSettings(), DEFAULT_CSV, 0.8, DeployOptions(instance_count=2), wait=False)
    job = session.ml.ops("jobs.create_or_update")[0]["job"]
    assert set(job.jobs) == {"train", "register", "deploy"}
    assert job.jobs["deploy"].inputs["endpoint_name"]._data == "hf-dev-abc123"


def test_dry_run_writes_a_pipeline_that_loads_back_wired_by_best_model(outputs_file, tmp_path):
    out = tmp_path / "specs"
    assert main(["pipeline", "--target", "azure", "--outputs", str(outputs_file), "--dry-run", "--out",
                 str(out)]) == 0
    job = load_job(str(out / "pipeline-job.yml"))
    assert job.type == "pipeline"
    assert set(job.jobs) == {"train", "register"}
    raw = yaml.safe_load((out / "pipeline-job.yml").read_text())
    assert raw["jobs"]["train"]["type"] == "automl"
    assert raw["jobs"]["train"]["outputs"]["best_model"] == {"type": "mlflow_model"}
    assert raw["jobs"]["register"]["inputs"]["model"]["path"] == "${{parent.jobs.train.outputs.best_model}}"
    assert raw["settings"]["default_compute"].endswith("cpu-dev-x-aml")
    assert raw["inputs"]["training_data"]["path"] == f"azureml:heart-failure-records:{content_version(DEFAULT_CSV)}"
    code = out / raw["jobs"]["register"]["component"]["code"]
    assert (code / "jobs" / "pipeline_step.py").is_file()


def test_the_components_load_and_upload_only_what_they_need():
    for name in ("register_model.yml", "deploy_model.yml"):
        component = load_component(source=str(ROOT / "jobs" / "components" / name))
        assert component.type == "command"
        assert "python -m jobs.pipeline_step" in component.command
    rules = [line for line in (ROOT / ".amlignore").read_text().splitlines() if line and not line.startswith("#")]
    assert rules[:3] == ["/*", "!/jobs/", "!/scoring/"]


# --- the register step's logic, on its own -------------------------------------------------


@pytest.fixture(scope="module")
def small_model(tmp_path_factory) -> Path:
    import mlflow.sklearn
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    frame = pd.read_csv(DEFAULT_CSV)
    X = frame[["age", "ejection_fraction", "serum_creatinine"]].astype("float64")
    target = tmp_path_factory.mktemp("model") / "best_model"
    mlflow.sklearn.save_model(LogisticRegression(max_iter=500).fit(X, frame["DEATH_EVENT"]), str(target),
                              pip_requirements=["scikit-learn"])
    return target


@dataclass
class Registry:
    calls: list[tuple[Path, str, dict[str, str], str]] = field(default_factory=list)

    def __call__(self, folder: Path, name: str, tags: dict[str, str], description: str) -> str:
        self.calls.append((folder, name, tags, description))
        return str(len(self.calls))


def test_the_register_step_registers_a_model_that_passes_the_gate(small_model, tmp_path):
    registry = Registry()
    version = register_best_model(small_model, {"AUC_weighted": 0.91, "accuracy": 0.86, "log_loss": 0.4},
                                  "automl_run", "automl_run_3", 0.80, "heart-failure-automl", "abc123", "deadbeef",
                                  registry, tmp_path / "out")
    assert version == "1"
    folder, name, tags, _ = registry.calls[0]
    assert (folder, name) == (small_model, "heart-failure-automl")
    assert tags["training_run"] == "automl_run" and tags["best_child_run"] == "automl_run_3"
    assert tags["data_version"] == "abc123" and tags["git_commit"] == "deadbeef"
    assert tags["metric.AUC_weighted"] == "0.910000" and "metric.log_loss" not in tags
    assert json.loads((tmp_path / "out" / "registration.json").read_text())["version"] == "1"


def test_the_register_step_refuses_a_weak_model_and_registers_nothing(small_model, tmp_path):
    registry = Registry()
    with pytest.raises(JobsError, match=r"0\.7000 is below the threshold 0\.8000"):
        register_best_model(small_model, {"AUC_weighted": 0.70}, "r", "r_1", 0.80, "m", "v", "c", registry,
                            tmp_path / "out")
    assert registry.calls == []
    assert not (tmp_path / "out" / "registration.json").exists()


def test_the_register_step_needs_an_mlflow_model(tmp_path):
    with pytest.raises(JobsError, match="not an MLflow model"):
        register_best_model(tmp_path, {"AUC_weighted": 0.9}, "r", "r_1", 0.8, "m", "v", "c", Registry(), tmp_path)


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
        "register_step": Run("register_step", {"mlflow.parentRunId": "pipeline"}, {}),
        "automl": Run("automl", {"mlflow.parentRunId": "pipeline", "automl_best_child_run_id": "automl_4"}, {}),
        "automl_4": Run("automl_4", {}, {"AUC_weighted": 0.93}),
    }

    class Client:
        def get_run(self, run_id):
            return runs[run_id]

        def search_runs(self, experiment_ids, filter_string):
            assert filter_string == "tags.mlflow.parentRunId = 'pipeline'"
            return [runs["register_step"], runs["automl"]]

    assert automl_metrics(Client(), "register_step") == ("automl", "automl_4", {"AUC_weighted": 0.93})
