"""The whole local pipeline through the real command line: train, register, deploy, invoke, stop."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import socket

import pytest
import yaml

from jobs.lineage import MODEL_NAME
from jobs.local import inference_server
from jobs.local.registry import ModelVersion
from scoring.fast_path import TOLERANCE, FastPathRecord
from tests.jobs.conftest import registered as versions_in
from tests.jobs.conftest import registry, servers_of
from tests.jobs.conftest import run_jobs as jobs

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, training):
    """A .local/ and runs/ of this module's own, holding the session's trained run (see conftest.py)."""
    home = tmp_path_factory.mktemp("local")
    run = training[0]
    shutil.copytree(run, home / "runs" / run.name)
    env = {**os.environ, "JOBS_LOCAL_HOME": str(home / ".local"), "JOBS_RUNS_DIR": str(home / "runs")}
    yield home, env
    jobs(env, "stop")  # never leave a server behind, even when a test failed
    for proc in servers_of(home):
        proc.kill()


@pytest.fixture(scope="module")
def trained(training):
    return training[1]


def test_train_writes_a_model_and_a_report(training):
    run, trained = training
    assert (run / "model" / "MLmodel").is_file()
    for picture in ("confusion_matrix.png", "roc_curve.png", "pr_curve.png", "feature_importance.png"):
        assert (run / picture).stat().st_size > 1000
    report = (run / "report.html").read_text()
    assert "AUC_weighted" in report and "Leaderboard" in report and "lgbm" in report
    assert f"report: {run / 'report.html'}" in trained.stdout
    # Progress while it ran, then its summary (not a terminal: plain lines, no bar).
    assert re.search(r"search done: \d+ trials, best AUC_weighted so far 0\.\d{4}", trained.stderr)
    info = json.loads((run / "run.json").read_text())
    # Honest by default: without `time` the out-of-fold AUC is about 0.77 (0.85 with the leak).
    assert 0.65 < info["metrics"]["AUC_weighted"] < 0.85
    assert info["settings"]["leaking_columns_used"] == "none" and info["leak_warning"] is None
    assert "WARNING" not in trained.stdout + trained.stderr
    assert info["settings"]["setting.primary_metric"] == "AUC_weighted"
    # The fast path: written only when checked equal on every row, else refused with the reason; said either way.
    record = FastPathRecord.from_metadata(yaml.safe_load((run / "model" / "MLmodel").read_text())["metadata"])
    assert record is not None and f"serving: {record.summary()}" in trained.stdout
    assert (run / "model" / "model.onnx").is_file() == record.used
    if record.used:
        assert record.max_abs_diff is not None and record.max_abs_diff <= TOLERANCE and not record.reason
    else:
        assert record.reason, record
    assert record.summary() in (run / "model" / "model_card.md").read_text()
    assert html.escape(record.summary()) in report


def test_register_deploy_invoke_stop(workspace, trained):
    home, env = workspace
    registered = jobs(env, "register")
    assert registered.returncode == 0, registered.stderr
    assert "registered: heart-failure-automl version 1" in registered.stdout
    (version,) = versions_in(home)
    tags = version.tags
    assert version.version == 1 and (version.model_dir / "MLmodel").is_file()
    assert {"training_run", "data_version", "git_commit", "metric.AUC_weighted", "setting.timeout_minutes"} <= set(tags)
    # The commit the run was trained from, recorded in run.json (not "unknown", not the checkout at register time).
    assert tags["git_commit"] == json.loads((home / "runs" / tags["training_run"] / "run.json").read_text())["commit"]
    assert tags["git_commit"] != "unknown"
    again = jobs(env, "register")
    assert "already registered: heart-failure-automl version 1" in again.stdout
    assert f"it answers with {tags['serving.path']}" in registered.stdout
    assert tags["serving.fast_path"] in ("used", "refused")

    port = inference_server.free_port()
    deployed = jobs(env, "deploy", "--port", str(port))
    assert deployed.returncode == 0, deployed.stderr
    state = json.loads((home / ".local/endpoint.json").read_text())
    assert (state["port"], state["model_version"]) == (port, 1)
    assert inference_server.is_running(state["pid"])

    answer = jobs(env, "invoke")
    assert answer.returncode == 0, answer.stderr
    lessons = json.loads(answer.stdout)  # the lesson's request, `time` included: accepted, not used
    threshold = tags["operating_point.threshold"]
    assert lessons["threshold"] == float(threshold) and f"probability >= {threshold}" in deployed.stdout
    assert lessons["result"] == [lessons["probability"][0] >= lessons["threshold"]]
    assert lessons["outside_training_range"] == [[]]
    young = json.loads(jobs(env, "invoke", "--set", "age=25").stdout)
    assert young["outside_training_range"] == [["age"]] and len(young["probability"]) == 1

    # A second deploy replaces the first cleanly, on the same port.
    redeployed = jobs(env, "deploy", "--port", str(port))
    assert redeployed.returncode == 0, redeployed.stderr
    new_state = json.loads((home / ".local/endpoint.json").read_text())
    assert new_state["pid"] != state["pid"]
    assert not inference_server.is_running(state["pid"])
    assert "version 1 is serving" in jobs(env, "status").stdout

    # A version that cannot load fails its deploy and leaves the running one serving.
    broken = home / "broken"
    shutil.copytree(version.model_dir, broken / "model")
    (broken / "model" / "MLmodel").write_text("flavors: {}\n")
    registry(home).copy_in(
        MODEL_NAME, ModelVersion(MODEL_NAME, 0, broken, {}), {"training_run": "broken"}, lambda _: False
    )
    failed = jobs(env, "deploy", "--version", "2", "--port", str(port))
    assert failed.returncode != 0
    assert "version 2 did not start" in failed.stderr and "The running version 1 is untouched" in failed.stderr
    # The model-load error itself, not only "see the log", nor the server's wrapper around it.
    why = failed.stderr.split("Why, from its log: ", 1)[1].splitlines()[0]
    assert "Error" in why and "UserScript" not in why, why
    assert json.loads((home / ".local/endpoint.json").read_text()) == new_state
    assert json.loads(jobs(env, "invoke").stdout) == lessons
    with registry(home).session("removing the broken version") as client:
        client.delete_model_version(MODEL_NAME, "2")

    stopped = jobs(env, "stop")
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    assert not inference_server.is_running(new_state["pid"])
    assert not (home / ".local/endpoint.json").exists()
    assert "nothing is deployed" in jobs(env, "status").stdout


def test_bad_input_fails_clearly_and_changes_nothing(workspace, trained):
    home, env = workspace
    before = versions_in(home)

    unknown = jobs(env, "deploy", "--version", "99")
    assert unknown.returncode != 0
    assert "has no version 99" in unknown.stderr and "Traceback" not in unknown.stderr

    missing = jobs(env, "train", "--data", "no/such/file.csv")
    assert missing.returncode != 0
    assert "data file no/such/file.csv does not exist" in missing.stderr and "Traceback" not in missing.stderr

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        in_use = jobs(env, "deploy", "--port", str(port))
    assert in_use.returncode != 0
    assert f"port {port} on 127.0.0.1 is already in use" in in_use.stderr
    assert not (home / ".local/endpoint.json").exists()

    gate = jobs(env, "register", "--min-auc", "0.999")
    assert gate.returncode != 0
    assert "quality gate refused the model" in gate.stderr and "below the threshold 0.9990" in gate.stderr

    bad_flag = jobs(env, "train", "--drop", "no_such_column")
    assert bad_flag.returncode != 0 and "no such column" in bad_flag.stderr

    nothing = jobs(env, "invoke")
    assert nothing.returncode != 0 and "nothing is deployed locally" in nothing.stderr

    assert versions_in(home) == before


def test_the_local_pipeline_runs_train_then_register(tmp_path):
    env = {**os.environ, "JOBS_LOCAL_HOME": str(tmp_path / ".local"), "JOBS_RUNS_DIR": str(tmp_path / "runs")}
    result = jobs(env, "pipeline", "--local-budget-seconds", "5", "--drop", "time", "--min-auc", "0.6")
    assert result.returncode == 0, result.stderr
    assert "registered: heart-failure-automl version 1" in result.stdout
    (version,) = versions_in(tmp_path)
    assert version.version == 1 and version.tags["setting.drop_columns"] == "time"
    assert not (tmp_path / ".local/endpoint.json").exists()  # no deploy step unless --with-deploy
