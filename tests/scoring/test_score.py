"""score.py in process, against a real MLflow model trained from the shipped CSV."""

import copy
import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from testing.scoring import ROOT, SAMPLE_REQUEST, load_score_module, only_result, train_model

SAMPLE = SAMPLE_REQUEST["data"][0]
FEATURES = list(SAMPLE)


def body(response):
    """run() returns a dict on success and an AMLResponse on error: give both as (status, json)."""
    if isinstance(response, dict):
        return 200, response
    return response.status_code, json.loads(response.get_data(as_text=True))


def test_the_lessons_sample_gives_false(score):
    assert only_result(body(score.run(data=[SAMPLE]))) == (200, {"result": [False]})


def test_json_numbers_and_booleans_give_the_same_answer_as_strings(score):
    typed = {name: (value == "true" if value in ("true", "false") else float(value)) for name, value in SAMPLE.items()}
    assert only_result(body(score.run(data=[typed]))[1]) == {"result": [False]}


def test_a_high_risk_record_is_predicted_true_and_order_is_kept(score):
    risky = {**SAMPLE, "age": "90", "ejection_fraction": "15", "serum_creatinine": "6", "time": "8"}
    assert only_result(body(score.run(data=[SAMPLE, risky, SAMPLE]))[1]) == {"result": [False, True, False]}


def test_mlflow_split_form(score):
    request = {"columns": FEATURES, "index": [0, 1], "data": [[SAMPLE[c] for c in FEATURES]] * 2}
    assert only_result(body(score.run(input_data=request))) == (200, {"result": [False, False]})


def test_automl_form_with_probabilities(score):
    status, result = body(score.run(Inputs={"data": [SAMPLE]}, GlobalParameters={"method": "predict_proba"}))
    assert status == 200
    assert result["result"] == [False]
    assert len(result["probability"]) == 1 and 0.0 <= result["probability"][0] < 0.5


def test_booleans_accept_every_documented_spelling(score):
    for spelling in (True, 1, "1", "true", "TRUE", "Yes", " no ", "False", 0, False):
        status, _ = body(score.run(data=[{**SAMPLE, "anaemia": spelling}]))
        assert status == 200, spelling


@pytest.mark.parametrize(
    ("change", "field", "fragment"),
    [
        ({"age": None}, "age", "expected a number, got null"),
        ({"age": "sixty"}, "age", "expected a number"),
        ({"age": True}, "age", "expected a number, got the boolean true"),
        ({"age": "NaN"}, "age", "NaN and infinity"),
        ({"platelets": "inf"}, "platelets", "NaN and infinity"),
        ({"age": 131}, "age", "outside the possible range 0 to 130"),
        ({"ejection_fraction": 101}, "ejection_fraction", "outside the possible range 5 to 100"),
        ({"ejection_fraction": 38.5}, "ejection_fraction", "whole number"),
        ({"serum_sodium": 20}, "serum_sodium", "outside the possible range 80 to 200"),
        ({"anaemia": "maybe"}, "anaemia", "expected true/false"),
        ({"anaemia": 2}, "anaemia", "expected true/false"),
        ({"DEATH_EVENT": 1}, "DEATH_EVENT", "unknown field"),
    ],
)
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


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
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
    ],
)
def test_bad_shapes_are_400(score, kwargs, fragment):
    status, result = body(score.run(**kwargs))
    assert status == 400
    assert fragment in json.dumps(result), result


def test_a_failure_inside_the_model_is_a_generic_500(score, monkeypatch, caplog):
    class Broken:
        def predict_proba(self, frame):
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
        probe = subprocess.run(
            [candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 9))"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if probe.stdout.strip() == "True":
            return candidate
    return None


def test_the_request_schema_runs_on_python_3_9_as_in_automls_environment():
    import subprocess

    python39 = _python_3_9()
    if python39 is None:
        pytest.skip("no Python 3.9 on this machine")
    code = (
        "import sys, json; sys.path.insert(0, 'scoring'); import schema, contract, fast_path; "
        "d = schema.DatasetSchema.load(__import__('pathlib').Path("
        "'data/heart_failure_clinical_records_dataset.schema.json')); q = d.request_schema(); "
        "r = q.parse_request(data=[d.example]); "
        "s = q.parse_request(input_data={'columns': list(d.feature_names), "
        "'data': [[d.example[c] for c in d.feature_names]]}); "
        "f = fast_path.FastPathRecord(used=False, reason='why'); "
        "assert fast_path.FastPathRecord.from_metadata(f.metadata()) == f; "
        "compile(open('scoring/score.py').read(), 'score.py', 'exec'); print(json.dumps(r.rows == s.rows))"
    )
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
    for kwargs in (
        {"data": data},
        {"Inputs": inputs, "GlobalParameters": params},
        {"input_data": {"columns": FEATURES, "data": data}},
        {"input_data": inputs},
    ):
        status, result = body(score.run(**kwargs))
        assert status in (200, 400), (kwargs, result)
        if status == 400:
            assert result["errors"] and all({"record", "field", "problem"} <= set(e) for e in result["errors"])


