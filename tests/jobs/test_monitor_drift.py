"""The drift metrics and the window reader behind `jobs monitor`, on inputs whose answer is known."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest

from jobs.dataset import default_schema
from jobs.monitoring import drift
from jobs.monitoring.check import Thresholds, compare, read_window

FEATURE_NAMES = default_schema().feature_names

RNG = np.random.default_rng(0)
NORMAL = RNG.normal(50, 10, 2000)


@pytest.mark.parametrize("metric", drift.NUMERICAL_METRICS)
def test_a_sample_against_itself_is_no_drift_and_a_shift_is(metric):
    same = drift.FeatureDrift(
        "x",
        "numerical",
        metric,
        drift.numerical(metric, NORMAL, NORMAL),
        0.05 if metric in drift.P_VALUE_METRICS else 0.1,
    )
    shifted = drift.FeatureDrift("x", "numerical", metric, drift.numerical(metric, NORMAL, NORMAL + 10), same.threshold)
    assert not same.drifted and shifted.drifted


def test_normalized_wasserstein_is_the_shift_in_reference_standard_deviations():
    assert drift.numerical("normalized_wasserstein_distance", NORMAL, NORMAL + 5) == pytest.approx(5 / np.std(NORMAL))


def test_categorical_metrics_on_known_shares():
    reference = np.array([0] * 50 + [1] * 50)
    production = np.array([0] * 90 + [1] * 10)
    p, q = np.array([0.5, 0.5]), np.array([0.9, 0.1])
    m = (p + q) / 2
    kl = lambda a, b: np.sum(a * np.log2(a / b))  # noqa: E731
    assert drift.categorical("jensen_shannon_distance", reference, production) == pytest.approx(
        np.sqrt((kl(p, m) + kl(q, m)) / 2)
    )
    assert drift.categorical("population_stability_index", reference, production) == pytest.approx(
        np.sum((q - p) * np.log(q / p))
    )
    assert drift.categorical("pearsons_chi_squared_test", reference, production) < 1e-6
    assert drift.categorical("pearsons_chi_squared_test", reference, reference) == pytest.approx(1.0)


def test_a_category_never_seen_in_training_counts_as_drift():
    assert drift.categorical("jensen_shannon_distance", np.zeros(100), np.ones(100)) == pytest.approx(1.0)


def _line(minutes_ago: int, model: str = "m:1", **extra) -> str:
    when = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC) - dt.timedelta(minutes=minutes_ago)
    record = {
        "kind": "scored",
        "time": when.isoformat().replace("+00:00", "Z"),
        "model": model,
        "features": dict.fromkeys(FEATURE_NAMES, 1.0),
        "prediction": True,
        **extra,
    }
    return json.dumps(record)


def test_the_window_keeps_its_model_and_hours_and_skips_a_torn_line(tmp_path):
    (tmp_path / "scored-20261129T000000Z-1.jsonl").write_text(_line(30) + "\n" + _line(60 * 30) + "\n")
    refused = {
        "kind": "refused",
        "time": "2026-11-29T11:59:00Z",
        "model": "m:1",
        "records": 3,
        "reasons": [{"field": "age", "reason": "out_of_range", "count": 3}],
    }
    (tmp_path / "scored.jsonl").write_text(
        _line(5) + "\n" + _line(5, model="m:2") + "\n" + json.dumps(refused) + "\n" + '{"kind":"sco'
    )
    window = read_window(tmp_path, "m:1", 24, now=dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC))
    assert window.scored == 2  # 30 h ago is outside, m:2 is another version
    assert (window.other_models, window.unreadable_lines, window.refused_records) == (1, 1, 3)
    assert window.refused_share == pytest.approx(3 / 5)


def test_too_few_records_computes_no_drift_but_still_checks_refusals(tmp_path):
    (tmp_path / "scored.jsonl").write_text(_line(1) + "\n")
    window = read_window(tmp_path, "m:1", 1, now=dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC))
    reference = {name: np.zeros(10) for name in FEATURE_NAMES}
    result = compare("m:1", window, reference, np.zeros(10, dtype=bool), Thresholds(min_records=100))
    assert result.features == [] and result.prediction is None and result.alerts == []


def test_threshold_problems_name_the_flag():
    problems = Thresholds(numerical_metric="l_infinity", categorical=0, min_records=0).problems()
    assert any(p.startswith("--numerical-metric 'l_infinity' is not one of") for p in problems)
    # The wording of every bound is its declaration's (jobs/options.py), as argparse would say it.
    assert "argument --categorical-threshold: 0 is not allowed; allowed: a number above 0" in problems
    assert "argument --min-records: 0 is not allowed; allowed: a whole number, at least 1" in problems


def test_a_line_with_wrong_value_types_is_skipped_and_counted_not_fatal(tmp_path):
    now = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC)
    good = json.loads(_line(1))
    bad_features = {**good, "features": {**good["features"], "age": "x"}}
    no_features = {**good, "features": None}
    bad_prediction = {**good, "prediction": "yes"}
    bad_refusal = {"kind": "refused", "time": good["time"], "model": "m:1", "records": "many", "reasons": []}
    lines = [good, bad_features, no_features, bad_prediction, bad_refusal]
    (tmp_path / "scored.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    window = read_window(tmp_path, "m:1", 24, now=now)
    assert (window.scored, window.unreadable_lines, window.refused_records) == (1, 4, 0)
    assert all(len(values) == 1 for values in window.features.values())  # nothing half-kept


def test_a_reference_given_by_hand_must_be_the_data_the_model_was_trained_on(tmp_path):
    from jobs.dataset import DEFAULT_CSV, content_version
    from jobs.errors import JobsError
    from jobs.monitoring.check import load_reference

    partial = tmp_path / "first-150.csv"
    partial.write_text("".join(DEFAULT_CSV.read_text().splitlines(keepends=True)[:151]))
    with pytest.raises(JobsError) as caught:
        load_reference(partial, content_version(DEFAULT_CSV), (), given="--reference")
    assert str(caught.value).startswith(f"--reference {partial} is data version ")
    assert "another file" in str(caught.value)
    assert len(load_reference(DEFAULT_CSV, content_version(DEFAULT_CSV), (), given="--reference")["age"]) == 299


def test_files_collected_before_and_after_the_typed_format_are_read_alike(tmp_path):
    # Before issue 20 the collector wrote every feature as a float and the prediction as true/false; since,
    # flags and whole-number fields as ints and the prediction as 0/1 (scoring/collect.py). A folder holds both.
    now = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC)
    old = json.loads(_line(2, prediction=True))
    new = json.loads(_line(1, prediction=0))
    new["features"] = {**new["features"], "anaemia": 1, "ejection_fraction": 38, "age": 60.5}
    (tmp_path / "scored-20261129T000000Z-1.jsonl").write_text(json.dumps(old) + "\n")
    (tmp_path / "scored.jsonl").write_text(json.dumps(new) + "\n")
    window = read_window(tmp_path, "m:1", 24, now=now)
    assert (window.scored, window.unreadable_lines) == (2, 0)
    assert window.predictions.tolist() == [True, False]
    assert window.features["ejection_fraction"].tolist() == [1.0, 38.0]
    assert window.features["age"].tolist() == [1.0, 60.5]


def test_a_prediction_that_is_not_0_1_or_a_boolean_is_skipped(tmp_path):
    now = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC)
    lines = [_line(1, prediction=2), _line(1, prediction=1.0), _line(1, prediction=1)]
    boolean_feature = json.loads(_line(1))
    boolean_feature["features"]["age"] = True  # a bool is not what the collector writes for a number
    (tmp_path / "scored.jsonl").write_text("\n".join([*lines, json.dumps(boolean_feature)]) + "\n")
    window = read_window(tmp_path, "m:1", 24, now=now)
    assert (window.scored, window.unreadable_lines) == (1, 3)
    assert window.predictions.tolist() == [True]
