"""Local AutoML: the final selection's rule, reproducible mode, the leak warning and the lineage of the budget."""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from jobs.dataset import DEFAULT_CSV
from jobs.errors import JobsError
from jobs.local.automl import budget_tags, leak_warning, search, train
from jobs.local.background import Background
from jobs.local.features import features, read_data
from jobs.local.search import round_config
from jobs.local.selection import Candidate, choose, score_candidate, selection_folds
from jobs.training import TrainingSettings

pytestmark = pytest.mark.filterwarnings("ignore")

# Fast settings: no forest (the 500-tree baseline is the slow one), a handful of trials.
FAST = {"blocked_models": ("RandomForest", "ExtremeRandomTrees", "KNN"), "max_trials": 2}
FASTEST = {"blocked_models": ("RandomForest", "ExtremeRandomTrees", "KNN", "LightGBM"), "max_trials": 2}


def candidate(name: str, kind: str, scores: list[float], ms: float) -> Candidate:
    return Candidate(name, kind, None, np.array(scores), np.zeros(3), ms)


def test_a_searched_model_within_the_noise_of_the_best_baseline_does_not_replace_it():
    forest = candidate("baseline RF", "baseline", [0.90, 0.92, 0.91, 0.93, 0.89], 25.0)
    lgbm = candidate("lgbm", "search", [0.91, 0.91, 0.92, 0.92, 0.90], 1.0)  # 0.002 higher, noise ~0.006
    chosen, rule = choose([forest, lgbm, candidate("baseline LR", "baseline", [0.85] * 5, 0.5)])
    assert chosen is forest
    assert "no searched model beat the best baseline" in rule


def test_a_searched_model_that_clearly_beats_the_baseline_is_taken():
    forest = candidate("baseline RF", "baseline", [0.90, 0.91, 0.89, 0.90, 0.90], 25.0)
    ensemble = candidate("ensemble", "ensemble", [0.93, 0.95, 0.92, 0.94, 0.93], 30.0)
    chosen, _ = choose([forest, ensemble])
    assert chosen is ensemble


def test_of_tied_qualified_models_the_much_faster_one_is_taken():
    forest = candidate("baseline RF", "baseline", [0.90, 0.91, 0.89, 0.90, 0.90], 25.0)
    ensemble = candidate("ensemble", "ensemble", [0.94, 0.95, 0.93, 0.94, 0.94], 30.0)
    lgbm = candidate("lgbm", "search", [0.94, 0.94, 0.93, 0.95, 0.93], 1.0)  # within noise of the ensemble
    chosen, rule = choose([forest, ensemble, lgbm])
    assert chosen is lgbm
    assert "30.0x faster" in rule


def test_a_small_speed_difference_does_not_overrule_the_score():
    forest = candidate("baseline RF", "baseline", [0.90, 0.91, 0.89, 0.90, 0.90], 25.0)
    ensemble = candidate("ensemble", "ensemble", [0.94, 0.95, 0.93, 0.94, 0.94], 1.2)
    lgbm = candidate("lgbm", "search", [0.94, 0.94, 0.93, 0.95, 0.93], 1.0)
    chosen, _ = choose([forest, ensemble, lgbm])
    assert chosen is ensemble


def test_configurations_are_rounded_for_reading():
    assert round_config(
        {"learning_rate": 0.066311765, "reg_alpha": 0.0020990359, "n_estimators": 5, "criterion": "gini"}
    ) == {"learning_rate": 0.0663, "reg_alpha": 0.0021, "n_estimators": 5, "criterion": "gini"}


def test_the_leak_warning_names_the_column_and_gives_the_honest_figure():
    text = leak_warning(
        {
            "columns": ["time"],
            "model": "baseline RandomForest(500 trees)",
            "score": 0.7871,
            "noise": 0.014,
            "metric": "AUC_weighted",
        },
        0.9105,
        "AUC_weighted",
    )
    assert "uses `time`, which leaks the outcome" in text
    assert "0.910" in text and "0.787" in text and "--drop time" in text
    assert leak_warning(None, 0.8, "AUC_weighted") is None


def test_lineage_tags_record_the_budget_used_not_the_lessons_20_minutes():
    timed = budget_tags(
        {"mode": "time", "time_budget_s": 60.0, "trials": 150, "search_s": 61.2, "selection_s": 30.5}, 60.0
    )
    assert timed["setting.timeout_minutes"] == "1" and timed["budget.trials"] == "150"
    assert timed["budget.search_seconds"] == "61.2"
    counted = budget_tags(
        {"mode": "trials", "time_budget_s": None, "trials": 4, "search_s": 2.0, "selection_s": 3.0}, 60.0
    )
    assert counted["budget.mode"] == "trials" and counted["setting.timeout_minutes"] == "none (trial count)"


