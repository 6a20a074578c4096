"""score.py in process, against a real MLflow model trained from the shipped CSV."""

import copy
import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.scoring.conftest import ROOT, SAMPLE_REQUEST, load_score_module, train_model

SAMPLE = SAMPLE_REQUEST["data"][0]
FEATURES = list(SAMPLE)


def body(response):
    """run() returns a dict on success and an AMLResponse on error: give both as (status, json)."""
    if isinstance(response, dict):
        return 200, response
    return response.status_code, json.loads(response.get_data(as_text=True))


def test_the_lessons_sample_gives_false(score):
    assert body(score.run(data=[SAMPLE])) == (200, {"result": [False]})


def test_json_numbers_and_booleans_give_the_same_answer_as_strings(score):
    typed = {name: (value == "true" if value in ("true", "false") else float(value)) for name, value in SAMPLE.items()}
    assert body(score.run(data=[typed]))[1] == {"result": [False]}


def test_a_high_risk_record_is_predicted_true_and_order_is_kept(score):
    risky = {**SAMPLE, "age": "90", "ejection_fraction": "15", "serum_creatinine": "6", "time": "8"}
    assert body(score.run(data=[SAMPLE, risky, SAMPLE]))[1] == {"result": [False, True, False]}


def test_mlflow_split_form(score):
    request = {"columns": FEATURES, "index": [0, 1], "data": [[SAMPLE[c] for c in FEATURES]] * 2}
    assert body(score.run(input_data=request)) == (200, {"result": [False, False]})


def test_automl_form_with_probabilities(score):
    status, result = body(score.run(Inputs={"data": [SAMPLE]}, GlobalParameters={"method": "predict_proba"}))
    assert status == 200
    assert result["result"] == [False]
    assert len(result["probability"]) == 1 and 0.0 <= result["probability"][0] < 0.5


def test_booleans_accept_every_documented_spelling(score):
    for spelling in (True, 1, "1", "true", "TRUE", "Yes", " no ", "False", 0, False):
        status, _ = body(score.run(data=[{**SAMPLE, "anaemia": spelling}]))
        assert status == 200, spelling


@pytest.mark.parametrize(("change", "field", "fragment"), [
    ({"age": None}, "age", "expected a number, got null"),
    ({"age": "sixty"}, "age", "expected a number"),
    ({"age": True}, "age", "expected a number, got a boolean"),
    ({"age": "NaN"}, "age", "NaN and infinity"),
    ({"platelets": "inf"}, "platelets", "NaN and infinity"),
    ({"age": 131}, "age", "outside the possible range 0 to 130"),
    ({"ejection_fraction": 101}, "ejection_fraction", "outside the possible range 0 to 100"),
    ({"ejection_fraction": 38.5}, "ejection_fraction", "whole number"),
    ({"serum_sodium": 20}, "serum_sodium", "outside the possible range 80 to 200"),
    ({"anaemia": "maybe"}, "anaemia", "expected true/false"),
    ({"anaemia": 2}, "anaemia", "expected true/false"),
    ({"DEATH_EVENT": 1}, "DEATH_EVENT", "unknown field"),
])
def test_bad_values_are_400_naming_record_and_field(score, change, field, fragment):
    record = {**SAMPLE, **change}
    status, result = body(score.run(data=[SAMPLE, record]))
    assert status == 400
    assert any(e["record"] == 1 and e["field"] == field and fragment in e["problem"] for e in result["errors"]), result


def test_every_problem_is_reported_at_once(score):
    first = {k: v for k, v in SAMPLE.items() if k != "time"}
    second = {**SAMPLE, "age": "-1", "smoking": "often"}
    status, result = body(score.run(data=[first, second]))
    assert status == 400
    assert {(e["record"], e["field"]) for e in result["errors"]} == {(0, "time"), (1, "age"), (1, "smoking")}


