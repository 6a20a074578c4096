"""Packaging the fast path (jobs/local/fast_model.py): used only when checked equal, otherwise refused with why."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier, VotingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from jobs.local.fast_model import CHECK_ROWS, package
from jobs.paths import ROOT
from scoring.fast_path import TOLERANCE, FastPathRecord

CSV = ROOT / "data" / "heart_failure_clinical_records_dataset.csv"


@pytest.fixture(scope="module")
def data():
    frame = pd.read_csv(CSV)
    return frame.drop(columns=["DEATH_EVENT", "time"]).astype("float64"), frame["DEATH_EVENT"].astype("int64")


def fitted(data, model, first=None):
    X, y = data
    return Pipeline([("featurize", first or StandardScaler()), ("model", model)]).fit(X, y)


def lightgbm(trees=50):
    from lightgbm import LGBMClassifier

    return LGBMClassifier(n_estimators=trees, verbose=-1, n_jobs=1)


@pytest.mark.parametrize(
    "model",
    [
        lambda: RandomForestClassifier(n_estimators=100, random_state=0, n_jobs=1),
        lambda: ExtraTreesClassifier(n_estimators=100, random_state=0, n_jobs=1),
        lightgbm,
        lambda: LogisticRegression(max_iter=2000),
        # local AutoML's ensemble (jobs/local/search.py _vote_ensemble)
        lambda: VotingClassifier(
            [("rf", RandomForestClassifier(n_estimators=20, random_state=0)), ("lgbm", lightgbm(20))], voting="soft"
        ),
    ],
    ids=["forest", "extra-trees", "lightgbm", "logistic", "vote"],
)
def test_the_learners_local_automl_picks_get_a_fast_path_within_the_tolerance(data, model):
    X, _ = data
    fast = package(fitted(data, model()), X)
    record = fast.record
    assert record.used, record.reason
    assert record.max_abs_diff is not None and record.max_abs_diff <= TOLERANCE
    assert record.rows_checked == len(X) == 299
    assert record.inputs == list(X.columns) and record.classes == ["0", "1"]
    assert fast.onnx_bytes is not None and record.sha256 == hashlib.sha256(fast.onnx_bytes).hexdigest()
    assert "ONNX Runtime fast path" in record.summary()
    assert fast.tags()["serving.fast_path"] == "used"


def test_the_scaler_is_applied_in_float64_where_float32_moves_answers(data):
    from skl2onnx import to_onnx

    from scoring.fast_path import session

    X, _ = data
    pipeline = fitted(data, RandomForestClassifier(n_estimators=50, random_state=0, n_jobs=1))
    # skl2onnx's own conversion of the whole pipeline scales in float32: on these patients that moves answers.
    naive = to_onnx(pipeline, X.to_numpy(np.float32), options={id(pipeline.steps[-1][1]): {"zipmap": False}})
    sess = session(naive.SerializeToString())
    moved = sess.run(None, {sess.get_inputs()[0].name: X.to_numpy(np.float32)})[1]
    assert np.abs(moved - pipeline.predict_proba(X)).max() > 100 * TOLERANCE
    record = package(pipeline, X).record
    assert record.used and record.max_abs_diff <= TOLERANCE, record


def test_a_step_without_a_float64_form_is_refused_and_named(data):
    X, _ = data
    fast = package(fitted(data, RandomForestClassifier(n_estimators=10, random_state=0), MinMaxScaler()), X)
    assert not fast.record.used and fast.onnx_bytes is None
    assert fast.record.reason == (
        "step 'featurize' (MinMaxScaler) has no float64 conversion here; in front of the model only StandardScaler "
        "or passthrough"
    )
    assert fast.record.summary().startswith("scikit-learn (no fast path: step 'featurize' (MinMaxScaler)")
    assert fast.tags() == {"serving.fast_path": "refused", "serving.path": fast.record.summary()}


class Halves(ClassifierMixin, BaseEstimator):
    """A classifier skl2onnx has never heard of."""

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X):
        return np.full((len(X), 2), 0.5)


def test_an_estimator_without_a_conversion_is_refused_with_the_converters_word(data):
    X, _ = data
    record = package(fitted(data, Halves()), X).record
    assert not record.used
    assert record.reason.startswith("Halves has no ONNX conversion in skl2onnx: ")


def test_a_difference_over_the_tolerance_is_refused_with_its_size(data):
    X, _ = data
    pipeline = fitted(data, RandomForestClassifier(n_estimators=100, random_state=0, n_jobs=1))
    honest = package(pipeline, X).record
    assert 0 < honest.max_abs_diff <= TOLERANCE  # float32 sums over trees: small, not nothing
    strict = package(pipeline, X, tolerance=honest.max_abs_diff / 2)
    assert not strict.record.used and strict.onnx_bytes is None
    assert f"differ from scikit-learn's by up to {honest.max_abs_diff:.2e}" in strict.record.reason
    assert strict.record.max_abs_diff == honest.max_abs_diff


def test_the_check_rows_are_synthetic_and_inside_the_training_ranges(data):
    X, _ = data
    record = package(fitted(data, LogisticRegression(max_iter=2000)), X).record
    rows = np.array(record.check_rows)
    assert rows.shape == (CHECK_ROWS, X.shape[1])
    assert (rows >= X.min().to_numpy()).all() and (rows <= X.max().to_numpy()).all()
    whole = (X % 1 == 0).all().to_numpy()
    assert (rows[:, whole] % 1 == 0).all()
    patients = {tuple(row) for row in X.to_numpy()}
    assert not any(tuple(row) in patients for row in rows)  # no patient's record travels in the metadata


def test_the_record_round_trips_through_mlmodel_metadata(data):
    X, _ = data
    record = package(fitted(data, LogisticRegression(max_iter=2000)), X).record
    assert FastPathRecord.from_metadata(record.metadata()) == record
    assert FastPathRecord.from_metadata({}) is None
    with pytest.raises(ValueError, match="not a format-1 fast-path record"):
        FastPathRecord.from_metadata({"fast_path": {"used": True}})
