"""The fast path in the endpoint: ONNX Runtime answers as scikit-learn does, and every doubt falls back to it."""

from __future__ import annotations

import csv
import logging
import shutil
import sys

import pytest
import yaml

from testing.scoring import CSV, SAMPLE_REQUEST, load_score_module, train_model

SAMPLE = SAMPLE_REQUEST["data"][0]
TOLERANCE = 1e-5  # scoring/fast_path.py's, restated: the bar, not a figure to tune
ROUNDING = 5e-7  # the answer's probability has 6 decimals


@pytest.fixture(scope="module")
def fast_root(tmp_path_factory):
    """The honest default's shape (a standardized random forest, without `time`), packaged as training does."""
    root = tmp_path_factory.mktemp("fast")
    train_model(root / "m" / "1" / "model", drop=("time",), forest=True, fast_path=True)
    return root


def loaded(root, monkeypatch):
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(root))
    module = load_score_module()
    module.init()
    return module


def copy_of(root, tmp_path):
    target = tmp_path / "copy"
    shutil.copytree(root, target)
    return target, target / "m" / "1" / "model"


def patients() -> list[dict[str, str]]:
    """The CSV's 299 patients as the lesson's requests carry them (strings), without `time` and the label."""
    with CSV.open() as handle:
        return [
            {name: value for name, value in row.items() if name not in ("time", "DEATH_EVENT")}
            for row in csv.DictReader(handle)
        ]


def sklearn_probabilities(model_dir, records):
    """What the MLflow model itself says for `records`: the probability of the positive class per record."""
    import mlflow.sklearn
    import pandas as pd

    model = mlflow.sklearn.load_model(str(model_dir))
    frame = pd.DataFrame(records).astype("float64")[list(model.feature_names_in_)]
    return model.predict_proba(frame)[:, 1].tolist()


def worst_difference(got, expected):
    return max(abs(a - b) for a, b in zip(got, expected, strict=True))


def test_the_fast_path_answers_every_patient_as_the_trained_model_does(fast_root, monkeypatch):
    score = loaded(fast_root, monkeypatch)
    assert type(score._model).__name__ == "OnnxClassifier", score._serving
    assert score._serving.startswith("ONNX Runtime (model.onnx, one thread)")
    records = patients()
    answer = score.run(data=records)
    expected = sklearn_probabilities(fast_root / "m" / "1" / "model", records)
    assert len(answer["probability"]) == len(expected) == 299
    assert worst_difference(answer["probability"], expected) <= TOLERANCE + ROUNDING
    # `result` is the rounded probability against the threshold, as on the scikit-learn path.
    assert answer["result"] == [p >= answer["threshold"] for p in answer["probability"]]
    assert set(answer) == {"result", "probability", "threshold", "outside_training_range"}


def test_refusals_are_the_same_as_on_the_scikit_learn_path(fast_root, tmp_path, monkeypatch):
    fast = loaded(fast_root, monkeypatch)
    root, model_dir = copy_of(fast_root, tmp_path)
    (model_dir / "model.onnx").unlink()
    slow = loaded(root, monkeypatch)
    assert type(slow._model).__name__ == "Pipeline"
    bad = [SAMPLE, {**SAMPLE, "age": "sixty", "ejection_fraction": 101}]
    fast_refusal, slow_refusal = fast.run(data=bad), slow.run(data=bad)
    assert fast_refusal.status_code == slow_refusal.status_code == 400
    assert fast_refusal.get_data() == slow_refusal.get_data()
    fast_answer, slow_answer = fast.run(data=[SAMPLE]), slow.run(data=[SAMPLE])
    assert fast_answer["result"] == slow_answer["result"]
    assert abs(fast_answer["probability"][0] - slow_answer["probability"][0]) <= TOLERANCE + ROUNDING


def rewrite_record(model_dir, change):
    """Edit the fast-path record in the MLmodel file as `change(record)` says (it may return None: no record)."""
    path = model_dir / "MLmodel"
    document = yaml.safe_load(path.read_text())
    record = change(document["metadata"]["fast_path"])
    if record is None:
        del document["metadata"]
    else:
        document["metadata"]["fast_path"] = record
    path.write_text(yaml.safe_dump(document))


def _check_answers_moved(record):
    record["check_probabilities"][0] = [p + 0.01 for p in record["check_probabilities"][0]]
    return record


def _refused(record):
    return {**record, "used": False, "reason": "step 'scale' (MinMaxScaler) has no float64 conversion here"}


def _columns_swapped(record):
    record["inputs"] = [record["inputs"][1], record["inputs"][0], *record["inputs"][2:]]
    return record


@pytest.mark.parametrize(
    ("spoil", "why", "warned"),
    [
        (lambda d: (d / "model.onnx").unlink(), "model.onnx is missing", True),
        (lambda d: (d / "model.onnx").open("ab").write(b"\0"), "SHA-256 differs", True),
        (lambda d: rewrite_record(d, _check_answers_moved), "check rows up to 1.00e-02 away", True),
        (lambda d: rewrite_record(d, _columns_swapped), "the model's signature has", True),
        (lambda d: rewrite_record(d, lambda record: {**record, "format": 99}), "record is unreadable", True),
        # A model whose training refused the fast path, and one with no record at all (Azure AutoML's).
        (lambda d: rewrite_record(d, _refused), "training refused the fast path: step 'scale' (MinMaxScaler)", False),
        (lambda d: rewrite_record(d, lambda record: None), "records no fast path", False),
    ],
)
def test_a_fast_path_that_does_not_check_out_falls_back_to_scikit_learn_and_says_why(
    fast_root, tmp_path, monkeypatch, caplog, spoil, why, warned
):
    root, model_dir = copy_of(fast_root, tmp_path)
    spoil(model_dir)
    with caplog.at_level(logging.INFO, logger="heart_failure_scoring"):
        score = loaded(root, monkeypatch)
    assert type(score._model).__name__ == "Pipeline"
    assert score._serving.startswith("scikit-learn") and why in score._serving, score._serving
    said = [r for r in caplog.records if r.getMessage().startswith("answering with scikit-learn")]
    assert said and (said[0].levelno == logging.WARNING) == warned
    patient = patients()[0]
    assert score.run(data=[patient])["probability"] == [round(sklearn_probabilities(model_dir, [patient])[0], 6)]


def test_without_onnxruntime_the_endpoint_serves_scikit_learn(fast_root, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now raises ImportError
    score = loaded(fast_root, monkeypatch)
    assert type(score._model).__name__ == "Pipeline"
    assert "onnxruntime is not installed" in score._serving
    assert score.run(data=[SAMPLE])["result"] == [False]


def test_an_ensemble_with_lightgbm_takes_the_fast_path_too(tmp_path, monkeypatch):
    train_model(tmp_path / "m", drop=("time",), ensemble=True, fast_path=True)
    score = loaded(tmp_path, monkeypatch)
    assert type(score._model).__name__ == "OnnxClassifier", score._serving
    records = patients()
    expected = sklearn_probabilities(tmp_path / "m", records)
    got = score.run(data=records)["probability"]
    assert worst_difference(got, expected) <= TOLERANCE + ROUNDING
