"""Opt-in data collection (scoring/collect.py) through score.py's run(): what is stored, and what is not."""

from __future__ import annotations

import json
import logging
import multiprocessing
import sys
import threading
from pathlib import Path

import pytest

from testing.scoring import ROOT, SAMPLE_REQUEST, only_result

sys.path.insert(0, str(ROOT / "scoring"))
import collect

from testing.scoring import SCHEMA_FILE

FEATURE_NAMES = tuple(f["name"] for f in json.loads(SCHEMA_FILE.read_text())["features"])


def lines(folder: Path) -> list[dict]:
    found = []
    for path in sorted(folder.glob("scored*.jsonl")):
        found += [json.loads(line) for line in path.read_text().splitlines()]
    return found


@pytest.fixture
def collecting(score, tmp_path, monkeypatch):
    collector = collect.Collector("local", tmp_path / "collected", model="heart-failure-automl:1")
    monkeypatch.setattr(score, "collector", collector)
    return collector


def test_off_by_default():
    assert not collect.Collector.from_environment({}).enabled
    # A setting that cannot work turns collection off rather than breaking the endpoint.
    assert not collect.Collector.from_environment({"HEART_FAILURE_COLLECT": "local"}).enabled
    assert not collect.Collector.from_environment({"HEART_FAILURE_COLLECT": "s3"}).enabled
    on = collect.Collector.from_environment({"HEART_FAILURE_COLLECT": "local", "HEART_FAILURE_COLLECT_DIR": "/x"})
    assert on.enabled and on.folder == Path("/x")


def test_a_scored_record_keeps_the_12_features_the_answer_a_time_and_an_id_and_nothing_else(score, collecting):
    plain = score.run(**SAMPLE_REQUEST, GlobalParameters={"method": "predict_proba"})
    assert collecting.flush()
    records = lines(collecting.folder)
    assert len(records) == 1
    record = records[0]
    assert set(record) == {
        "kind",
        "time",
        "correlation_id",
        "record",
        "model",
        "features",
        "prediction",
        "probability",
        "threshold",
        "outside_training_range",
    }
    assert list(record["features"]) == list(FEATURE_NAMES)
    assert record["features"]["age"] == float(SAMPLE_REQUEST["data"][0]["age"])
    assert record["prediction"] == plain["result"][0]
    assert record["probability"] == plain["probability"][0]
    assert record["time"].endswith("Z") and len(record["correlation_id"]) == 32


def test_collection_does_not_change_the_answer(score, collecting, monkeypatch):
    records = [dict(SAMPLE_REQUEST["data"][0], age=str(age)) for age in (40, 60, 80, 95)]
    with_collection = score.run(data=records, GlobalParameters={"method": "predict_proba"})
    monkeypatch.setattr(score, "collector", collect.Collector(None))
    without = score.run(data=records, GlobalParameters={"method": "predict_proba"})
    assert with_collection == without
    assert collecting.flush()
    assert [r["record"] for r in lines(collecting.folder)] == [0, 1, 2, 3]
    assert len({r["correlation_id"] for r in lines(collecting.folder)}) == 1


def test_a_refusal_is_counted_by_field_and_reason_without_any_value(score, collecting):
    bad = dict(SAMPLE_REQUEST["data"][0], age="131", smoking="often", patient_name="Jane Roe")
    answer = score.run(data=[bad, SAMPLE_REQUEST["data"][0]])
    assert answer.status_code == 400
    assert collecting.flush()
    text = (collecting.folder / "scored.jsonl").read_text()
    assert "131" not in text and "often" not in text and "Jane" not in text and "patient_name" not in text
    refusal = json.loads(text)
    assert refusal["kind"] == "refused" and refusal["records"] == 1
    assert {(r["field"], r["reason"]) for r in refusal["reasons"]} == {
        ("age", "out_of_range"),
        ("smoking", "wrong_type"),
        ("(unknown field)", "unknown_field"),
    }


def test_a_failure_to_collect_is_logged_and_counted_never_a_failed_request(score, tmp_path, monkeypatch, caplog):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the folder should be")
    broken = collect.Collector("local", blocker)
    monkeypatch.setattr(score, "collector", broken)
    with caplog.at_level(logging.ERROR, logger="heart_failure_scoring.collect"):
        answer = score.run(**SAMPLE_REQUEST)
    assert only_result(answer) == {"result": [False]}
    broken.flush()
    assert broken.failures == 1
    assert "data collection failed" in caplog.text
    assert SAMPLE_REQUEST["data"][0]["platelets"] not in caplog.text  # the error, never the rows


