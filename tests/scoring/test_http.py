"""score.py under the real Azure ML inference server (azmlinfsrv) on 127.0.0.1."""

from __future__ import annotations

import gzip
import json
import sys
import zlib
from pathlib import Path

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobs.local import inference_server
from scoring.encoding import MAX_DECODED_BYTES, EncodingError, decoded_body
from testing.scoring import SAMPLE_REQUEST, only_result

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
    return requests.post(server.score_url, json=payload, timeout=30, **kwargs)


def test_liveness(server):
    response = requests.get(server.url + "/", timeout=5)
    assert response.status_code == 200


def test_the_lessons_request_over_http(server):
    response = post(server, SAMPLE_REQUEST)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert only_result(response.json()) == {"result": [False]}


def test_the_mlflow_and_automl_forms_over_http(server):
    split = {"input_data": {"columns": FEATURES, "index": [0], "data": [[SAMPLE[c] for c in FEATURES]]}}
    assert only_result(post(server, split).json()) == {"result": [False]}
    automl = post(server, {"Inputs": {"data": [SAMPLE]}, "GlobalParameters": {"method": "predict_proba"}}).json()
    assert automl["result"] == [False] and 0 <= automl["probability"][0] < 0.5


def test_a_bad_record_is_a_400_with_the_field(server):
    response = post(server, {"data": [{**SAMPLE, "age": "old"}]})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "age"


def test_a_body_that_is_not_json_is_a_400(server):
    response = requests.post(
        server.score_url, data=b"{not json", timeout=10, headers={"Content-Type": "application/json"}
    )
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
    st.fixed_dictionaries(
        {
            "input_data": st.fixed_dictionaries(
                {
                    "columns": st.lists(st.sampled_from([*FEATURES, "x"]), max_size=13) | json_values,
                    "data": st.lists(st.lists(json_values, max_size=13), max_size=3) | json_values,
                }
            )
        }
    ),
    st.fixed_dictionaries(
        {
            "Inputs": json_values | st.fixed_dictionaries({"data": st.lists(records, max_size=3)}),
            "GlobalParameters": json_values,
        }
    ),
    st.dictionaries(st.text(max_size=12), json_values, max_size=4),
)


@given(payload=bodies)
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
def test_malformed_json_never_gives_a_5xx_and_the_server_survives(server, payload):
    body = json.dumps(payload, allow_nan=True)
    response = requests.post(server.score_url, data=body, timeout=30, headers={"Content-Type": "application/json"})
    assert response.status_code < 500, (payload, response.text)
    assert requests.get(server.url + "/", timeout=5).status_code == 200


@given(raw=st.binary(max_size=200))
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_arbitrary_bytes_never_give_a_5xx(server, raw):
    response = requests.post(server.score_url, data=raw, timeout=30, headers={"Content-Type": "application/json"})
    assert response.status_code < 500, (raw, response.text)


# --- issue 11 item 4: no body gives a 5xx, whatever its shape or size ------------------------------


def post_raw(server, raw: bytes):
    return requests.post(server.score_url, data=raw, timeout=60, headers={"Content-Type": "application/json"})


SAMPLE_BODY = json.dumps(SAMPLE_REQUEST).encode()


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"[" * 50_000, "too deeply"),
        (b'{"data": ' + b"[" * 5000 + b"]" * 5000 + b"}", "too deeply"),
        (b'{"data": [{"age": ' + b"9" * 5000 + b"}]}", "number too long"),
        (b'{"data": [], "data": [1]}', "appears more than once"),
        (SAMPLE_BODY.replace(b'"age": "60"', b'"age": "60", "age": "90"'), "'age' appears more than once"),
        (b"\xff\xfe{\x00}\x00", "not UTF-8"),
        (b"", "empty"),
        (b"[1, 2]", "not an object"),
    ],
)
def test_bodies_the_parser_cannot_take_are_a_400_that_says_why(server, raw, fragment):
    response = post_raw(server, raw)
    assert response.status_code == 400, response.text
    assert fragment in response.json()["message"]
    assert requests.get(server.url + "/", timeout=5).status_code == 200


