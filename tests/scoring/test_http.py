"""score.py under the real Azure ML inference server (azmlinfsrv) on 127.0.0.1."""

import json
import sys
from pathlib import Path

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobs import inference_server
from tests.scoring.conftest import SAMPLE_REQUEST

SAMPLE = SAMPLE_REQUEST["data"][0]
FEATURES = list(SAMPLE)


@pytest.fixture(scope="module")
def server(model_root, tmp_path_factory):
    log = tmp_path_factory.mktemp("server") / "azmlinfsrv.log"
    running = inference_server.start(Path(sys.executable), model_root, inference_server.free_port(), log)
    yield running
    assert inference_server.stop(running.pid)
    assert not inference_server.is_running(running.pid)


def post(server, payload, **kwargs):
    return requests.post(server.url + "/score", json=payload, timeout=30, **kwargs)


def test_liveness(server):
    response = requests.get(server.url + "/", timeout=5)
    assert response.status_code == 200


def test_the_lessons_request_over_http(server):
    response = post(server, SAMPLE_REQUEST)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == {"result": [False]}


def test_the_mlflow_and_automl_forms_over_http(server):
    split = {"input_data": {"columns": FEATURES, "index": [0], "data": [[SAMPLE[c] for c in FEATURES]]}}
    assert post(server, split).json() == {"result": [False]}
    automl = post(server, {"Inputs": {"data": [SAMPLE]}, "GlobalParameters": {"method": "predict_proba"}}).json()
    assert automl["result"] == [False] and 0 <= automl["probability"][0] < 0.5


def test_a_bad_record_is_a_400_with_the_field(server):
    response = post(server, {"data": [{**SAMPLE, "age": "old"}]})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "age"


def test_a_body_that_is_not_json_is_a_400(server):
    response = requests.post(server.url + "/score", data=b"{not json", timeout=10,
                             headers={"Content-Type": "application/json"})
    assert response.status_code == 400


def test_swagger_documents_the_twelve_fields_with_the_lessons_example(server):
    spec = requests.get(server.url + "/swagger.json", params={"version": "3"}, timeout=10).json()
    text = json.dumps(spec)
    for name in FEATURES:
        assert f'"{name}"' in text
    assert '"serum_creatinine": "1.40"' in text


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
records = st.fixed_dictionaries({}, optional={name: json_values for name in FEATURES}) | json_values
bodies = st.one_of(
    st.fixed_dictionaries({"data": st.lists(records, max_size=3) | json_values}),
    st.fixed_dictionaries({"input_data": st.fixed_dictionaries(
        {"columns": st.lists(st.sampled_from([*FEATURES, "x"]), max_size=13) | json_values,
         "data": st.lists(st.lists(json_values, max_size=13), max_size=3) | json_values})}),
    st.fixed_dictionaries({"Inputs": json_values | st.fixed_dictionaries({"data": st.lists(records, max_size=3)}),
                           "GlobalParameters": json_values}),
    st.dictionaries(st.text(max_size=12), json_values, max_size=4),
)


@given(payload=bodies)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
def test_malformed_json_never_gives_a_5xx_and_the_server_survives(server, payload):
    body = json.dumps(payload, allow_nan=True)
    response = requests.post(server.url + "/score", data=body, timeout=30, headers={"Content-Type": "application/json"})
    assert response.status_code < 500, (payload, response.text)
    assert requests.get(server.url + "/", timeout=5).status_code == 200


@given(raw=st.binary(max_size=200))
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_arbitrary_bytes_never_give_a_5xx(server, raw):
    response = requests.post(server.url + "/score", data=raw, timeout=30, headers={"Content-Type": "application/json"})
    assert response.status_code < 500, (raw, response.text)