def test_the_azure_mode_without_its_package_is_a_counted_failure_not_an_error(score, monkeypatch):
    monkeypatch.setitem(sys.modules, "azureml.ai.monitoring", None)  # as if not installed
    azure = collect.Collector("azure")
    monkeypatch.setattr(score, "collector", azure)
    assert only_result(score.run(**SAMPLE_REQUEST)) == {"result": [False]}
    assert azure.failures == 1


SCHEMA_KINDS = {f["name"]: f["kind"] for f in json.loads(SCHEMA_FILE.read_text())["features"]}
WHOLE = tuple(name for name, kind in SCHEMA_KINDS.items() if kind in ("boolean", "integer"))


def test_flags_and_whole_number_fields_are_stored_as_ints_and_the_prediction_as_0_1(score, collecting):
    # The training data (the CSV, Azure's MLTable reference) holds them as int64: monitoring compares
    # category values, so 1 must be stored as 1, not 1.0, and DEATH_EVENT as 0/1, not true/false.
    score.run(**SAMPLE_REQUEST)
    assert collecting.flush()
    (record,) = lines(collecting.folder)
    features = record["features"]
    assert WHOLE and all(type(features[name]) is int for name in WHOLE), features
    assert all(type(features[name]) is float for name in SCHEMA_KINDS if name not in WHOLE), features
    assert features["age"] == float(SAMPLE_REQUEST["data"][0]["age"])
    assert type(record["prediction"]) is int and record["prediction"] in (0, 1)


def test_the_whole_number_columns_follow_the_schema_and_the_signature():
    kinds = {"flag": "boolean", "count": "integer", "level": "number", "dose": "number"}
    names = ("flag", "count", "level", "dose")
    # A signature that records int64 (AutoML's "long") for a number column: the training frame held whole numbers.
    assert collect.whole_number_columns(names, kinds, ["f", "f", "f", "i"]) == (True, True, False, True)
    assert collect.whole_number_columns(names, kinds) == (True, True, False, False)
    # A value that is not whole is never cut to an int.
    assert collect.typed_row([1.0, 2.5, 3.25, 4.0], (True, True, False, True)) == [1, 2.5, 3.25, 4]


def test_the_azure_mode_hands_the_collector_the_training_types(score, monkeypatch):
    import types

    import numpy as np

    frames: dict[str, list] = {"model_inputs": [], "model_outputs": []}

    class FakeCollector:  # azureml-ai-monitoring's Collector: collect(frame[, context]) -> context
        def __init__(self, name, on_error=None):
            self.name = name

        def collect(self, frame, context=None):
            frames[self.name].append(frame)
            return "context"

    monkeypatch.setitem(sys.modules, "azureml.ai.monitoring", types.SimpleNamespace(Collector=FakeCollector))
    azure = collect.Collector("azure")
    monkeypatch.setattr(score, "collector", azure)
    score.run(data=[SAMPLE_REQUEST["data"][0], SAMPLE_REQUEST["data"][0]])
    assert azure.failures == 0
    (inputs,), (outputs,) = frames["model_inputs"], frames["model_outputs"]
    assert {name: str(inputs[name].dtype) for name in WHOLE} == dict.fromkeys(WHOLE, "int64")
    assert {str(inputs[name].dtype) for name in SCHEMA_KINDS if name not in WHOLE} == {"float64"}
    assert outputs["DEATH_EVENT"].dtype == np.int64 and set(outputs["DEATH_EVENT"]) <= {0, 1}


def test_a_torn_last_line_is_cut_before_the_next_append(tmp_path):
    collector = collect.Collector("local", tmp_path)
    collector.scored([[1.0] * 12], FEATURE_NAMES, {"result": [True]})
    assert collector.flush()
    with (tmp_path / "scored.jsonl").open("a") as f:
        f.write('{"kind":"scored","time":"2026')  # a writer killed mid-line
    collector.scored([[0.0] * 12], FEATURE_NAMES, {"result": [False]})
    assert collector.flush()
    assert [r["prediction"] for r in lines(tmp_path)] == [True, False]