# --- issue 11 item 1: one rule for string forms, for every field kind ---------------------------


def _probability(score, record):
    status, result = body(score.run(data=[record], GlobalParameters={"method": "predict_proba"}))
    assert status == 200, result
    return result["probability"][0]


def test_flags_as_float_strings_score_like_1_and_0(score):
    as_floats = {**SAMPLE, "anaemia": "1.0", "smoking": "0.0"}
    as_ints = {**SAMPLE, "anaemia": 1, "smoking": 0}
    assert _probability(score, as_floats) == _probability(score, as_ints)


@pytest.mark.parametrize("spelling", ["1.0", "0.0", " 1 ", "+1", "1e0", "-0", "1.", "0.000", "1.00"])
def test_a_flag_takes_any_numeric_string_equal_to_1_or_0(score, spelling):
    expected = {**SAMPLE, "diabetes": 1 if float(spelling) == 1 else 0}
    assert _probability(score, {**SAMPLE, "diabetes": spelling}) == _probability(score, expected)


@pytest.mark.parametrize("spelling", ["2.0", "0.5", "1,0", "0x1", "nan", "", "1_0", "١"])
def test_a_flag_refuses_other_numeric_strings(score, spelling):
    status, result = body(score.run(data=[{**SAMPLE, "diabetes": spelling}]))
    assert status == 400 and result["errors"][0]["field"] == "diabetes", result
    assert "numeric strings" in result["errors"][0]["problem"]


@pytest.mark.parametrize("spelling", [" 38 ", "38.0", "3.8e1", "+38", "38.", "380E-1", "\t38\n"])
def test_a_number_field_takes_the_same_numeric_strings(score, spelling):
    assert _probability(score, {**SAMPLE, "ejection_fraction": spelling}) == _probability(
        score, {**SAMPLE, "ejection_fraction": 38}
    )


@pytest.mark.parametrize(
    ("spelling", "fragment"),
    [
        ("0x26", "expected a number (digits"),
        ("3_8", "expected a number (digits"),  # Python's float() reads it as 38
        ("٣٨", "expected a number (digits"),  # Arabic-Indic digits: float() reads them too
        ("38,0", "use a dot for decimals"),
        ("260,000", "use a dot for decimals"),
        ("Infinity", "NaN and infinity"),
        ("1" * 41, "a string of 41 characters"),
    ],
)
def test_a_number_field_refuses_what_is_not_a_plain_decimal(score, spelling, fragment):
    field = "platelets" if "," in spelling else "ejection_fraction"
    status, result = body(score.run(data=[{**SAMPLE, field: spelling}]))
    assert status == 400, result
    assert result["errors"][0]["field"] == field and fragment in result["errors"][0]["problem"], result


def test_a_json_integer_too_large_for_a_float_is_a_400_not_an_exception(score):
    status, result = body(score.run(data=[{**SAMPLE, "age": 10**400}]))
    assert status == 400 and "a number of 401 digits is outside the possible range" in result["errors"][0]["problem"]


def test_a_numeric_string_too_large_for_a_float_is_out_of_range_not_infinity(score):
    status, result = body(score.run(data=[{**SAMPLE, "age": "1e999"}]))
    assert status == 400 and "1e999 is outside the possible range" in result["errors"][0]["problem"]


# --- issue 11 item 2: AutoML's "Consume" samples ---------------------------------------------------


@pytest.mark.parametrize("placeholder", [1.0, 1, 0])
def test_a_number_as_global_parameters_means_no_parameters(score, placeholder):
    assert only_result(body(score.run(Inputs={"data": [SAMPLE]}, GlobalParameters=placeholder))) == (
        200,
        {"result": [False]},
    )


