"""Promotion and rollback through the real MLClient on the wire (tests/jobs/wire): the registry's discovery, the
workspace-to-registry import, the registry's own asset PUTs, then prod's blue/green from the registry.

The fake service models one workspace (its ARM paths, its storage), so prod's stack outputs name that workspace
too and prod is told apart by its own endpoint; the MLClient on prod is still a second client, built by
AzureSession.workspace_client from prod's outputs. What stands for Azure's answers, with the recording
or contract each follows, is in tests/jobs/wire/service.py (REC_PROMOTE, REC_REGISTRY_MODEL, SPEC_ASYNC).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from jobs.azure.backend import AzureBackend
from jobs.azure.rollout import PREVIOUS_SLOT, SERVING_SLOT
from jobs.azure.session import AzureSession
from jobs.azure.stack_outputs import StackOutputs
from jobs.backend import DeployOptions
from jobs.errors import JobsError
from tests.jobs.wire import fixtures, scenario, service
from tests.jobs.wire.service import Answer

wire = fixtures.wire
ml = fixtures.ml

PROD_ENDPOINT = "hf-prod-def456"
DEV = replace(scenario.OUTPUTS, registry_name=service.REGISTRY)
PROD = StackOutputs(
    service.SUBSCRIPTION,
    service.RESOURCE_GROUP,
    service.WORKSPACE,
    endpoint_name=PROD_ENDPOINT,
    registry_name=service.REGISTRY,
)
REGISTRY_MODELS = rf"/registries/{service.REGISTRY}/models/heart-failure-automl/versions/1$"


@pytest.fixture
def backend(wire, ml, tmp_path):
    wire.azure.add_endpoint(scenario.ENDPOINT)
    wire.azure.add_endpoint(PROD_ENDPOINT)
    messages: list[str] = []
    b = AzureBackend(
        AzureSession(ml, wire.credential),
        DEV,
        "dev",
        say=messages.append,
        sleep=lambda s: None,
        state_dir=tmp_path,
        stack_outputs={"prod": PROD}.__getitem__,
        promote_options=DeployOptions(threshold=0.3),
    )
    b.messages = messages  # type: ignore[attr-defined]
    b.register(scenario.finished_job(wire, b), 0.80)
    return b


def prod_endpoint(wire):
    return wire.azure.resource(f"/onlineEndpoints/{PROD_ENDPOINT}")


def test_promote_imports_the_model_tags_the_copy_and_deploys_prod_from_the_registry(backend, wire):
    assert backend.promote("1", "prod") == "blue"
    azure = wire.azure
    (imported,) = azure.calls("POST", rf"/registries/{service.REGISTRY}/import$")
    sent = imported.json()["properties"]
    assert sent["sourceAssetId"].endswith(f"/workspaces/{service.WORKSPACE_ID}/models/heart-failure-automl/versions/1")
    assert (sent["destinationName"], sent["destinationVersion"]) == ("heart-failure-automl", "1")
    # The copy's tags, written by a PUT of the registry version: dev's lineage plus promoted.*.
    (tagged,) = azure.calls("PUT", REGISTRY_MODELS)
    tags = tagged.json()["properties"]["tags"]
    dev_tags = azure.resource("/models/heart-failure-automl/versions/1")["properties"]["tags"]
    assert {k: tags[k] for k in dev_tags} == dev_tags and tags["leaking_columns_used"] == "none"
    assert tags["promoted.from"].endswith(f"/resourceGroups/{service.RESOURCE_GROUP}/workspaces/{service.WORKSPACE}")
    assert tags["promoted.from_version"] == "1" and tags["promoted.at"].endswith("Z")
    assert tagged.json()["properties"]["modelType"] == "mlflow_model"
    (env,) = azure.calls("PUT", rf"/registries/{service.REGISTRY}/environments/heart-failure-scoring/versions/")
    assert "python=3.9.19" in env.json()["properties"]["condaFile"]
    (deployment,) = azure.calls("PUT", f"/onlineEndpoints/{PROD_ENDPOINT}/deployments/blue$")
    properties = deployment.json()["properties"]
    assert properties["model"] == f"azureml://registries/{service.REGISTRY}/models/heart-failure-automl/versions/1"
    assert properties["environmentId"].startswith(
        f"azureml://registries/{service.REGISTRY}/environments/heart-failure-scoring/versions/"
    )
    (move,) = azure.calls("PUT", f"/onlineEndpoints/{PROD_ENDPOINT}$")
    assert move.json()["properties"]["traffic"] == {"blue": 100}
    assert move.json()["tags"][SERVING_SLOT] == "blue"
    assert prod_endpoint(wire)["properties"]["traffic"] == {"blue": 100}


def test_the_second_promotion_reuses_the_registry_copy_and_keeps_blue_for_a_rollback(backend, wire):
    backend.promote("1", "prod")
    assert backend.promote("1", "prod") == "green"
    azure = wire.azure
    assert len(azure.calls("POST", r"/import$")) == 1
    assert len(azure.calls("PUT", r"/registries/.*/environments/")) == 1
    assert azure.calls("DELETE", f"/onlineEndpoints/{PROD_ENDPOINT}/deployments/") == []
    assert prod_endpoint(wire)["tags"][PREVIOUS_SLOT] == "blue"


def test_a_failed_smoke_test_on_prod_moves_no_traffic(backend, wire):
    backend.promote("1", "prod")
    wire.azure.scoring_answer = Answer(500, {"message": "An unexpected error occurred in scoring script."})
    with pytest.raises(JobsError, match="traffic was not moved"):
        backend.promote("1", "prod")
    assert prod_endpoint(wire)["properties"]["traffic"] == {"blue": 100}
    assert len(wire.azure.calls("PUT", f"/onlineEndpoints/{PROD_ENDPOINT}$")) == 1


def test_another_model_in_the_registry_under_the_same_version_is_refused(backend, wire):
    wire.azure.registry[("models", "heart-failure-automl", "1")] = {
        "id": f"azureml://registries/{service.REGISTRY}/models/heart-failure-automl/versions/1",
        "name": "1",
        "properties": {"tags": {"training_run": "automl_job_99", "promoted.from": "azureml://elsewhere"},
                       "modelType": "mlflow_model", "modelUri": "https://x", "flavors": {}},
    }  # fmt: skip
    with pytest.raises(JobsError, match="it is another model"):
        backend.promote("1", "prod")
    assert wire.azure.calls("POST", r"/import$") == []
    assert wire.azure.calls("PUT", f"/onlineEndpoints/{PROD_ENDPOINT}/deployments/") == []


def test_rollback_is_one_update_of_prods_endpoint(backend, wire):
    backend.promote("1", "prod")
    backend.promote("1", "prod")
    before = len(wire.azure.calls("PUT", f"/onlineEndpoints/{PROD_ENDPOINT}$"))
    assert backend.rollback("prod") == "blue"
    moves = wire.azure.calls("PUT", f"/onlineEndpoints/{PROD_ENDPOINT}$")
    assert len(moves) == before + 1
    assert moves[-1].json()["properties"]["traffic"] == {"blue": 100}
    assert prod_endpoint(wire)["tags"][PREVIOUS_SLOT] == ""


def test_an_import_that_keeps_no_tags_still_ends_with_every_lineage_tag(backend, wire):
    wire.azure.import_keeps_tags = False
    backend.promote("1", "prod")
    tags = wire.azure.registry_asset("models", "heart-failure-automl", "1")["properties"]["tags"]
    assert (
        tags["training_run"]
        == wire.azure.resource("/models/heart-failure-automl/versions/1")["properties"]["tags"]["training_run"]
    )
    assert tags["promoted.from_version"] == "1"


def test_a_registry_the_discovery_service_does_not_know_is_a_message(backend, wire):
    misnamed = replace(PROD, registry_name="mlr-typo")
    backend.outputs = replace(DEV, registry_name="mlr-typo")
    backend.stack_outputs = {"prod": misnamed}.__getitem__
    with pytest.raises(JobsError, match=r"Azure ML knows no registry named mlr-typo"):
        backend.promote("1", "prod")
    assert wire.azure.calls("POST", r"/import$") == []
