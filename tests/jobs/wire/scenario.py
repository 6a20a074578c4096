"""What the wire tests share: stack outputs for the fake workspace, a backend on the real MLClient, a finished job."""

from __future__ import annotations

from typing import Any

import yaml

from jobs.azure.backend import AzureBackend
from jobs.azure.session import AzureSession
from jobs.azure.stack_outputs import StackOutputs
from jobs.dataset import DEFAULT_CSV
from jobs.training import TrainingSettings
from tests.jobs.wire import service
from tests.jobs.wire.fixtures import Wire

ENDPOINT = "hf-dev-abc123"
OUTPUTS = StackOutputs(
    subscription_id=service.SUBSCRIPTION,
    resource_group=service.RESOURCE_GROUP,
    workspace_name=service.WORKSPACE,
    compute_name="cpu-dev-aml",
    compute_max_nodes=3,
    endpoint_name=ENDPOINT,
)
# The conda.yaml an AutoML MLflow model carries (its Python and pins), as the fake fakes.py uses.
MODEL_CONDA = {
    "channels": ["conda-forge"],
    "dependencies": ["python=3.9.19", "pip", {"pip": ["azureml-automl-runtime==1.60.0", "scikit-learn==1.5.1"]}],
}


def backend(wire: Wire, ml: Any, state_dir: Any) -> AzureBackend:
    """AzureBackend on the real MLClient; `messages` and `sleeps` (its own retry back-off) are recorded."""
    messages: list[str] = []
    sleeps: list[float] = []
    b = AzureBackend(
        AzureSession(ml, wire.credential), OUTPUTS, "dev", say=messages.append, sleep=sleeps.append, state_dir=state_dir
    )
    b.messages, b.sleeps = messages, sleeps  # type: ignore[attr-defined]
    return b


def finished_job(wire: Wire, b: AzureBackend, auc: float = 0.91) -> str:
    """Submit the lesson's AutoML job and let Azure finish it: run tags naming the best child, its metrics,
    its trials in run history and its MLflow model in the job's outputs."""
    name = b.train(TrainingSettings(), DEFAULT_CSV, wait=False)
    child = f"{name}_7"
    wire.azure.job_statuses[name] = ["Completed"]
    wire.azure.runs[name] = {"tags": {"automl_best_child_run_id": child}, "metrics": {"AUC_weighted": auc}}
    wire.azure.runs[child] = {"tags": {}, "metrics": {"AUC_weighted": auc, "accuracy": 0.85}}
    wire.azure.children[name] = [
        {"runId": f"{name}_setup", "status": "Completed", "properties": {}},
        {"runId": child, "status": "Completed", "properties": {"run_algorithm": "LightGBM", "score": str(auc)}},
    ]
    folder = f"ExperimentRun/dcid.{child}/outputs/mlflow-model"
    wire.azure.add_artifact(f"{folder}/conda.yaml", yaml.safe_dump(MODEL_CONDA).encode())
    wire.azure.add_artifact(f"{folder}/MLmodel", b"flavors:\n  python_function: {}\n")
    return name


def registered(wire: Wire, ml: Any, state_dir: Any) -> AzureBackend:
    """backend() with the stack's endpoint in the workspace and a finished job's model registered (version 1):
    where every deploy and monitoring scenario starts."""
    wire.azure.add_endpoint(ENDPOINT)
    b = backend(wire, ml, state_dir)
    b.register(finished_job(wire, b), 0.80)
    return b