def predictions(result, X: pd.DataFrame) -> np.ndarray:
    import mlflow.sklearn

    return mlflow.sklearn.load_model(str(result.model_dir)).predict_proba(X)[:, 1]


def test_a_trial_count_gives_the_identical_model_and_answers_twice_in_a_row(tmp_path):
    settings = TrainingSettings(drop_columns=("time",), **FAST)
    first = train(settings, DEFAULT_CSV, tmp_path / "a", budget_s=60, progress=lambda _: None)
    second = train(settings, DEFAULT_CSV, tmp_path / "b", budget_s=60, progress=lambda _: None)
    assert first.best_learner == second.best_learner
    assert first.leaderboard == second.leaderboard
    assert first.metrics == second.metrics
    X = pd.read_csv(DEFAULT_CSV).drop(columns=["DEATH_EVENT", "time"]).astype("float64")
    np.testing.assert_array_equal(predictions(first, X), predictions(second, X))
    info = json.loads((first.run_dir / "run.json").read_text())
    assert info["budget"]["mode"] == "trials" and info["budget"]["trials"] == 2
    assert info["settings"]["setting.timeout_minutes"] == "none (trial count)"
    assert info["leak_warning"] is None


def test_train_says_plainly_when_time_is_used_and_gives_the_honest_figure(tmp_path):
    said: list[str] = []
    lesson = TrainingSettings(include_leaking_columns=True, **FASTEST)  # the lesson's opt-in
    result = train(lesson, DEFAULT_CSV, tmp_path, budget_s=60, progress=said.append)
    warning = next(line for line in said if line.startswith("WARNING"))
    assert "uses `time`, which leaks the outcome" in warning and "the best baseline" in warning
    assert "picked " in " ".join(said) and "single-row predict" in " ".join(said)
    report = result.report.read_text()
    assert "Leaking feature" in report and "--drop time" in report
    info = json.loads((result.run_dir / "run.json").read_text())
    assert 0.6 < info["honest"]["score"] < info["metrics"]["AUC_weighted"]
    card = (result.model_dir / "model_card.md").read_text()
    assert "WARNING: trained on time, which leaks the outcome" in card


def test_with_every_baseline_blocked_the_leak_warning_still_gives_an_honest_figure(tmp_path):
    said: list[str] = []
    blocked = ("RandomForest", "LogisticRegression", "ExtremeRandomTrees", "LightGBM")
    lesson = TrainingSettings(blocked_models=blocked, max_trials=1, include_leaking_columns=True)
    train(lesson, DEFAULT_CSV, tmp_path, progress=said.append)
    warning = next(line for line in said if line.startswith("WARNING"))
    assert "the best baseline (baseline LogisticRegression) scores 0." in warning
    assert "every baseline is blocked" in " ".join(said)


def test_the_default_model_is_honest_and_carries_its_contract_and_card(tmp_path):
    said: list[str] = []
    result = train(TrainingSettings(**FASTEST), DEFAULT_CSV, tmp_path, budget_s=60, progress=said.append)
    assert not any(line.startswith("WARNING") for line in said)
    contract = json.loads((result.model_dir / "model-contract.json").read_text())
    assert "time" not in contract["inputs"] and contract["leaking_columns_used"] == []
    assert contract["training_ranges"]["age"] == [40.0, 95.0]
    point = contract["operating_point"]
    rows = [r for r in contract["accuracy_table"] if r[0] == point["threshold"]]
    assert rows and rows[0][1] / (rows[0][1] + rows[0][4]) >= 0.9  # the stated rule holds on the table
    card = (result.model_dir / "model_card.md").read_text()
    for fact in ("Not a medical device", "Faisalabad", "4 to 285 days", "sex: women", "age 40 to under 60", "95% CI"):
        assert fact in card, fact
    headline = next(line for line in said if line.startswith("headline: out-of-fold AUC"))
    report = result.report.read_text()
    assert "Model card" in report and headline.removeprefix("headline: ").split(";")[0] in report
    # Each phase's cost, said, recorded and in the report.
    spent = next(line for line in said if line.startswith("time spent: search "))
    for phase in ("final selection", "waiting for the baselines", "refit on every row", "MLflow model", "report"):
        assert phase in spent, phase
    budget = json.loads((result.run_dir / "run.json").read_text())["budget"]
    assert {"search_s", "selection_s", "baselines_s", "baselines_wait_s", "refit_s", "packaging_s", "report_s"} <= set(
        budget
    )
    assert "in their own process beside the search" in report and "MLflow model, contract and card" in report


