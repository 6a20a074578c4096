"""Local AutoML: the final selection's rule, reproducible mode, the leak warning and the lineage of the budget."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from jobs.dataset import DEFAULT_CSV
from jobs.local.automl import (
    Candidate,
    budget_tags,
    choose,
    leak_warning,
    round_config,
    train,
)
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
