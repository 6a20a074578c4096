"""Data and training through the real MLClient on the wire (tests/jobs/wire)."""

from __future__ import annotations

import pytest

from jobs.azure.backend import AzureBackend
from jobs.azure.session import AzureSession
from jobs.azure.stack_outputs import StackOutputs
from jobs.dataset import ASSET_NAME, DEFAULT_CSV, content_version
from jobs.training import TrainingSettings
from tests.jobs.wire import service
from tests.jobs.wire.fixtures import ml, wire  # noqa: F401  (fixtures)

OUTPUTS = StackOutputs(
    subscription_id=service.SUBSCRIPTION,
    resource_group=service.RESOURCE_GROUP,
    workspace_name=service.WORKSPACE,
    compute_name="cpu-dev-aml",
    compute_max_nodes=3,
    endpoint_name="hf-dev-abc123",
)


@pytest.fixture
def backend(wire, ml, tmp_path):
    messages: list[str] = []
    sleeps: list[float] = []
    b = AzureBackend(
        AzureSession(ml, wire.credential), OUTPUTS, "dev", say=messages.append, sleep=sleeps.append,
        state_dir=tmp_path, poll_s=30.0,
    )
    b.messages, b.sleeps = messages, sleeps
    return b


def test_probe(backend, wire):
    name = backend.train(TrainingSettings(), DEFAULT_CSV, wait=False)
    for r in wire.azure.requests:
        print(r.method, r.url[:200])
    print(name)


def test_probe2(backend, wire):
    from jobs.backend import DeployOptions
    wire.azure.add_endpoint("hf-dev-abc123")
    name = backend.train(TrainingSettings(), DEFAULT_CSV, wait=False)
    wire.azure.job_statuses[name] = ["Completed"]
    wire.azure.runs[name] = {"tags": {"automl_best_child_run_id": name + "_7"}, "metrics": {}}
    wire.azure.runs[name + "_7"] = {"tags": {}, "metrics": {"AUC_weighted": 0.91}}
    wire.azure.children[name] = [{"runId": name + "_setup", "status": "Completed", "properties": {}}, {"runId": name + "_7", "status": "Completed", "properties": {"run_algorithm": "LightGBM", "score": "0.91"}}]
    n0 = len(wire.azure.requests)
    try:
        v = backend.register(name, 0.8)
        print("VERSION", v)
        n0 = len(wire.azure.requests)
        backend.deploy(None, DeployOptions())
    finally:
        for r in wire.azure.requests[n0:]:
            print(r.method, r.url[:250])
        print(wire.azure.unrouted, wire.offline)