def test_the_final_selection_sharing_fits_scores_and_picks_as_scoring_each_candidate_alone(tmp_path, monkeypatch):
    """The baselines scored in their own process and the searched learner's fits shared with the ensemble give
    the very fold scores of fitting every candidate on its own, hence the same pick by the same rule."""
    import jobs.local.selection as selection

    fitted: list[str] = []  # the pipelines fitted on the folds in this process (the baselines are not)
    fold_fits = selection.fold_fits
    monkeypatch.setattr(
        selection, "fold_fits", lambda pipeline, *args: fitted.append(repr(pipeline)) or fold_fits(pipeline, *args)
    )
    settings = TrainingSettings(drop_columns=("time",), **{**FAST, "max_trials": 6})
    X, y = features(read_data(DEFAULT_CSV), settings)
    found = search(settings, X, y, 60, tmp_path / "flaml.log")
    assert [c.kind for c in found.candidates] == ["baseline", "search", "ensemble"]  # what is shared is there
    # Learners lgbm and lrl1: the ensemble of both and FLAML's best, one of them, cost two learners' fits.
    assert len(fitted) == 2
    splits = selection_folds(y, settings.n_cross_validations, settings.seed)
    alone = [
        score_candidate(c.name, c.kind, c.pipeline, X, y, splits, settings.primary_metric, 5) for c in found.candidates
    ]
    for shared, own in zip(found.candidates, alone, strict=True):
        assert shared.name == own.name
        np.testing.assert_array_equal(shared.fold_scores, own.fold_scores)
        np.testing.assert_array_equal(shared.proba, own.proba)
    # Timing is measured, not computed: with the same timings the rule picks the same candidate.
    timed = [replace(own, predict_ms=shared.predict_ms) for shared, own in zip(found.candidates, alone, strict=True)]
    assert choose(timed)[0].name == found.chosen.name and choose(timed)[1] == found.rule
    if found.fitted is not None:  # a baseline picked: the fit from beside the search is the one a refit gives
        from sklearn.base import clone

        np.testing.assert_array_equal(found.fitted.predict_proba(X), clone(found.pipeline).fit(X, y).predict_proba(X))


# --- the baselines' process ------------------------------------------------------------------------------------
# Module-level functions: the spawned child imports them by name.


def _fails() -> None:
    raise ValueError("the child's own reason")


def _dies() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _sleeps(pid_file: Path) -> None:
    written = pid_file.with_suffix(".partial")
    written.write_text(str(os.getpid()))
    written.rename(pid_file)  # whole or absent for the reader
    time.sleep(120)


def _gone(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE  # ended, not yet reaped by its new parent
    except psutil.NoSuchProcess:
        return True


def test_the_background_process_gives_its_value_and_raises_its_error_here():
    with Background(sum, [1, 2, 3]) as beside:
        assert beside.result() == 6
    with Background(_fails) as beside, pytest.raises(ValueError, match="the child's own reason"):
        beside.result()


def test_a_background_process_that_dies_without_an_answer_is_a_clear_error_not_a_hang():
    with (
        Background(_dies) as beside,
        pytest.raises(JobsError, match=r"computing _dies ended without an answer \(exit code -9\)"),
    ):
        beside.result()


def test_leaving_the_block_early_ends_the_background_process(tmp_path):
    pid_file = tmp_path / "pid"
    with pytest.raises(KeyboardInterrupt), Background(_sleeps, pid_file):
        deadline = time.monotonic() + 60
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        raise KeyboardInterrupt
    assert _gone(int(pid_file.read_text()))


def test_a_background_process_ends_itself_when_its_parent_is_killed_outright(tmp_path):
    import subprocess
    import sys

    pid_file = tmp_path / "pid"
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time\nfrom pathlib import Path\nfrom jobs.local.background import Background\n"
            "from tests.jobs.test_local_automl import _sleeps\n"
            f"with Background(_sleeps, Path({str(pid_file)!r})):\n    time.sleep(120)\n",
        ],
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        deadline = time.monotonic() + 60
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        child = int(pid_file.read_text())
        parent.kill()  # SIGKILL: no clean-up in the parent
        parent.wait(10)
        deadline = time.monotonic() + 15
        while not _gone(child) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _gone(child)
    finally:
        parent.kill()


def test_the_largest_seed_the_flag_allows_gives_folds():
    """--seed allows up to 2**32 - 1; the repeats' seeds (seed + 1, seed + 2) wrap instead of failing late."""
    from jobs.local.selection import selection_folds
    from jobs.options import OPTIONS

    y = pd.Series([0, 1] * 10)
    largest = 2**32 - 1
    assert OPTIONS["seed"].problem(largest) is None
    folds = selection_folds(y, 2, largest, repeats=3)
    assert len(folds) == 6
    first = selection_folds(y, 2, largest, repeats=1)  # the project's own folds: the first repeat, unchanged
    pairs = zip(folds[:2], first, strict=True)
    assert all((a == b).all() for fold, same in pairs for a, b in zip(fold, same, strict=True))