def _writer(folder: str, worker: int, requests: int) -> None:
    collector = collect.Collector("local", Path(folder), max_bytes=8192, keep=10_000)

    def burst(thread: int) -> None:
        for i in range(requests):
            collector.scored(
                [[float(worker), float(thread), float(i)] + [0.0] * 9] * 3,
                FEATURE_NAMES,
                {"result": [True, False, True]},
            )

    threads = [threading.Thread(target=burst, args=(t,)) for t in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert collector.flush()  # a multiprocessing child ends with os._exit: no exit hook runs
    assert collector.failures == 0


def test_concurrent_workers_and_threads_never_interleave_or_lose_a_record_across_rotations(tmp_path):
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_writer, args=(str(tmp_path), w, 40)) for w in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
        assert w.exitcode == 0
    assert len(list(tmp_path.glob("scored-*.jsonl"))) > 3  # it did rotate, many times
    for path in tmp_path.glob("scored*.jsonl"):
        assert path.stat().st_size <= 8192
    records = lines(tmp_path)  # every line parses: none torn, none interleaved
    assert len(records) == 3 * 3 * 40 * 3
    assert len(
        {
            (r["features"]["age"], r["features"]["anaemia"], r["features"]["creatinine_phosphokinase"], r["record"])
            for r in records
        }
    ) == len(records)


def test_rotation_keeps_only_the_newest_files(tmp_path):
    collector = collect.Collector("local", tmp_path, max_bytes=4096, keep=2)
    for _ in range(100):
        collector.scored([[0.0] * 12], FEATURE_NAMES, {"result": [False]})
        assert collector.flush()  # one request at a time, so that each can rotate
    assert len(list(tmp_path.glob("scored-*.jsonl"))) == 2


def test_a_missing_collector_package_is_said_once_then_collection_is_off(score, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "azureml.ai.monitoring", None)
    azure = collect.Collector("azure")
    monkeypatch.setattr(score, "collector", azure)
    with caplog.at_level(logging.ERROR, logger="heart_failure_scoring.collect"):
        for _ in range(3):
            assert only_result(score.run(**SAMPLE_REQUEST)) == {"result": [False]}
    assert azure.failures == 1 and caplog.text.count("data collection failed") == 1


def test_a_request_never_waits_for_the_disk(score, collecting, monkeypatch):
    # The writer is held inside its append; the request is answered all the same, and its records
    # are written once the writer goes on.
    release = threading.Event()
    real_append = collecting._append

    def slow_append(lines: list[str]) -> None:
        assert release.wait(30)
        real_append(lines)

    monkeypatch.setattr(collecting, "_append", slow_append)
    first = score.run(**SAMPLE_REQUEST)
    second = score.run(**SAMPLE_REQUEST)
    assert only_result(first) == only_result(second) == {"result": [False]}
    assert not (collecting.folder / "scored.jsonl").exists()  # nothing written yet: the requests did not wait
    release.set()
    assert collecting.flush()
    assert [r["record"] for r in lines(collecting.folder)] == [0, 0]


def test_records_queued_by_a_process_that_exits_normally_are_written(tmp_path):
    # What a server worker does on a graceful stop: the exit hook writes what is queued.
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import collect; FEATURE_NAMES = tuple('abcdefghijkl'); "
        "c = collect.Collector('local', __import__('pathlib').Path(sys.argv[2])); "
        "[c.scored([[float(i)] * 12], FEATURE_NAMES, {'result': [True]}) for i in range(200)]"
    )
    import subprocess

    subprocess.run([sys.executable, "-c", code, str(ROOT / "scoring"), str(tmp_path)], check=True, timeout=60)
    assert len(lines(tmp_path)) == 200


def test_a_failed_reopen_after_a_rotation_does_not_break_collection_for_good(tmp_path):
    collector = collect.Collector("local", tmp_path)
    collector.scored([[1.0] * 12], FEATURE_NAMES, {"result": [True]})
    assert collector.flush()
    # Another worker rotated the file away, and a folder stands where the new file would be opened.
    (tmp_path / "scored.jsonl").rename(tmp_path / "aside.jsonl")
    (tmp_path / "scored.jsonl").mkdir()
    collector.scored([[2.0] * 12], FEATURE_NAMES, {"result": [True]})
    assert collector.flush() and collector.failures == 1
    (tmp_path / "scored.jsonl").rmdir()
    for value in (3.0, 4.0, 5.0):
        collector.scored([[value] * 12], FEATURE_NAMES, {"result": [False]})
    assert collector.flush()
    assert collector.failures == 1  # the writer opened the file again instead of using a closed descriptor
    assert [r["features"]["age"] for r in lines(tmp_path)] == [3.0, 4.0, 5.0]
