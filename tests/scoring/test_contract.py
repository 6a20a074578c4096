"""The model carries its contract: required fields from its signature, the operating point, out-of-range flags."""

from __future__ import annotations

import os

import pytest

from testing.scoring import SAMPLE_REQUEST, load_score_module, train_model

SAMPLE = SAMPLE_REQUEST["data"][0]
ALL_BUT_TWO = (
    "age",
    "anaemia",
    "creatinine_phosphokinase",
    "diabetes",
    "high_blood_pressure",
    "platelets",
    "serum_sodium",
    "sex",
    "smoking",
    "time",
)


def loaded(root, monkeypatch, **environ):
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(root))
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    module = load_score_module()
    module.init()
    return module


@pytest.fixture(scope="module")
def two_feature_root(tmp_path_factory):
    # Chicco & Jurman's two features: ejection fraction and serum creatinine.
    root = tmp_path_factory.mktemp("two")
    train_model(root / "m", drop=ALL_BUT_TWO, threshold=0.3)
    return root


def test_a_two_feature_model_answers_a_two_field_request(two_feature_root, monkeypatch):
    score = loaded(two_feature_root, monkeypatch)
    answer = score.run(data=[{"ejection_fraction": 20, "serum_creatinine": "1.9"}])
    assert set(answer) == {"result", "probability", "threshold", "outside_training_range"}
    assert answer["threshold"] == 0.3
    assert answer["result"] == [answer["probability"][0] >= 0.3]


def test_the_lessons_full_request_still_works_and_unused_fields_are_still_checked(two_feature_root, monkeypatch):
    score = loaded(two_feature_root, monkeypatch)
    assert len(score.run(**SAMPLE_REQUEST)["result"]) == 1
    refused = score.run(data=[dict(SAMPLE, time="-4")])  # optional, yet outside what is possible
    assert refused.status_code == 400
    assert '"field": "time"' in refused.get_data(as_text=True)


def test_a_missing_model_field_is_refused_and_an_unknown_one_too(two_feature_root, monkeypatch):
    score = loaded(two_feature_root, monkeypatch)
    body = score.run(data=[{"ejection_fraction": 20, "patient_id": 7}]).get_data(as_text=True)
    assert '"field": "serum_creatinine", "problem": "missing"' in body
    assert "patient_id" in body and "unknown field" in body


def test_swagger_requires_just_the_models_fields(two_feature_root, monkeypatch):
    score = loaded(two_feature_root, monkeypatch)
    from inference_schema.schema_util import get_input_schema

    records = get_input_schema(score.run)["properties"]["data"]
    assert records["items"]["required"] == ["ejection_fraction", "serum_creatinine"]
    assert "time" in records["items"]["properties"]  # known to the dataset: optional


def test_a_record_outside_the_training_data_is_scored_and_flagged(model_root, monkeypatch):
    score = loaded(model_root, monkeypatch)
    answer = score.run(data=[dict(SAMPLE, age="25"), SAMPLE])  # the cohort is 40 to 95
    assert answer["outside_training_range"] == [["age"], []]
    assert len(answer["probability"]) == 2


def test_the_deployments_threshold_overrides_the_models(model_root, monkeypatch):
    score = loaded(model_root, monkeypatch, SCORING_THRESHOLD="0.01", SCORING_THRESHOLD_RULE="chosen")
    answer = score.run(**SAMPLE_REQUEST)
    assert answer["threshold"] == 0.01 and answer["result"] == [True]


@pytest.mark.parametrize("bad", ["0", "1", "abc", "nan"])
def test_a_bad_threshold_stops_the_server_with_a_reason(model_root, monkeypatch, bad):
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(model_root))
    monkeypatch.setenv("SCORING_THRESHOLD", bad)
    module = load_score_module()
    with pytest.raises(module.ModelLoadError, match="not a threshold"):
        module.init()


def test_a_model_without_a_contract_or_operating_point_does_not_start(tmp_path, monkeypatch):
    root = tmp_path / "models"
    train_model(root / "m", threshold=None)
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(root))
    os.environ.pop("SCORING_THRESHOLD", None)
    module = load_score_module()
    with pytest.raises(module.ModelLoadError, match="--threshold"):
        module.init()
    (root / "m" / "model-contract.json").unlink()
    with pytest.raises(module.ModelLoadError, match="no model contract"):
        module.init()
