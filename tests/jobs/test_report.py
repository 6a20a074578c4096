"""The training report: out-of-fold calibration, thresholds, the AUC interval, the selection and the run's facts."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from jobs.dataset import DEFAULT_CSV
from jobs.local.report import bootstrap_auc_ci, threshold_for_sensitivity, threshold_rows, write_report


def test_threshold_rows_count_as_a_clinician_would():
    y = [1, 1, 0, 0, 1]
    proba = [0.9, 0.4, 0.6, 0.1, 0.2]
    (row,) = threshold_rows(y, proba, (0.5,))
    assert row == {
        "threshold": 0.5,
        "flagged": 2,
        "sensitivity": pytest.approx(1 / 3),
        "specificity": 0.5,
        "ppv": 0.5,
        "npv": pytest.approx(1 / 3),
    }
    (nobody,) = threshold_rows(y, proba, (0.95,))
    assert nobody["flagged"] == 0 and nobody["ppv"] is None and nobody["sensitivity"] == 0


def test_the_threshold_for_a_sensitivity_is_the_most_specific_one_that_meets_it():
    y = [1, 1, 1, 0, 0]
    proba = [0.9, 0.8, 0.3, 0.5, 0.1]
    assert threshold_for_sensitivity(y, proba, 0.9) == 0.3
    assert threshold_for_sensitivity(y, proba, 0.6) == 0.8


def test_the_bootstrap_interval_matches_roc_auc_score_on_the_same_resamples():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 120)
    proba = np.round(rng.random(120) * 0.6 + y * 0.3, 1)  # many ties
    low, high = bootstrap_auc_ci(y, proba, seed=7, resamples=300)
    rows = np.random.default_rng(7).integers(0, 120, (300, 120))
    expected = np.quantile([roc_auc_score(y[r], proba[r]) for r in rows], [0.025, 0.975])
    assert (low, high) == pytest.approx(tuple(expected))
    assert low < roc_auc_score(y, proba) < high


@pytest.fixture(scope="module")
def fitted():
    frame = pd.read_csv(DEFAULT_CSV)
    X = frame.drop(columns=["DEATH_EVENT"]).astype("float64")
    y = frame["DEATH_EVENT"]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    proba = cross_val_predict(model, X, y, cv=5, method="predict_proba")[:, 1]
    return model.fit(X, y), X, y, proba


def report(tmp_path, fitted, **extra) -> str:
    model, X, y, proba = fitted
    metrics = {
        "AUC_weighted": roc_auc_score(y, proba),
        "accuracy": 0.8,
        "precision_score_binary": 0.7,
        "recall_score_binary": 0.6,
        "average_precision_score_weighted": 0.75,
    }
    leaderboard = [
        {
            "learner": "lgbm",
            "trials": 7,
            "cv_AUC_weighted": 0.93,
            "best_config": {"learning_rate": 0.0663, "n_estimators": 5},
        }
    ]
    facts = {
        "data": "data/heart.csv",
        "data_version": "abc123",
        "commit": "0123abcd",
        "rows": len(y),
        "features_used": list(X.columns),
        "features_dropped": [],
        "leaking_columns": ["time"],
        "budget": {
            "mode": "trials",
            "max_trials": 4,
            "trials": 4,
            "search_s": 2.0,
            "selection_s": 3.0,
            "selection_folds": "3x5",
        },
        "settings": {"setting.primary_metric": "AUC_weighted", "setting.seed": "42"},
    }
    selection = [
        {
            "name": "baseline LogisticRegression",
            "kind": "baseline",
            "score": 0.8741,
            "fold_sd": 0.03,
            "noise_vs_pick": 0.0,
            "predict_ms": 0.61,
            "chosen": True,
        },
        {
            "name": "lgbm",
            "kind": "search",
            "score": 0.8702,
            "fold_sd": 0.04,
            "noise_vs_pick": 0.006,
            "lead_over_baseline": -0.0039,
            "noise_vs_baseline": 0.006,
            "predict_ms": 1.8,
            "chosen": False,
        },
    ]
    page = write_report(
        tmp_path,
        model,
        X,
        y,
        proba,
        metrics,
        leaderboard,
        "baseline LogisticRegression",
        42,
        selection=selection,
        rule="no searched model beat the best baseline",
        facts=facts,
        **extra,
    )
    return page.read_text()


def test_the_report_has_calibration_thresholds_an_auc_interval_and_the_run_facts(tmp_path, fitted):
    _, _, y, proba = fitted
    page = report(tmp_path, fitted)
    assert (tmp_path / "calibration.png").stat().st_size > 1000
    brier = float(np.mean((proba - y) ** 2))
    assert f"{brier:.4f}" in page and "Brier" in page
    assert re.search(r"95% CI 0\.\d{3} to 0\.\d{3}", page) and "percentile bootstrap" in page
    chosen = threshold_for_sensitivity(y, proba)
    assert f"{chosen:.2f} (the operating point)" in page
    for header in ("sensitivity", "specificity", "PPV", "NPV"):
        assert f"<th>{header}</th>" in page
    assert "features used</td><td>age, anaemia" in page and "features dropped</td><td>none" in page
    assert "abc123" in page and "0123abcd" in page and "4 trials, no time limit" in page
    assert "primary_metric=AUC_weighted" in page
    assert "Rule:</b> no searched model beat the best baseline" in page
    assert "<td>-0.0039 (0.0060)</td>" in page
    assert "Why the search&#x27;s scores" in page or "Why the search's scores" in page
    assert "learning_rate=0.0663, n_estimators=5" in page
    assert "Leaking feature" not in page


def test_the_report_warns_at_the_top_when_a_leaking_column_is_used(tmp_path, fitted):
    page = report(tmp_path, fitted, leak="this model uses `time`, which leaks the outcome")
    assert page.index("Leaking feature") < page.index("<h2>Metrics")
    assert "uses <code>time</code>, which leaks the outcome" in page


@pytest.mark.parametrize(
    ("between", "labels"),
    [
        # Nobody between 0.20 and the chosen 0.2004: the two rows would be the same patients; one row is shown.
        ([], ["0.10", "0.20 (the operating point)", "0.30"]),
        # A survivor at 0.2002 sets them apart: two rows, each with the digits that tell them apart.
        ([0.2002], ["0.10", "0.2000", "0.2004 (the operating point)", "0.30"]),
    ],
)
def test_the_threshold_table_shows_each_threshold_once(between, labels):
    from types import SimpleNamespace

    from jobs.local.report import _thresholds_section

    died = [0.1, 0.2004, 0.5, 0.6, 0.7, 0.8, 0.9, 0.9, 0.9, 0.9]
    survived = [0.05, 0.15, 0.3, 0.45, *between]
    y, proba = np.array([1] * len(died) + [0] * len(survived)), np.array(died + survived)
    assert threshold_for_sensitivity(y, proba) == 0.2004
    run = SimpleNamespace(y=y, proba=proba, threshold=0.2004, threshold_rule="the test's")
    shown = re.findall(r"<tr[^>]*><td>([^<]*)</td>", _thresholds_section(run))
    assert shown[: len(labels)] == labels
