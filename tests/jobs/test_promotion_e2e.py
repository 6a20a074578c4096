"""docs/promotion.md's offline sequence through the real command line: register in dev, promote to prod (a copy in
prod's MLflow registry, deployed on prod's endpoint), promote again, roll back; and each refusal."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from jobs.lineage import GATE_TAGS, MODEL_NAME
from jobs.local import inference_server
from jobs.local.registry import ModelVersion
from jobs.local.ui import ui_installed
from jobs.promotion_rules import PROMOTION_TAGS
from tests.jobs.conftest import registered, registry, servers_of
from tests.jobs.conftest import run_jobs as jobs

pytestmark = pytest.mark.slow


def copy_run(home, run, run_id: str, **settings: str) -> None:
    """Another finished run with the same model under `run_id` (its settings changed as given): a second version
    to register without a second training."""
    target = home / "runs" / run_id
    shutil.copytree(run, target)
    info = json.loads((target / "run.json").read_text())
    info["run_id"] = run_id
    info["settings"].update(settings)
    (target / "run.json").write_text(json.dumps(info))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, training):
    """dev holds versions 1 and 2 (gated, honest: the session's trained model twice), 3 (gated, uses the leaking
    `time`) and 4 (registered by hand, without a gate); prod holds nothing yet."""
    home = tmp_path_factory.mktemp("promotion")
    run = training[0]
    shutil.copytree(run, home / "runs" / run.name)
    env = {**os.environ, "JOBS_LOCAL_HOME": str(home / ".local"), "JOBS_RUNS_DIR": str(home / "runs")}
    assert jobs(env, "register", "--run", run.name).returncode == 0
    copy_run(home, run, "20990101-000000-second")
    assert jobs(env, "register", "--run", "20990101-000000-second").returncode == 0
    copy_run(home, run, "20990101-000000-leaking", leaking_columns_used="time")
    assert jobs(env, "register", "--run", "20990101-000000-leaking").returncode == 0
    first = registered(home)[0]
    ungated = {k: v for k, v in first.tags.items() if k not in GATE_TAGS} | {"training_run": "by hand"}
    registry(home).copy_in(MODEL_NAME, first, ungated, lambda _: False)
    assert [v.version for v in registered(home)] == [1, 2, 3, 4]
    yield home, env, inference_server.free_port()
    for environment in ("dev", "prod"):
        jobs(env, "stop", "--env", environment)
    for proc in servers_of(home):
        proc.kill()


def test_each_refusal_says_why_and_changes_nothing(workspace):
    home, env, port = workspace
    leaking = jobs(env, "promote", "--version", "3", "--to", "prod", "--port", str(port))
    assert leaking.returncode == 2 and "Traceback" not in leaking.stderr
    assert "heart-failure-automl dev version 3 may not be promoted to prod" in leaking.stderr
    assert "it uses time, which leaks the outcome" in leaking.stderr

    ungated = jobs(env, "promote", "--version", "4", "--to", "prod", "--port", str(port))
    assert ungated.returncode == 2
    assert "it carries no quality-gate record (gate.baseline, gate.champion" in ungated.stderr

    unknown = jobs(env, "promote", "--version", "99", "--to", "prod", "--port", str(port))
    assert unknown.returncode == 2 and "has no version 99; registered versions are 1, 2, 3, 4" in unknown.stderr

    for name, why in (
        ("staging", "'staging' is not an environment; allowed: prod"),
        ("dev", "'dev' cannot be given to --to; allowed: prod"),
    ):
        wrong = jobs(env, "promote", "--version", "1", "--to", name)
        assert wrong.returncode == 2 and f"argument --to: {why}" in wrong.stderr, wrong.stderr
    assert "dev is where `register` puts versions" in wrong.stderr
    bad_env = jobs(env, "status", "--env", "qa")
    assert bad_env.returncode == 2 and "'qa' is not an environment; allowed: dev, prod" in bad_env.stderr

    nothing = jobs(env, "rollback", "--to", "prod", "--port", str(port))
    assert nothing.returncode == 2 and "prod has no previous version to roll back to" in nothing.stderr

    assert registered(home, "prod") == []
    assert servers_of(home) == [] and not inference_server.port_in_use(port)


def test_promote_copies_with_lineage_and_origin_deploys_and_is_idempotent(workspace):
    home, env, port = workspace
    promoted = jobs(env, "promote", "--version", "1", "--to", "prod", "--port", str(port))
    assert promoted.returncode == 0, promoted.stderr
    assert f"promoted {MODEL_NAME} dev version 1 to prod as version 1" in promoted.stdout
    assert f"deployed {MODEL_NAME} prod version 1 at http://127.0.0.1:{port}/score" in promoted.stdout
    (copy,) = registered(home, "prod")
    source = registered(home)[0]
    # Every lineage tag, unchanged, and where it came from; the MLflow model itself, in prod's own store.
    assert {k: v for k, v in copy.tags.items() if k not in PROMOTION_TAGS} == source.tags
    assert copy.tags["promoted.from"] == "dev" and copy.tags["promoted.from_version"] == "1"
    assert copy.tags["promoted.by"] and copy.tags["promoted.at"].endswith("Z")
    assert (copy.model_dir / "MLmodel").read_text() == (source.model_dir / "MLmodel").read_text()
    assert copy.model_dir.is_relative_to(home / ".local/mlflow/prod")
    assert copy.aliases == ("serving",)

    status = jobs(env, "status", "--env", "prod")
    assert f"prod: {MODEL_NAME} version 1 is serving at http://127.0.0.1:{port}/score" in status.stdout
    answer = json.loads(jobs(env, "invoke", "--env", "prod").stdout)
    assert answer["result"] == [answer["probability"][0] >= answer["threshold"]]
    assert jobs(env, "status").stdout.strip() == "nothing is deployed locally"  # dev's endpoint is its own

    again = jobs(env, "promote", "--version", "1", "--to", "prod")
    assert again.returncode == 0, again.stderr
    assert "already promoted: dev version 1 is prod version 1" in again.stdout
    assert "nothing was copied" in again.stdout and "prod version 1 already serves" in again.stdout
    assert [v.version for v in registered(home, "prod")] == [1]

    alone = jobs(env, "rollback", "--to", "prod")
    assert alone.returncode == 2 and "prod has no previous version" in alone.stderr


def test_a_second_promotion_then_rollback_returns_to_the_first(workspace):
    home, env, port = workspace
    second = jobs(env, "promote", "--version", "2", "--to", "prod")
    assert second.returncode == 0, second.stderr
    assert "dev version 2 to prod as version 2" in second.stdout
    assert f"at http://127.0.0.1:{port}/score" in second.stdout  # the running endpoint keeps its port
    assert [(v.version, v.aliases) for v in registered(home, "prod")] == [(1, ("previous",)), (2, ("serving",))]

    back = jobs(env, "rollback", "--to", "prod")
    assert back.returncode == 0, back.stderr
    assert "rolled prod back from version 2 to version 1" in back.stdout
    assert f"prod: {MODEL_NAME} version 1 is serving" in jobs(env, "status", "--env", "prod").stdout
    assert [(v.version, v.aliases) for v in registered(home, "prod")] == [(1, ("serving",)), (2, ("previous",))]

    stopped = jobs(env, "stop", "--env", "prod")
    assert stopped.returncode == 0 and f"prod: stopped {MODEL_NAME} version 1" in stopped.stdout
    assert [v.aliases for v in registered(home, "prod")] == [(), ("previous",)]
    assert jobs(env, "status", "--env", "prod").stdout.strip() == "prod: nothing is deployed locally"
    assert not inference_server.port_in_use(port)


def test_mlflows_own_client_reads_the_runs_and_versions(workspace):
    """What MLflow's UI shows: the training runs with their metrics and report, the versions with their tags."""
    from mlflow import MlflowClient

    home, _, _ = workspace
    dev = registry(home)
    client = MlflowClient(tracking_uri=dev.uri, registry_uri=dev.uri)
    experiment = client.get_experiment_by_name("heart-failure-automl training")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 3  # the three registered training runs, each logged once
    first = next(r for r in runs if r.data.tags["training_run"] == registered(home)[0].tags["training_run"])
    assert 0.5 < first.data.metrics["AUC_weighted"] < 1
    files = {f.path for f in client.list_artifacts(first.info.run_id)}
    assert {"report.html", "run.json", "model"} <= files
    assert {f.path for f in client.list_artifacts(first.info.run_id, "model")} >= {"model/MLmodel"}
    versions = client.search_model_versions(f"name = '{MODEL_NAME}'")
    assert sorted(int(v.version) for v in versions) == [1, 2, 3, 4]
    one = next(v for v in versions if int(v.version) == 1)
    assert one.run_id == first.info.run_id and one.tags["leaking_columns_used"] == "none"

    prod = registry(home, "prod")
    prod_versions = MlflowClient(tracking_uri=prod.uri, registry_uri=prod.uri).search_model_versions()
    assert {v.tags["promoted.from_version"] for v in prod_versions} == {"1", "2"}


@pytest.mark.skipif(ui_installed(), reason="the full mlflow package (make ui-setup) is installed here")
def test_the_ui_says_how_to_install_it(workspace):
    _, env, _ = workspace
    shown = jobs(env, "ui", "--port", str(inference_server.free_port()))
    assert shown.returncode == 2 and "Traceback" not in shown.stderr
    assert "MLflow's UI is not installed" in shown.stderr and "make ui-setup" in shown.stderr


def test_a_version_copied_into_prod_needs_nothing_of_dev(workspace, tmp_path):
    """The copy is prod's own: dev's store can go and prod's version still has its model."""
    home, _, _ = workspace
    copy: ModelVersion = registered(home, "prod")[0]
    assert not copy.model_dir.is_relative_to(home / ".local/mlflow/dev")
    assert (copy.model_dir / "MLmodel").is_file() and (copy.model_dir / "model-contract.json").is_file()