def test_a_body_with_a_byte_order_mark_is_scored(server):
    # PowerShell's Out-File and Excel write one; `jobs invoke --file` reads such files too.
    response = post_raw(server, b"\xef\xbb\xbf" + SAMPLE_BODY)
    assert response.status_code == 200 and only_result(response.json()) == {"result": [False]}


def _nested(depth: int, opener: str) -> bytes:
    closer = {"[": "]", '{"a": ': "}"}[opener]
    return ('{"data": ' + opener * depth + "1" + closer * depth + "}").encode()


def _mutated(draw_bytes: bytes, position: int, cut: int) -> bytes:
    position %= len(SAMPLE_BODY) + 1
    return SAMPLE_BODY[:position] + draw_bytes + SAMPLE_BODY[position + cut :]


raw_bodies = st.one_of(
    st.binary(max_size=300),
    st.builds(_nested, st.integers(1, 3000), st.sampled_from(["[", '{"a": '])),
    # Long numbers and strings, where a field value or a key goes.
    st.builds(
        lambda digits, sign: ('{"data": [{"age": ' + sign + "7" * digits + "}]}").encode(),
        st.integers(1, 20_000),
        st.sampled_from(["", "-", "0."]),
    ),
    st.builds(
        lambda size, char: json.dumps({"data": [{**SAMPLE, "age": char * size}]}).encode(),
        st.integers(1, 200_000),
        st.sampled_from(["7", "x", "é", "\u2028"]),
    ),
    st.builds(lambda size: json.dumps({"data": [{**SAMPLE, "k" * size: 1}]}).encode(), st.integers(1, 100_000)),
    # Many keys, in a record and at the top level.
    st.builds(
        lambda count: json.dumps({"data": [{**SAMPLE, **{f"x{i}": i for i in range(count)}}]}).encode(),
        st.integers(0, 20_000),
    ),
    st.builds(
        lambda count: json.dumps({**SAMPLE_REQUEST, **{f"k{i}": i for i in range(count)}}).encode(),
        st.integers(0, 20_000),
    ),
    # Duplicate keys anywhere, and bytes spliced into a valid request.
    st.builds(
        lambda key, times: ("{" + ", ".join([f'"{key}": 1'] * times) + ', "data": []}').encode(),
        st.sampled_from(["data", "GlobalParameters", "x"]),
        st.integers(2, 50),
    ),
    st.builds(_mutated, st.binary(max_size=8), st.integers(0, 10_000), st.integers(0, 8)),
)


@given(raw=raw_bodies)
@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
def test_no_raw_body_gives_a_5xx_and_the_server_stays_up(server, raw):
    response = post_raw(server, raw)
    assert response.status_code < 500, (raw[:200], response.text[:500])
    if response.status_code != 200:
        assert 400 <= response.status_code < 500 and response.json()["message"], response.text[:500]
    assert requests.get(server.url + "/", timeout=5).status_code == 200


def test_automls_consume_sample_with_global_parameters_1_0_is_scored(server):
    response = post(server, {"Inputs": {"data": [SAMPLE]}, "GlobalParameters": 1.0})
    assert response.status_code == 200 and only_result(response.json()) == {"result": [False]}


def test_the_lessons_record_with_float_string_flags_over_http(server):
    record = {**SAMPLE, "anaemia": "1.0", "smoking": "0.0"}
    as_numbers = {**SAMPLE, "anaemia": 1, "smoking": 0}
    proba = {"GlobalParameters": {"method": "predict_proba"}}
    first = post(server, {"data": [record], **proba})
    assert first.status_code == 200, first.text
    assert first.json() == post(server, {"data": [as_numbers], **proba}).json()
    refused = post(server, {"data": [{**SAMPLE, "anaemia": "2.0"}]})
    assert refused.status_code == 400 and refused.json()["errors"][0]["field"] == "anaemia"


# --- issue 19: a body sent with Content-Encoding (Azure SDK clients can gzip request payloads) ----


def post_coded(server, raw: bytes, coding: str | None):
    headers = {"Content-Type": "application/json", **({"Content-Encoding": coding} if coding else {})}
    return requests.post(server.score_url, data=raw, timeout=60, headers=headers)


