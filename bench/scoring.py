"""Scoring latency: score.py on the real inference server, against its limits, in one run.

Run it in the scoring environment:  .venv-scoring/bin/python bench/scoring.py
It prints, for 1-record and 1000-record requests:
- in-process run() (the floor: validation plus model),
- the server with a trivial entry script (its fixed cost per request),
- the server with score.py (what a client sees),
and checks the targets: single-record p50 within 1 ms of trivial p50 + in-process p50, and a
1000-record request under 50 ms p50. Nothing here is asserted by the tests.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from jobs import inference_server  # noqa: E402
from tests.scoring.conftest import SAMPLE_REQUEST, load_score_module, train_model  # noqa: E402

TRIVIAL = '''
def init():
    pass


def run(data):
    return {"result": [False]}
'''


def percentiles(samples_s: list[float]) -> tuple[float, float]:
    ordered = sorted(samples_s)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p99 * 1000


def time_calls(call: Callable[[], object], count: int) -> tuple[float, float, float]:
    for _ in range(min(20, count)):
        call()  # warm up
    samples = []
    started = time.perf_counter()
    for _ in range(count):
        t0 = time.perf_counter()
        call()
        samples.append(time.perf_counter() - t0)
    p50, p99 = percentiles(samples)
    return p50, p99, count / (time.perf_counter() - started)


def over_http(url: str, payload: dict, count: int) -> tuple[float, float, float]:
    session = requests.Session()

    def call() -> None:
        response = session.post(url + "/score", json=payload, timeout=30)
        if response.status_code != 200:
            raise SystemExit(f"bench request failed: {response.status_code} {response.text[:200]}")

    return time_calls(call, count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=500, help="requests per single-record measurement")
    parser.add_argument("--large-requests", type=int, default=60, help="requests per 1000-record measurement")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-scoring-"))
    model_root = work / "models"
    train_model(model_root / "heart-failure" / "1" / "mlflow-model")
    single = SAMPLE_REQUEST
    large = {"data": SAMPLE_REQUEST["data"] * 1000}

    os.environ["AZUREML_MODEL_DIR"] = str(model_root)
    score = load_score_module()
    score.init()
    rows = {}
    rows["in-process run(), 1 record"] = time_calls(lambda: score.run(data=single["data"]), args.requests)
    rows["in-process run(), 1000 records"] = time_calls(lambda: score.run(data=large["data"]), args.large_requests)

    trivial_script = work / "trivial" / "score.py"
    trivial_script.parent.mkdir()
    trivial_script.write_text(TRIVIAL)
    python = Path(sys.executable)
    for label, script in (("trivial script", trivial_script), ("score.py", inference_server.ENTRY_SCRIPT)):
        server = inference_server.start(python, model_root, inference_server.free_port(),
                                        work / f"{label.replace(' ', '-')}.log", entry_script=script)
        try:
            rows[f"server, {label}, 1 record"] = over_http(server.url, single, args.requests)
            rows[f"server, {label}, 1000 records"] = over_http(server.url, large, args.large_requests)
        finally:
            inference_server.stop(server.pid)

    print(f"{'measurement':<42} {'p50 ms':>9} {'p99 ms':>9} {'req/s':>9}")
    for label, (p50, p99, rps) in rows.items():
        print(f"{label:<42} {p50:>9.2f} {p99:>9.2f} {rps:>9.1f}")

    floor = rows["server, trivial script, 1 record"][0] + rows["in-process run(), 1 record"][0]
    single_p50 = rows["server, score.py, 1 record"][0]
    large_p50 = rows["server, score.py, 1000 records"][0]
    print()
    print(f"single record: p50 {single_p50:.2f} ms vs trivial p50 + in-process p50 = {floor:.2f} ms "
          f"(overhead {single_p50 - floor:+.2f} ms, ratio {single_p50 / floor:.2f}; target: within 1 ms) "
          + ("MET" if single_p50 - floor <= 1.0 else "MISSED"))
    print(f"1000 records: p50 {large_p50:.2f} ms (target: under 50 ms) " + ("MET" if large_p50 < 50 else "MISSED"))


if __name__ == "__main__":
    main()
