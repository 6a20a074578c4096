"""`promote` and `rollback` on the Azure target against the fake MLClient (tests/fakes.py): dev's workspace, the
shared registry and prod's workspace, each its own fake; every refusal, idempotency, a failed smoke test."""

from __future__ import annotations

import json

import pytest

from jobs.azure.backend import AzureBackend
from jobs.azure.rollout import PREVIOUS_SLOT, SERVING_SLOT, SERVING_VERSION
from jobs.azure.stack_outputs import StackOutputs
from jobs.backend import DeployOptions
from jobs.dataset import DEFAULT_CSV
from jobs.errors import JobsError
from jobs.promotion_rules import PROMOTION_TAGS
from jobs.training import TrainingSettings
from tests.fakes import FakeMLClient, FakeModel, FakeSession

REGISTRY = "mlr-hf-shared-abc123"
DEV = StackOutputs(
    subscription_id="sub",
    resource_group="rg-dev",
    workspace_name="mlw-dev",
    compute_name="cpu-dev-aml",
    compute_max_nodes=3,
    endpoint_name="hf-dev-abc123",
    registry_name=REGISTRY,
)
PROD = StackOutputs(
    subscription_id="sub",
    resource_group="rg-prod",
    workspace_name="mlw-prod",
    endpoint_name="hf-prod-def456",
    registry_name=REGISTRY,
)
SOURCE = "azureml://subscriptions/sub/resourceGroups/rg-dev/workspaces/mlw-dev"
MODEL_REF = f"azureml://registries/{REGISTRY}/models/heart-failure-automl/versions/1"


@pytest.fixture
def session():
    s = FakeSession()
    s.workspaces["mlw-prod"] = FakeMLClient(endpoint_name=PROD.endpoint_name)
    return s


def make_backend(session, tmp_path, prod=PROD, threshold: float | None = 0.3) -> AzureBackend:
    stacks = {"prod": prod}

    def outputs_of(stack: str) -> StackOutputs:
        if stack not in stacks:
            raise JobsError(f"no stack {stack}")
        return stacks[stack]

    messages: list[str] = []
    b = AzureBackend(
        session,
        DEV,
        "dev",
        say=messages.append,
        sleep=lambda s: None,
        state_dir=tmp_path,
        stack_outputs=outputs_of,
        promote_options=DeployOptions(threshold=threshold),
    )
    b.messages = messages
    return b


@pytest.fixture
def backend(session, tmp_path):
    return make_backend(session, tmp_path)


def registered(backend, session, **train) -> str:
    """Train and register in dev (the gate passes); the version."""
    name = backend.train(TrainingSettings(**train), DEFAULT_CSV, wait=False)
    session.finish_job(name, auc=0.91)
    return backend.register(name, 0.80)


def prod(session) -> FakeMLClient:
    return session.workspaces["mlw-prod"]


def registry(session) -> FakeMLClient:
    return session.ml.registries[REGISTRY]


def test_promote_shares_the_model_with_its_lineage_and_deploys_it_on_prod_from_the_registry(backend, session):
    version = registered(backend, session)
    assert backend.promote(version, "prod") == "blue"
    (shared,) = registry(session).registered
    dev_tags = session.ml.registered[0].tags
    assert shared.type == "mlflow_model"
    assert {k: shared.tags[k] for k in dev_tags} == dev_tags  # every lineage tag
    assert shared.tags["promoted.from"] == SOURCE and shared.tags["promoted.from_version"] == version
    assert set(PROMOTION_TAGS) <= set(shared.tags) and shared.tags["promoted.at"].endswith("Z")
    deployment = prod(session).deployments["blue"]
    assert deployment.model == MODEL_REF
    assert deployment.environment.startswith(f"azureml://registries/{REGISTRY}/environments/heart-failure-scoring/")
    ((_, env),) = registry(session).environments_created.items()
    assert "python=3.9.19" in env.conda_file["dependencies"]  # the model's own environment, from dev
    endpoint = prod(session).endpoints[PROD.endpoint_name]
    assert endpoint.traffic == {"blue": 100}
    assert endpoint.tags[SERVING_SLOT] == "blue" and endpoint.tags[SERVING_VERSION] == version
    # Nothing in dev's own endpoint moved.
    assert session.ml.ops("online_deployments.begin_create_or_update") == []


def test_promoting_the_same_version_again_reuses_the_registry_copy_and_keeps_the_previous_slot(backend, session):
    version = registered(backend, session)
    backend.promote(version, "prod")
    assert backend.promote(version, "prod") == "green"
    assert len(session.ml.ops("models.share")) == 1
    assert len(registry(session).ops("environments.create_or_update")) == 1
    assert any("reused" in m for m in backend.messages)
    endpoint = prod(session).endpoints[PROD.endpoint_name]
    assert endpoint.traffic == {"green": 100} and endpoint.tags[PREVIOUS_SLOT] == "blue"
    assert prod(session).ops("online_deployments.begin_delete") == []  # blue kept for a rollback