@pytest.mark.parametrize("other", ["predict_proba", [1.0], True, {"method": ["predict"]}])
def test_global_parameters_that_are_neither_an_object_nor_a_number_stay_a_400(score, other):
    status, result = body(score.run(data=[SAMPLE], GlobalParameters=other))
    assert status == 400 and result["errors"][0]["field"].startswith("GlobalParameters"), result


# --- issue 11 item 3: values no living patient has, and the unit they come from ------------------


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"platelets": "260"}, "260 looks like thousands per µL"),
        ({"platelets": 0}, "outside the possible range 1000 to 3000000 platelets per µL"),
        ({"serum_creatinine": "120"}, "120 looks like µmol/L, which would be 1.36 mg/dL"),
        ({"serum_creatinine": 0.05}, "looks like mmol/L"),
        ({"serum_creatinine": 0}, "outside the possible range 0.1 to 40 mg/dL"),
        ({"age": 720}, "720 looks like months, which would be 60 years"),
        ({"serum_sodium": 315}, "315 looks like mg/dL, which would be 137 mEq/L"),
        ({"serum_sodium": 3150}, "looks like mg/L"),
        ({"ejection_fraction": 0.35}, "0.35 looks like a fraction, which would be 35 %"),
        ({"ejection_fraction": "0"}, "outside the possible range 5 to 100 %"),
        ({"creatinine_phosphokinase": 0}, "outside the possible range 1 to 1000000 U/L"),
        ({"creatinine_phosphokinase": 2.5}, "2.5 looks like µkat/L, which would be 150 U/L"),
        ({"creatinine_phosphokinase": 1_000_001}, "outside the possible range 1 to 1000000 U/L"),
    ],
)
def test_impossible_values_are_refused_with_the_unit_they_look_like(score, change, fragment):
    status, result = body(score.run(data=[{**SAMPLE, **change}]))
    assert status == 400, result
    (field,) = change
    assert result["errors"][0]["field"] == field and fragment in result["errors"][0]["problem"], result


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("creatinine_phosphokinase", 700_000),  # survived rhabdomyolysis has been reported above this
        ("serum_sodium", 98),  # the lowest sodium reported in a survivor
        ("ejection_fraction", 10),  # patients at or below 10% have been followed for years
        ("platelets", 2_000),  # severe immune thrombocytopenia
        ("serum_creatinine", 0.2),  # very low muscle mass
    ],
)
def test_extreme_values_real_patients_have_are_scored(score, field, value):
    assert body(score.run(data=[{**SAMPLE, field: value}]))[0] == 200


def test_the_datasets_own_extremes_stay_accepted(score):
    # The lowest and highest value of each field in the shipped CSV must always score.
    import csv

    with (ROOT / "data" / "heart_failure_clinical_records_dataset.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    for field in FEATURES:
        values = sorted(float(row[field]) for row in rows)
        for value in (values[0], values[-1]):
            status, result = body(score.run(data=[{**SAMPLE, field: value}]))
            assert status == 200, (field, value, result)


# --- issue 10 item 9: the frame carries the signature's types ---------------------------------------


def test_the_model_gets_the_column_types_of_its_signature(tmp_path, monkeypatch):
    integers = ("age", "anaemia", "creatinine_phosphokinase", "ejection_fraction", "serum_sodium", "time")
    train_model(tmp_path / "model", dtypes={name: "int64" for name in integers})
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(tmp_path))
    module = load_score_module()
    module.init()
    seen = []
    real = module._model

    class Recording:
        classes_ = real.classes_

        def predict_proba(self, frame):
            seen.append(dict(frame.dtypes.astype(str)))
            return real.predict_proba(frame)

    monkeypatch.setattr(module, "_model", Recording())
    assert body(module.run(data=[SAMPLE]))[0] == 200
    assert {name: seen[0][name] for name in integers} == {name: "int64" for name in integers}
    assert seen[0]["platelets"] == "float64"
    # A fraction where the model was trained on whole numbers would be truncated: refuse it.
    status, result = body(module.run(data=[SAMPLE, {**SAMPLE, "age": 60.5}]))
    assert status == 400 and result["errors"] == [
        {
            "record": 1,
            "field": "age",
            "problem": "expected a whole number: the model was trained with whole numbers for age, got 60.5",
            "kind": "not_whole",
        }
    ]


