"""One owner for a model's lineage tags and one quality gate, on all four registration paths."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from jobs.azure.backend import AzureBackend
from jobs.azure.dry_run import DryRunBackend
from jobs.azure.pipeline_step import automl_run, register_best_model
from jobs.azure.specs import _package
from jobs.azure.stack_outputs import StackOutputs
from jobs.dataset import DEFAULT_CSV
from jobs.errors import JobsError
from jobs.lineage import (
    TrainingRun,
    Yardstick,
    champion,
    quality_gate,
)
from jobs.local.backend import LocalBackend
from jobs.local.lineage import local_baseline, local_run
from jobs.training import TrainingSettings
from tests.fakes import FakeSession
from tests.jobs.conftest import registered

OUTPUTS = StackOutputs(
    subscription_id="sub",
    resource_group="rg",
    workspace_name="mlw",
    compute_name="cpu-dev-aml",
    compute_max_nodes=3,
    endpoint_name="hf-dev-abc123",
)
SETTINGS = TrainingSettings(drop_columns=("time",))
# What a commit recorded at submit time looks like; the register paths must carry it, not re-read git.
SUBMIT_COMMIT = "1111111111111111111111111111111111111111"


def azure_backend(session: FakeSession, tmp_path: Path) -> AzureBackend:
    return AzureBackend(session, OUTPUTS, "dev", say=lambda _: None, sleep=lambda _: None, state_dir=tmp_path)


def run_json(
    run_id: str,
    auc: float,
    *,
    baseline: float | None = 0.75,
    commit: str = SUBMIT_COMMIT,
    drop: tuple[str, ...] = ("time",),
) -> dict[str, Any]:
    """A run.json shaped as jobs/local/automl.py writes it (settings with budget.* tags, budget, selection)."""
    settings = {
        **TrainingSettings(drop_columns=drop).as_tags(),
        "budget.mode": "time",
        "budget.trials": "150",
        "budget.search_seconds": "61.2",
        "budget.selection_seconds": "30.5",
        "setting.timeout_minutes": "1",
        "setting.local_budget_seconds": "60",
    }
    selection = [
        {"name": "flaml lgbm", "kind": "search", "score": auc, "fold_sd": 0.04, "noise_vs_pick": 0.0, "chosen": True}
    ]
    if baseline is not None:
        selection.append(
            {
                "name": "baseline LogisticRegression",
                "kind": "baseline",
                "score": baseline,
                "fold_sd": 0.05,
                "noise_vs_pick": 0.01,
                "chosen": False,
            }
        )
    return {
        "run_id": run_id,
        "best_learner": "lgbm",
        "data_version": "v1",
        "commit": commit,
        "metrics": {"AUC_weighted": auc, "accuracy": 0.8, "f1_score_binary": 0.6, "log_loss": 0.4},
        "settings": settings,
        "selection": selection,
        "budget": {"mode": "time", "trials": 150, "search_s": 61.2, "selection_s": 30.5, "selection_folds": "3x5"},
    }


def local_backend(tmp_path: Path, *runs: dict[str, Any]) -> LocalBackend:
    said: list[str] = []
    backend = LocalBackend(home=tmp_path / ".local", runs_dir=tmp_path / "runs", say=said.append)
    backend.said = said  # type: ignore[attr-defined]  # the test reads what it printed
    for info in runs:
        folder = tmp_path / "runs" / info["run_id"]
        (folder / "model").mkdir(parents=True)
        (folder / "model" / "MLmodel").write_text("flavors: {}\n")
        (folder / "run.json").write_text(json.dumps(info))
    return backend


class _Run:
    def __init__(self, run_id: str, tags: dict[str, str], metrics: dict[str, float] | None = None) -> None:
        self.info = type("Info", (), {"run_id": run_id, "experiment_id": "exp"})()
        self.data = type("Data", (), {"tags": tags, "metrics": metrics or {}})()


def test_the_four_registration_paths_write_the_same_tags(tmp_path, monkeypatch):
    # Training happens at one commit; registration later, at another checkout.
    monkeypatch.setattr("jobs.lineage.git_commit", lambda *a: SUBMIT_COMMIT)
    session = FakeSession()
    backend = azure_backend(session, tmp_path)
    job = backend.train(SETTINGS, DEFAULT_CSV, wait=False)
    pipeline = backend.pipeline(SETTINGS, DEFAULT_CSV, None, None, wait=False)
    monkeypatch.setattr("jobs.lineage.git_commit", lambda *a: "2222222222222222222222222222222222222222")

    # 1. jobs register --target azure
    session.finish_job(job, auc=0.88, baseline=0.80)
    backend.register(job, None)
    azure = session.ml.registered[-1].tags

    # 2. the pipeline's register step, reading the pipeline run's and the AutoML node's own tags
    submitted = session.ml.submitted[pipeline].spec
    runs = {
        "step": _Run("step", {"mlflow.parentRunId": "pipe"}),
        "pipe": _Run("pipe", dict(submitted.tags)),
        "automl": _Run(
            "automl",
            {**submitted.jobs["train"].tags, "mlflow.parentRunId": "pipe", "automl_best_child_run_id": "automl_3"},
        ),
        "automl_3": _Run("automl_3", {}, {"AUC_weighted": 0.88, "accuracy": 0.85}),
    }
    client = type(
        "Client",
        (),
        {"get_run": lambda self, r: runs[r], "search_runs": lambda self, **k: [runs["step"], runs["automl"]]},
    )()
    calls: list[dict[str, str]] = []
    model = tmp_path / "best_model"
    model.mkdir()
    (model / "MLmodel").write_text("flavors: {}\n")
    trials = session.ml.children[job]
    register_best_model(
        model,
        automl_run(client, "step"),
        trials,
        [],
        None,
        "m",
        lambda folder, name, tags, description: calls.append(tags) or "1",
        tmp_path / "out",
    )
    step = calls[0]

    # 3. --dry-run's model.yml, after its own train
    dry = DryRunBackend(OUTPUTS, tmp_path / "dry", say=lambda _: None)
    dry.train(SETTINGS, DEFAULT_CSV, wait=False)
    dry.register(None, None)
    dry_tags = yaml.safe_load((tmp_path / "dry" / "model.yml").read_text())["tags"]

    # 4. jobs register --target local
    local = local_backend(tmp_path / "local", run_json("20260101-000000-abcdef", 0.88))
    local.register(None, None)
    (version,) = registered(tmp_path / "local")
    local_tags = version.tags

    paths = {"azure": azure, "pipeline": step, "dry run": dry_tags, "local": local_tags}

    def shape(tags: dict[str, str]) -> set[str]:
        # metric.* names are the ones the run reports; setting.local_budget_seconds exists only locally.
        return {k for k in tags if not k.startswith("metric.") and k != "setting.local_budget_seconds"}

    assert {name: shape(tags) for name, tags in paths.items()} == dict.fromkeys(paths, shape(azure))
    for name, tags in paths.items():
        assert {"metric.AUC_weighted", "metric.accuracy"} <= set(tags), name
        assert "metric.log_loss" not in tags, name
    for name in ("azure", "pipeline", "local"):  # the commit the run recorded, not the one checked out now
        assert paths[name]["git_commit"] == SUBMIT_COMMIT, name
        assert paths[name]["dropped_columns"] == "time", name
    assert azure["data_version"] == step["data_version"] == dry_tags["data_version"]
    assert azure["budget.trials"] == step["budget.trials"] == "2"
    assert local_tags["budget.trials"] == "150" and local_tags["setting.timeout_minutes"] == "1"
    assert azure["gate.baseline"].startswith("baseline LogisticRegression") and azure["gate.min_auc"] == "off"


# --- the gate, branch by branch -----------------------------------------------------------------


def run(auc: float, dropped: str = "time", name: str = "new") -> TrainingRun:
    return TrainingRun(name, "c", {"AUC_weighted": auc}, {"setting.drop_columns": dropped} if dropped else {})


def test_the_honest_model_without_time_passes_by_default():
    verdict = quality_gate(
        {"AUC_weighted": 0.78},
        baseline=Yardstick("baseline LogisticRegression", 0.76, 0.78),
        champion=None,
        min_score=None,
    )
    assert "floor: off" in verdict.summary()
    assert "model 0.7800 vs baseline LogisticRegression 0.7600" in verdict.summary()


def test_a_model_below_its_baseline_is_refused_with_both_figures():
    with pytest.raises(
        JobsError,
        match=r"below the simple baseline on the same folds \(model 0\.7000 vs baseline "
        r"LogisticRegression 0\.7600, noise ±0\.0100\)\. Nothing was registered",
    ):
        quality_gate(
            {"AUC_weighted": 0.70},
            baseline=Yardstick("baseline LogisticRegression", 0.76, 0.70, 0.01),
            champion=None,
            min_score=None,
        )


def test_within_the_baselines_noise_counts_as_not_worse():
    verdict = quality_gate(
        {"AUC_weighted": 0.755}, baseline=Yardstick("b", 0.76, 0.755, 0.01), champion=None, min_score=None
    )
    assert verdict.baseline is not None and verdict.baseline.beaten


def test_an_unknown_baseline_is_said_not_invented():
    verdict = quality_gate({"AUC_weighted": 0.6}, baseline=None, champion=None, min_score=None)
    assert "baseline: unknown, not compared" in verdict.summary()
    assert verdict.tags()["gate.baseline"] == "unknown"


def test_the_champion_is_the_latest_version_with_the_same_features():
    versions = [
        (1, {"training_run": "a", "dropped_columns": "time", "metric.AUC_weighted": "0.790000"}),
        (2, {"training_run": "b", "metric.AUC_weighted": "0.950000"}),  # with time: another feature set
        (3, {"training_run": "c", "setting.drop_columns": "time", "metric.AUC_weighted": "0.800000"}),
        (4, {"training_run": "new", "dropped_columns": "time", "metric.AUC_weighted": "0.990000"}),
    ]
    found = champion(versions, run(0.78))
    assert found is not None and (found.name, found.score) == ("version 3 (dropped: time)", 0.80)
    with pytest.raises(
        JobsError,
        match=r"below the registered champion for the same features \(model 0\.7800 vs "
        r"version 3 \(dropped: time\) 0\.8000\)",
    ):
        quality_gate({"AUC_weighted": 0.78}, baseline=None, champion=found, min_score=None)
    # The same model, with `time`, meets version 2 only.
    assert champion(versions, run(0.96, dropped="")).name.startswith("version 2")
    assert (
        quality_gate(
            {"AUC_weighted": 0.96}, baseline=None, champion=champion(versions, run(0.96, dropped="")), min_score=None
        ).champion
        is not None
    )


def test_no_champion_for_a_new_feature_set():
    assert champion([(1, {"training_run": "a", "metric.AUC_weighted": "0.9"})], run(0.7, dropped="time")) is None


def test_the_floor_is_an_explicit_opt_in():
    with pytest.raises(
        JobsError,
        match=r"AUC_weighted 0\.7800 is below the threshold 0\.8000 \(--min-auc\).*"
        r"or lower --min-auc",
    ):
        quality_gate({"AUC_weighted": 0.78}, baseline=None, champion=None, min_score=0.80)
    assert (
        quality_gate({"AUC_weighted": 0.81}, baseline=None, champion=None, min_score=0.80).tags()["gate.min_auc"]
        == "0.8000"
    )


def test_every_failed_comparison_is_named_at_once():
    with pytest.raises(JobsError) as refused:
        quality_gate(
            {"AUC_weighted": 0.5}, baseline=Yardstick("b", 0.7, 0.5), champion=Yardstick("v1", 0.8, 0.5), min_score=0.6
        )
    text = str(refused.value)
    assert "baseline" in text and "champion" in text and "threshold 0.6000" in text


# --- the same gate on each target ---------------------------------------------------------------


def test_azure_register_refuses_a_model_below_the_jobs_logistic_regression(tmp_path):
    session = FakeSession()
    backend = azure_backend(session, tmp_path)
    name = backend.train(SETTINGS, DEFAULT_CSV, wait=False)
    session.finish_job(name, auc=0.74, baseline=0.79)
    with pytest.raises(
        JobsError,
        match=r"model 0\.7400 vs baseline LogisticRegression \(best such trial of the job\) "
        r"0\.7900",
    ):
        backend.register(name, None)
    assert session.ml.ops("models.create_or_update") == []


def test_azure_register_judges_a_challenger_against_the_champion_for_its_features(tmp_path):
    session = FakeSession()
    backend = azure_backend(session, tmp_path)
    first = backend.train(SETTINGS, DEFAULT_CSV, wait=False)
    session.finish_job(first, auc=0.80)
    backend.register(first, None)
    second = backend.train(SETTINGS, DEFAULT_CSV, wait=False)
    session.finish_job(second, auc=0.78)
    with pytest.raises(
        JobsError,
        match=r"champion for the same features \(model 0\.7800 vs version 1 "
        r"\(dropped: time\) "
        r"0\.8000\)",
    ):
        backend.register(second, None)
    # With `time` (the lesson's opt-in) the features differ: version 1 is not its champion.
    third = backend.train(TrainingSettings(include_leaking_columns=True), DEFAULT_CSV, wait=False)
    session.finish_job(third, auc=0.78)
    assert backend.register(third, None) == "2"


def test_local_register_uses_the_runs_own_baseline_and_champion(tmp_path):
    weak = run_json("20260101-000001-aaaaaa", 0.70, baseline=0.76)
    good = run_json("20260101-000002-bbbbbb", 0.79, baseline=0.76)
    worse = run_json("20260101-000003-cccccc", 0.74, baseline=0.70)
    backend = local_backend(tmp_path, weak, good, worse)
    with pytest.raises(
        JobsError,
        match=r"simple baseline on the same folds \(model 0\.7000 vs "
        r"baseline LogisticRegression "
        r"\(on the same 3x5 selection folds\) 0\.7600, noise ±0\.0100\)",
    ):
        backend.register(weak["run_id"], None)
    assert backend.register(good["run_id"], None) == "1"
    assert any("quality gate passed on AUC_weighted 0.7900" in line for line in backend.said)
    # 0.74 against version 1's 0.79; the noise allowed is the run's own standard error, 0.04/sqrt(15).
    with pytest.raises(
        JobsError,
        match=r"champion for the same features \(model 0\.7400 vs version 1 "
        r"\(dropped: time\) "
        r"0\.7900, noise ±0\.0103\)",
    ):
        backend.register(worse["run_id"], None)


def test_a_local_run_without_a_selection_has_an_unknown_baseline(tmp_path):
    info = run_json("20260101-000004-dddddd", 0.70, baseline=None)
    del info["selection"]
    assert local_baseline(info) is None
    backend = local_backend(tmp_path, info)
    assert backend.register(None, None) == "1"
    assert any("baseline: unknown, not compared" in line for line in backend.said)


def test_a_local_pick_that_is_a_baseline_says_so():
    info = run_json("r", 0.79, baseline=None)
    info["selection"][0].update(kind="baseline", name="baseline RandomForest(500 trees)")
    found = local_baseline(info)
    assert found is not None and found.beaten and "the model is this baseline" in found.name


def test_a_local_run_that_recorded_no_commit_says_unknown_not_todays_checkout():
    info = run_json("r", 0.8)
    del info["commit"]
    assert local_run(info).tags["git_commit"] == "unknown"
    info["git_commit"] = "abc"
    assert local_run(info).tags["git_commit"] == "abc"


def test_a_run_without_budget_tags_has_them_from_its_budget_record():
    info = run_json("r", 0.8)
    info["settings"] = TrainingSettings().as_tags()
    tags = local_run(info).tags
    assert (tags["budget.mode"], tags["budget.trials"], tags["budget.search_seconds"]) == ("time", "150", "61.2")


# --- requirement parsing ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("requirement", "name"),
    [
        ("mlflow-skinny==2.9.2", "mlflow-skinny"),
        ("Azureml_MLflow>=1.0", "azureml-mlflow"),
        ("azureml.mlflow", "azureml-mlflow"),
        ("inference-schema[numpy-support]==1.8", "inference-schema"),
        ("numpy<2; python_version<'3.12'", "numpy"),
        ("scikit-learn ~= 1.5", "scikit-learn"),
        ("python=3.9.19", "python"),
        ("numpy=1.23.5=py39h0", "numpy"),
        ("conda-forge::pip", "pip"),
    ],
)
def test_package_names_are_read_as_pip_and_conda_read_them(requirement, name):
    assert _package(requirement) == name


def test_azure_without_a_logistic_regression_trial_says_the_baseline_is_unknown(tmp_path):
    session = FakeSession()
    said: list[str] = []
    backend = AzureBackend(session, OUTPUTS, "dev", say=said.append, sleep=lambda _: None, state_dir=tmp_path)
    name = backend.train(SETTINGS, DEFAULT_CSV, wait=False)
    session.finish_job(name, auc=0.70)  # only a LightGBM trial: AutoML tried no LogisticRegression
    session.ml.children[name].append(None)  # a child azure-ai-ml could not parse
    backend.register(name, None)
    assert any("baseline: unknown, not compared" in line for line in said)
    tags = session.ml.registered[-1].tags
    assert tags["gate.baseline"] == "unknown" and tags["budget.trials"] == "1" and tags["budget.mode"] == "time"


def test_by_default_the_command_line_registers_the_honest_model_without_time(tmp_path, monkeypatch, capsys):
    from jobs.cli import main

    local_backend(tmp_path, run_json("20260101-000005-eeeeee", 0.78, baseline=0.76))
    monkeypatch.setenv("JOBS_LOCAL_HOME", str(tmp_path / ".local"))
    monkeypatch.setenv("JOBS_RUNS_DIR", str(tmp_path / "runs"))
    assert main(["register"]) == 0, capsys.readouterr().err
    assert "registered: heart-failure-automl version 1" in capsys.readouterr().out
    # The lesson's fixed gate is still there, asked for.
    local_backend(tmp_path / "again", run_json("20260101-000006-ffffff", 0.78, baseline=0.76))
    monkeypatch.setenv("JOBS_LOCAL_HOME", str(tmp_path / "again/.local"))
    monkeypatch.setenv("JOBS_RUNS_DIR", str(tmp_path / "again/runs"))
    assert main(["register", "--min-auc", "0.80"]) != 0
    assert "0.7800 is below the threshold 0.8000" in capsys.readouterr().err


def test_azures_baseline_is_compared_on_the_jobs_primary_metric():
    trials = [type("Job", (), {"properties": {"run_algorithm": "LogisticRegression", "score": "0.70"}})()]
    from jobs.azure.lineage import azure_baseline, azure_children

    _, best = azure_children(trials)
    found = azure_baseline(
        best, TrainingRun("j", "c", {"AUC_weighted": 0.9, "accuracy": 0.68}, {"setting.primary_metric": "accuracy"})
    )
    assert found is not None and (found.score, found.candidate) == (0.70, 0.68) and "on accuracy" in found.name
    assert not found.beaten