def test_a_version_with_a_leaking_column_is_refused_before_anything_is_shared(backend, session):
    version = registered(backend, session, include_leaking_columns=True)
    with pytest.raises(JobsError, match=r"may not be promoted to prod:\n  - it uses time, which leaks the outcome"):
        backend.promote(version, "prod")
    assert session.ml.ops("models.share") == [] and prod(session).deployments == {}


def test_a_version_that_did_not_pass_the_gate_is_refused(backend, session):
    session.ml.registered.append(FakeModel("heart-failure-automl", "1", {"leaking_columns_used": "none"}))
    with pytest.raises(JobsError, match="no quality-gate record"):
        backend.promote("1", "prod")
    assert session.ml.ops("models.share") == [] and registry(session).registered == []


def test_an_unknown_version_is_refused(backend, session):
    registered(backend, session)
    with pytest.raises(JobsError, match="version 7 is not registered in the dev workspace"):
        backend.promote("7", "prod")


def test_another_model_under_the_same_registry_version_is_refused_not_replaced(backend, session):
    version = registered(backend, session)
    other = {"training_run": "automl_job_99", "promoted.from": "azureml://elsewhere", "promoted.from_version": "1"}
    session.registry_client(REGISTRY).registered.append(FakeModel("heart-failure-automl", version, other))
    with pytest.raises(JobsError, match="already has heart-failure-automl version 1, and it is another model"):
        backend.promote(version, "prod")
    assert registry(session).registered[0].tags == other
    assert session.ml.ops("models.share") == [] and prod(session).deployments == {}


def test_a_promotion_stopped_after_the_share_is_completed_on_the_next_run(backend, session):
    version = registered(backend, session)
    dev_tags = dict(session.ml.registered[0].tags)
    session.registry_client(REGISTRY).registered.append(FakeModel("heart-failure-automl", version, dev_tags))
    assert backend.promote(version, "prod") == "blue"
    assert registry(session).registered[0].tags["promoted.from"] == SOURCE
    assert session.ml.ops("models.share") == []


def test_a_share_that_copies_no_tags_still_ends_with_every_lineage_tag(backend, session):
    session.ml.share_keeps_tags = False
    version = registered(backend, session)
    backend.promote(version, "prod")
    assert registry(session).registered[0].tags["training_run"] == session.ml.registered[0].tags["training_run"]


def test_a_failed_smoke_test_on_prod_leaves_its_traffic_where_it_was(backend, session):
    version = registered(backend, session)
    backend.promote(version, "prod")
    prod(session).invoke_answer = json.dumps({"message": "An unexpected error occurred in scoring script."})
    with pytest.raises(JobsError, match="traffic was not moved"):
        backend.promote(version, "prod")
    endpoint = prod(session).endpoints[PROD.endpoint_name]
    assert endpoint.traffic == {"blue": 100} and endpoint.tags[SERVING_SLOT] == "blue"


def test_without_an_operating_point_nothing_is_shared(session, tmp_path):
    b = make_backend(session, tmp_path, threshold=None)
    version = registered(b, session)
    with pytest.raises(JobsError, match="records no operating point, and none was given: pass --threshold"):
        b.promote(version, "prod")
    assert session.ml.ops("models.share") == []


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (
            StackOutputs("sub", "rg-prod", "mlw-prod", endpoint_name="e", registry_name="mlr-other"),
            "different registries",
        ),
        (StackOutputs("sub", "rg-prod", "mlw-prod", endpoint_name="e"), "the stack prod exports no registry_name"),
    ],
)
def test_stacks_that_do_not_share_one_registry_are_refused(session, tmp_path, target, message):
    b = make_backend(session, tmp_path, prod=target)
    version = registered(b, session)
    with pytest.raises(JobsError, match=message):
        b.promote(version, "prod")
    assert session.ml.ops("models.share") == []


def test_promoting_to_the_stack_itself_is_refused(backend, session):
    with pytest.raises(JobsError, match="--to dev is the stack this command runs on"):
        backend.promote("1", "dev")


def test_rollback_puts_the_traffic_back_on_the_previous_slot_in_one_update(backend, session):
    first = registered(backend, session)
    backend.promote(first, "prod")
    backend.promote(first, "prod")
    updates = len(prod(session).ops("online_endpoints.begin_create_or_update"))
    assert backend.rollback("prod") == "blue"
    assert len(prod(session).ops("online_endpoints.begin_create_or_update")) == updates + 1
    endpoint = prod(session).endpoints[PROD.endpoint_name]
    assert endpoint.traffic == {"blue": 100}
    assert endpoint.tags[SERVING_SLOT] == "blue" and endpoint.tags[PREVIOUS_SLOT] == ""
    # Rolled back once: a second rollback has nothing recorded to go back to.
    with pytest.raises(JobsError, match="has no previous deployment to roll back to"):
        backend.rollback("prod")