def test_a_model_with_its_columns_in_another_order_gets_them_in_its_order(tmp_path, monkeypatch, score):
    train_model(tmp_path / "model", reverse_columns=True)
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(tmp_path))
    module = load_score_module()
    module.init()
    assert module._columns == FEATURES[::-1]
    risky = {**SAMPLE, "age": "90", "ejection_fraction": "15", "serum_creatinine": "6", "time": "8"}
    reversed_answer = body(module.run(data=[SAMPLE, risky], GlobalParameters={"method": "predict_proba"}))[1]
    usual_answer = body(score.run(data=[SAMPLE, risky], GlobalParameters={"method": "predict_proba"}))[1]
    assert reversed_answer["result"] == usual_answer["result"] == [False, True]
    assert reversed_answer["probability"] == pytest.approx(usual_answer["probability"], abs=1e-4)


# --- issue 12 item 4: no parallel workers for one record -------------------------------------------


def test_init_sets_every_fitted_estimator_inside_the_model_to_one_thread(tmp_path, monkeypatch):
    train_model(tmp_path / "model", ensemble=True)
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(tmp_path))
    module = load_score_module()
    module.init()
    voting = module._model.steps[-1][1]
    fitted = list(voting.estimators_)
    assert [type(e).__name__ for e in fitted] == ["RandomForestClassifier", "LGBMClassifier"]
    assert [e.n_jobs for e in fitted] == [1, 1]
    assert body(module.run(data=[SAMPLE]))[0] == 200


class _Slotted:
    __slots__ = ("inner",)

    def __init__(self, inner):
        self.inner = inner


class _ReadOnly:
    n_jobs = property(lambda self: 4)


class _AutoMLLikeWrapper:
    """The shapes Azure AutoML's pipeline classes take: wrappers, params dicts, cycles."""

    def __init__(self, inner):
        self.model = inner
        self.params = {"num_threads": 4, "objective": "binary"}
        self.steps = [("slotted", _Slotted(_ReadOnly())), ("self", self)]
        self._n_jobs_hint = "n/a"
        self.nthread = -1


def test_the_thread_walk_reaches_wrapped_estimators_and_never_crashes(score):
    from sklearn.ensemble import RandomForestClassifier

    forest = RandomForestClassifier(n_estimators=2, n_jobs=-1)
    wrapper = _AutoMLLikeWrapper({"estimator": [forest]})
    changed = score.single_threaded(wrapper)
    assert forest.n_jobs == 1 and wrapper.params["num_threads"] == 1 and wrapper.nthread == 1
    assert wrapper.params["objective"] == "binary"
    assert sorted(changed) == [
        "_AutoMLLikeWrapper.model['estimator'][0].n_jobs",
        "_AutoMLLikeWrapper.nthread",
        "_AutoMLLikeWrapper.params['num_threads']",
    ]
    assert score.single_threaded(object()) == [] and score.single_threaded(None) == []


def test_the_thread_walk_leaves_modules_and_functions_alone(score):
    import types

    module = types.ModuleType("settings_of_someone_else")
    module.n_jobs = 8

    class Holder:
        def __init__(self):
            self.config = module
            self.hook = lambda: None
            self.hook.n_jobs = 8

    assert score.single_threaded(Holder()) == []
    assert module.n_jobs == 8


# --- the body guard must degrade safely on another inference-server build ------------------------


class _BadInput(Exception):
    pass


class _Request:
    is_json = True

    def __init__(self, data: bytes):
        self.data = data

    def get_data(self):
        return self.data


def _fake_server(with_extractor=True):
    import types

    calls = []

    class ObjectInput:
        def _parse_post_input(self, request):
            calls.append("server parsed")
            return {"data": json.loads(request.get_data())["data"]}

    if with_extractor:
        ObjectInput._extract_parameters = lambda self, body: {"data": body.get("data")}
    return types.SimpleNamespace(ObjectInput=ObjectInput, BadInput=_BadInput), calls


@pytest.mark.parametrize("with_extractor", [True, False])
def test_the_body_guard_turns_unreadable_bodies_into_the_servers_bad_input(score, with_extractor):
    server, calls = _fake_server(with_extractor)
    assert score.install_body_guard(server) == "installed"
    assert score.install_body_guard(server) == "already installed"
    parser = server.ObjectInput()
    for raw, fragment in (
        (b"[" * 100_000, "too deeply"),
        (b'{"data": ' + b"1" * 5000 + b"}", "too long"),
        (b'{"data": 1, "data": 2}', "appears more than once"),
        (b"\xff{}", "not UTF-8"),
        (b"[1]", "not an object"),
        (b"", "empty"),
    ):
        with pytest.raises(_BadInput, match=fragment):
            parser._parse_post_input(_Request(raw))
    assert parser._parse_post_input(_Request(b'\xef\xbb\xbf{"data": [1]}')) == {"data": [1]}
    assert calls == ([] if with_extractor else ["server parsed"])