@pytest.mark.parametrize(("kwargs", "fragment"), [
    ({"data": []}, "empty"),
    ({"data": ["not a record"]}, "expected an object of features"),
    ({"data": {"age": 60}}, "expected an array of records"),
    ({"data": [SAMPLE] * 1001}, "more than the limit of 1000"),
    ({}, "expected exactly one of the keys data, input_data or Inputs"),
    ({"data": [SAMPLE], "Inputs": {"data": [SAMPLE]}}, "found data, Inputs"),
    ({"Inputs": [SAMPLE]}, "Inputs"),
    ({"input_data": {"columns": FEATURES, "data": [[1, 2]]}}, "expected a row of 12 values"),
    ({"input_data": "text"}, "expected an object with columns and data"),
    ({"data": [SAMPLE], "GlobalParameters": {"method": "explain"}}, "not one of predict, predict_proba"),
    ({"data": [SAMPLE], "GlobalParameters": "predict_proba"}, "GlobalParameters"),
])
def test_bad_shapes_are_400(score, kwargs, fragment):
    status, result = body(score.run(**kwargs))
    assert status == 400
    assert fragment in json.dumps(result), result


def test_a_failure_inside_the_model_is_a_generic_500(score, monkeypatch, caplog):
    class Broken:
        def predict(self, frame):
            raise RuntimeError("secret detail about patient 42")

    monkeypatch.setattr(score, "_model", Broken())
    status, result = body(score.run(data=[SAMPLE]))
    assert status == 500
    assert "secret detail" not in json.dumps(result)
    assert "secret detail" in caplog.text


def test_1000_records_are_scored_in_order(score):
    records = [copy.deepcopy(SAMPLE) for _ in range(1000)]
    status, result = body(score.run(data=records))
    assert status == 200 and result["result"] == [False] * 1000


def test_a_model_trained_without_time_still_takes_the_lessons_request(tmp_path, monkeypatch):
    train_model(tmp_path / "model", drop=("time",))
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(tmp_path))
    module = load_score_module()
    module.init()
    assert module._columns == [c for c in FEATURES if c != "time"]
    status, result = body(module.run(data=[SAMPLE], GlobalParameters={"method": "predict_proba"}))
    assert status == 200 and not math.isnan(result["probability"][0])


def test_init_says_when_there_is_no_model(tmp_path, monkeypatch):
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(tmp_path))
    module = load_score_module()
    with pytest.raises(module.ModelLoadError, match="no MLflow model"):
        module.init()


def test_init_says_when_there_are_two_models(tmp_path, monkeypatch):
    train_model(tmp_path / "a")
    train_model(tmp_path / "b")
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(tmp_path))
    module = load_score_module()
    with pytest.raises(module.ModelLoadError, match="2 MLflow models"):
        module.init()


def test_the_sample_request_file_is_the_lessons_record():
    assert json.loads((ROOT / "scoring" / "sample-request.json").read_text())["data"][0]["serum_creatinine"] == "1.40"


def _python_3_9() -> str | None:
    import glob
    import shutil
    import subprocess

    candidates = sorted(glob.glob(str(Path.home() / ".pyenv/versions/3.9*/bin/python3.9")))
    candidates += [p for p in (shutil.which("python3.9"),) if p]
    for candidate in candidates:
        probe = subprocess.run([candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 9))"],
                               capture_output=True, text=True, timeout=30, check=False)
        if probe.stdout.strip() == "True":
            return candidate
    return None


def test_the_request_schema_runs_on_python_3_9_as_in_automls_environment():
    import subprocess

    python39 = _python_3_9()
    if python39 is None:
        pytest.skip("no Python 3.9 on this machine")
    code = ("import sys, json; sys.path.insert(0, 'scoring'); import schema; "
            "r = schema.parse_request(data=[schema.SAMPLE_RECORD]); "
            "s = schema.parse_request(input_data={'columns': list(schema.FEATURE_NAMES), "
            "'data': [[schema.SAMPLE_RECORD[c] for c in schema.FEATURE_NAMES]]}); "
            "compile(open('scoring/score.py').read(), 'score.py', 'exec'); print(json.dumps(r.rows == s.rows))")
    result = subprocess.run([python39, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "true"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)
any_record = st.fixed_dictionaries({}, optional={name: json_values for name in FEATURES}) | json_values


@given(data=st.lists(any_record, max_size=3) | json_values, inputs=json_values, params=json_values)
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_json_is_either_scored_or_a_400_never_an_exception(score, data, inputs, params):
    for kwargs in ({"data": data}, {"Inputs": inputs, "GlobalParameters": params},
                   {"input_data": {"columns": FEATURES, "data": data}}, {"input_data": inputs}):
        status, result = body(score.run(**kwargs))
        assert status in (200, 400), (kwargs, result)
        if status == 400:
            assert result["errors"] and all({"record", "field", "problem"} <= set(e) for e in result["errors"])