def test_rollback_with_nothing_promoted_before_is_refused_and_changes_nothing(backend, session):
    backend.promote(registered(backend, session), "prod")
    with pytest.raises(JobsError, match="no previous deployment to roll back to"):
        backend.rollback("prod")
    assert prod(session).endpoints[PROD.endpoint_name].traffic == {"blue": 100}


def test_rollback_to_a_deployment_deleted_by_hand_is_refused(backend, session):
    version = registered(backend, session)
    backend.promote(version, "prod")
    backend.promote(version, "prod")
    del prod(session).deployments["blue"]
    with pytest.raises(JobsError, match="previous deployment blue of hf-prod-def456 no longer exists"):
        backend.rollback("prod")
    assert prod(session).endpoints[PROD.endpoint_name].traffic == {"green": 100}


# -- the dry run and the reviewer's page -------------------------------------------------------------------


def test_a_dry_run_writes_what_would_be_shared_and_deployed_without_azure(tmp_path):
    import yaml

    from jobs.azure.dry_run import DryRunBackend

    said: list[str] = []
    dry = DryRunBackend(
        DEV, tmp_path, say=said.append, promote_options=DeployOptions(threshold=0.3), stack_outputs={"prod": PROD}.get
    )
    assert dry.promote("3", "prod") == "blue"
    deployment = yaml.safe_load((tmp_path / "promote-deployment.yml").read_text())
    assert deployment["model"] == f"azureml://registries/{REGISTRY}/models/heart-failure-automl/versions/3"
    assert deployment["environment"].startswith(f"azureml://registries/{REGISTRY}/environments/heart-failure-scoring/")
    assert deployment["endpoint_name"] == PROD.endpoint_name
    environment = yaml.safe_load((tmp_path / "promote-environment.yml").read_text())
    assert deployment["environment"].endswith(f"/versions/{environment['version']}")
    text = "\n".join(said)
    assert f"would share it to registry {REGISTRY}" in text and "promoted.from" in text
    assert "would smoke-test blue alone" in text
    assert "previous.slot" in dry.rollback("prod")


def test_the_review_page_reads_the_versions_tags_and_says_whether_it_may_go(backend, session):
    from jobs.azure.review import page

    version = registered(backend, session)
    text, allowed = page(session.ml, version, "mlw-dev")
    assert allowed and "## Promote heart-failure-automl version 1 (workspace mlw-dev) to prod?" in text
    session.ml.registered[0].tags["leaking_columns_used"] = "time"
    text, allowed = page(session.ml, version, "mlw-dev")
    assert not allowed and "- NO: uses no leaking column" in text
    with pytest.raises(JobsError, match="version 9 is not registered in the workspace mlw-dev"):
        page(session.ml, "9", "mlw-dev")


def test_rollback_to_a_deployment_that_is_not_succeeded_is_refused(backend, session):
    version = registered(backend, session)
    backend.promote(version, "prod")
    backend.promote(version, "prod")
    prod(session).deployments["blue"]._provisioning_state = "Failed"  # what a GET of a failed one says
    with pytest.raises(JobsError, match="previous deployment blue of hf-prod-def456 is Failed, not Succeeded"):
        backend.rollback("prod")
    assert prod(session).endpoints[PROD.endpoint_name].traffic == {"green": 100}


def test_the_target_stacks_outputs_are_its_own_not_this_commands_overrides(tmp_path, monkeypatch):
    from jobs.azure.stack_outputs import resolve

    prod_file = tmp_path / "prod.json"
    prod_file.write_text(json.dumps({**PROD.__dict__, "subscription_id": "00000000-0000-0000-0000-0000000000bb"}))
    (tmp_path / "config.json").write_text(
        json.dumps(
            {"subscription_id": "00000000-0000-0000-0000-0000000000aa", "resource_group": "r", "workspace_name": "w"}
        )
    )
    monkeypatch.setenv("AZUREML_WORKSPACE_NAME", "mlw-dev-from-env")
    monkeypatch.setenv("AZUREML_ENDPOINT_NAME", "hf-dev-from-env")
    target = resolve("prod", prod_file, {"workspace_name": "mlw-dev-flag"}, cwd=tmp_path, only_stack=True)
    assert (target.resource_group, target.workspace_name, target.endpoint_name) == (
        "rg-prod",
        "mlw-prod",
        PROD.endpoint_name,
    )
    # Without only_stack the same call is this command's own workspace, overrides and all.
    assert resolve("prod", prod_file, {"workspace_name": "mlw-dev-flag"}, cwd=tmp_path).workspace_name == "mlw-dev-flag"


def test_promotion_deploys_with_the_deploy_flags_the_command_line_gives_it():
    import argparse

    from jobs.azure.backend import _promote_options

    given = argparse.Namespace(threshold=0.2, instance_type="Standard_D4s_v5", instance_count=2, collect=True)
    assert _promote_options(given) == DeployOptions(
        instance_type="Standard_D4s_v5", instance_count=2, collect=True, threshold=0.2
    )
    assert _promote_options(argparse.Namespace()) == DeployOptions()  # a command line without those flags
