"""What data collection costs a request: score.py with collection off and on, in one run.

Run it in the scoring environment:  .venv-scoring/bin/python bench/collection.py
It prints p50/p99 latency and requests per second, for 1-record and 1000-record requests:
- in-process run(), collection off, then on (local mode: the request queues, a writer thread appends);
- the real inference server (azmlinfsrv) with score.py, collection off, then on;
and the size of what was collected. Nothing here is asserted by the tests.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scoring"))

import collect  # noqa: E402
from timing import at_least, time_calls  # noqa: E402

from jobs.local import inference_server  # noqa: E402
from testing.scoring import SAMPLE_REQUEST, load_score_module, train_model  # noqa: E402


def over_http(session: requests.Session, url: str, payload: dict, count: int) -> tuple[float, float, float]:
    def call() -> None:
        response = session.post(url, json=payload, timeout=30)
        if response.status_code != 200:
            raise SystemExit(f"bench request failed: {response.status_code} {response.text[:200]}")

    return time_calls(call, count)


def line(label: str, p50: float, p99: float, rps: float) -> str:
    return f"  {label:<34} p50 {p50:7.3f} ms   p99 {p99:7.3f} ms   {rps:8.1f} req/s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--count",
        type=at_least(10),
        default=300,
        help="single-record requests per measurement (at least 10; 1000-record requests: a tenth as many)",
    )
    args = parser.parse_args()
    big = {"data": SAMPLE_REQUEST["data"] * 1000}
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        model_root = root / "models"
        train_model(model_root / "heart-failure" / "1" / "mlflow-model")
        os.environ["AZUREML_MODEL_DIR"] = str(model_root)
        score = load_score_module()
        score.init()
        in_process(score, root, args.count, big)
        spaced(score, root, big)
        served(model_root, root, args.count, big)


def in_process(score: Any, root: Path, count: int, big: dict) -> None:
    """run() back to back, collection off then on, 1 and 1000 records; the size of what was collected."""
    print(f"in-process run(), {count} requests each")
    for name, payload, calls in (("1 record", SAMPLE_REQUEST, count), ("1000 records", big, count // 10)):
        score.collector = collect.Collector(None)
        print(line(f"{name}, collection off", *time_calls(lambda p=payload: score.run(**p), calls)))
        score.collector = collect.Collector("local", root / "in-process")
        print(line(f"{name}, collection on", *time_calls(lambda p=payload: score.run(**p), calls)))
    score.collector.flush()
    size = sum(p.stat().st_size for p in (root / "in-process").glob("scored*.jsonl"))
    print(
        f"  collected {size / 1e6:.1f} MB in-process ({size / max(1, score.collector.collected):.0f} bytes "
        f"per record, {score.collector.failures} failures)"
    )


def spaced(score: Any, root: Path, big: dict) -> None:
    """Real traffic is rarely back to back: with a pause between requests the writer thread does its work in
    the gaps, and what a request costs is what a client waits for."""
    print("in-process run(), 1000 records, 40 requests 20 ms apart, off and on in 3 rounds")
    samples: dict[str, list[float]] = {"off": [], "on": []}
    for _ in range(3):
        for name in samples:
            collector = collect.Collector(None) if name == "off" else collect.Collector("local", root / "spaced")
            score.collector = collector
            for _ in range(40):
                started = time.perf_counter()
                score.run(**big)
                samples[name].append((time.perf_counter() - started) * 1000)
                time.sleep(0.02)
            collector.flush()
    for name, taken in samples.items():
        print(f"  1000 records, spaced, collection {name:<4} p50 {statistics.median(taken):7.3f} ms")


def served(model_root: Path, root: Path, count: int, big: dict) -> None:
    """The real inference server, collection off and on, interleaved in rounds; the records collected."""
    print(
        f"over HTTP (azmlinfsrv, 1 worker each), {count} requests each, off and on interleaved in "
        "5 rounds (the machine is shared: a run of one after the other measures the neighbours)"
    )
    python = Path(sys.executable)
    servers = {}
    try:
        for name, extra in (
            ("off", {}),
            ("on", {"HEART_FAILURE_COLLECT": "local", "HEART_FAILURE_COLLECT_DIR": str(root / "http")}),
        ):
            servers[name] = inference_server.start(
                python, model_root, inference_server.free_port(), root / f"{name}.log", workers=1, extra_env=extra
            )
        session = requests.Session()
        for label, payload, calls in (
            ("1 record", SAMPLE_REQUEST, count // 5),
            ("1000 records", big, max(2, count // 50)),
        ):
            rounds: dict[str, list[tuple[float, float, float]]] = {"off": [], "on": []}
            for _ in range(5):
                for name, server in servers.items():
                    rounds[name].append(over_http(session, server.score_url, payload, calls))
            for name, results in rounds.items():
                p50, p99, rps = (statistics.median(r[i] for r in results) for i in range(3))
                print(line(f"{label}, collection {name}", p50, p99, rps))
        session.close()
    finally:
        for server in servers.values():
            inference_server.stop(server.pid)
    lines = sum(len(p.read_text().splitlines()) for p in (root / "http").glob("scored*.jsonl"))
    print(f"  collected {lines} records over HTTP")


if __name__ == "__main__":
    main()