@pytest.mark.parametrize(
    "server",
    [
        None,  # no module at all
        "no ObjectInput",
        "no BadInput",
        "no _parse_post_input",
    ],
)
def test_the_body_guard_is_skipped_with_a_warning_when_the_servers_internals_differ(score, server, caplog):
    import types

    fake = {
        None: types.SimpleNamespace(),
        "no ObjectInput": types.SimpleNamespace(BadInput=_BadInput),
        "no BadInput": types.SimpleNamespace(ObjectInput=type("ObjectInput", (), {"_parse_post_input": len})),
        "no _parse_post_input": types.SimpleNamespace(ObjectInput=type("ObjectInput", (), {}), BadInput=_BadInput),
    }[server]
    status = score.install_body_guard(fake)
    assert status.startswith("not installed: this inference server build differs")
    assert "request body guard not installed" in caplog.text


@pytest.mark.parametrize("missing", ["ObjectInput", "BadInput"])
def test_score_py_imports_and_scores_on_a_server_build_without_those_internals(monkeypatch, model_root, missing):
    # Another server version without the attribute: importing score.py must not fail, and scoring works.
    from azureml_inference_server_http.server import input_parsers

    monkeypatch.delattr(input_parsers, missing)
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(model_root))
    module = load_score_module()
    module.init()
    assert only_result(body(module.run(data=[SAMPLE]))) == (200, {"result": [False]})


# --- the column-by-column fast path must agree with the record-by-record one ----------------------

_values = st.one_of(
    st.sampled_from(
        [
            "60",
            "1.40",
            " 38 ",
            "1e2",
            "+1",
            "1.0",
            "0.0",
            "2.0",
            "true",
            "FALSE",
            "yes",
            "nan",
            "0x1",
            "3_8",
            "",
            "260",
            "260000",
            "137",
            "0",
            "1",
            "-0",
            "inf",
            True,
            False,
            None,
            [],
            {},
        ]
    ),
    st.integers(-5, 300_000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
)


@given(
    records=st.lists(st.fixed_dictionaries({name: _values for name in FEATURES}), min_size=1, max_size=4),
    sample_first=st.booleans(),
)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_fast_and_record_by_record_validation_agree(score, records, sample_first):
    import schema  # importable once score.py is (it puts scoring/ on the path)

    request = score._request
    if sample_first:  # fill the memo first, as earlier requests do
        request.parse_records([SAMPLE] * 2, "data")

    def outcome(parse):
        try:
            return parse()
        except schema.RequestError as error:
            return error.errors

    fast = outcome(lambda: request.parse_records(records, "data"))
    real_fast = request._rows_fast
    request._rows_fast = lambda _records: None
    try:
        slow = outcome(lambda: request.parse_records(records, "data"))
    finally:
        request._rows_fast = real_fast
    assert fast == slow


@pytest.mark.parametrize(
    ("change", "kind"),
    [
        ({"age": 131}, "out_of_range"),
        ({"age": "NaN"}, "not_finite"),
        ({"ejection_fraction": 38.5}, "not_whole"),
        ({"smoking": "often"}, "wrong_type"),
        ({"platelets": [1]}, "wrong_type"),
        ({"agee": 60}, "unknown_field"),
        ({"age": None}, "wrong_type"),
    ],
)
def test_each_refused_item_carries_its_kind_for_programs(score, change, kind):
    # A client (and this project's own collector and training-data check) branches on `kind`, never on the English.
    import schema

    status, result = body(score.run(data=[{**SAMPLE, **change}]))
    assert status == 400
    assert [item["kind"] for item in result["errors"]] == [kind]
    assert kind in schema.PROBLEM_KINDS


def test_a_missing_field_and_a_malformed_request_have_their_kinds(score):
    import schema

    record = {name: value for name, value in SAMPLE.items() if name != "age"}
    status, result = body(score.run(data=[record]))
    assert status == 400 and [(e["field"], e["kind"]) for e in result["errors"]] == [("age", "missing")]
    status, result = body(score.run(data=[]))
    assert status == 400 and [e["kind"] for e in result["errors"]] == ["invalid"]
    assert set(schema.PROBLEM_KINDS) >= {"missing", "invalid"}