@pytest.mark.parametrize(
    ("coding", "compress"),
    [
        ("gzip", gzip.compress),
        ("GZIP", gzip.compress),  # codings are case-insensitive (RFC 9110 8.4.1)
        ("x-gzip", gzip.compress),
        ("deflate", zlib.compress),  # the zlib format RFC 9110 names
        ("deflate", lambda raw: zlib.compress(raw)[2:-4]),  # a raw deflate stream, as some clients send
        ("gzip, gzip", lambda raw: gzip.compress(gzip.compress(raw))),
        ("identity", lambda raw: raw),
    ],
)
def test_a_compressed_body_is_decoded_and_scored(server, coding, compress):
    response = post_coded(server, compress(SAMPLE_BODY), coding)
    assert response.status_code == 200, response.text
    assert only_result(response.json()) == {"result": [False]}


def test_a_gzip_body_of_two_members_is_one_body(server):
    # RFC 1952 2.2: a gzip file is a series of members; `cat a.gz b.gz` is valid gzip.
    half = len(SAMPLE_BODY) // 2
    raw = gzip.compress(SAMPLE_BODY[:half]) + gzip.compress(SAMPLE_BODY[half:])
    response = post_coded(server, raw, "gzip")
    assert response.status_code == 200 and only_result(response.json()) == {"result": [False]}


def test_a_gzip_bomb_is_a_413_that_states_the_limit(server):
    # 64 MiB of spaces compress to about 64 KB: refused at the bound, not decoded to the end.
    bomb = gzip.compress(b"{" + b" " * (64 * 1024 * 1024) + b"}", compresslevel=9)
    assert len(bomb) < 200_000
    response = post_coded(server, bomb, "gzip")
    assert response.status_code == 413, response.text
    message = response.json()["message"]
    assert f"decompresses (gzip) to more than {MAX_DECODED_BYTES} bytes" in message and "split" in message
    assert requests.get(server.url + "/", timeout=5).status_code == 200


@pytest.mark.parametrize(
    ("raw", "coding", "status", "fragment"),
    [
        (b"\x0b\x00\x80" + SAMPLE_BODY, "br", 415, "Content-Encoding br is not supported"),
        (SAMPLE_BODY, "zstd, gzip", 415, "Content-Encoding zstd is not supported"),
        (SAMPLE_BODY, "gzip", 400, "is not valid gzip data, as its Content-Encoding header says"),
        (gzip.compress(SAMPLE_BODY)[:-12], "gzip", 400, "gzip data ends early"),
        (gzip.compress(SAMPLE_BODY) + b"junk", "gzip", 400, "4 byte(s) after the end of its gzip data"),
        (gzip.compress(SAMPLE_BODY), None, 400, "gzip-compressed data but the request has no Content-Encoding"),
        (b"", "gzip", 400, "ends early"),
    ],
)
def test_a_body_its_coding_cannot_explain_is_a_4xx_that_names_the_coding(server, raw, coding, status, fragment):
    response = post_coded(server, raw, coding)
    assert response.status_code == status, response.text
    message = response.json()["message"]
    assert fragment in message and "not UTF-8" not in message


def test_a_compressed_body_is_still_checked_like_any_other(server):
    repeated = SAMPLE_BODY.replace(b'"age": "60"', b'"age": "60", "age": "90"')
    response = post_coded(server, gzip.compress(repeated), "gzip")
    assert response.status_code == 400 and "'age' appears more than once" in response.json()["message"]
    bad = json.dumps({"data": [{**SAMPLE, "age": "old"}]}).encode()
    response = post_coded(server, gzip.compress(bad), "gzip")
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "age"


@pytest.mark.parametrize("limit", [len(SAMPLE_BODY), len(SAMPLE_BODY) + 1, 10 * len(SAMPLE_BODY)])
def test_the_bound_is_exact(limit):
    # The decoded body may be `limit` bytes, not one more.
    raw = gzip.compress(SAMPLE_BODY)
    assert decoded_body(raw, "gzip", limit) == SAMPLE_BODY
    with pytest.raises(EncodingError, match="to more than") as caught:
        decoded_body(raw, "gzip", len(SAMPLE_BODY) - 1)
    assert caught.value.status == 413
    with pytest.raises(EncodingError, match="at most 4 are undone"):
        decoded_body(raw, ", ".join(["identity"] * 5), limit)
