"""Scoring speed of the model `make demo` deploys, against its floor and issue 12's targets, in one run.

Run it in the scoring environment:  .venv-scoring/bin/python bench/scoring.py
The model is, in this order: --model DIR; the latest version in dev's MLflow registry (what `make demo`
registered); or a fresh local AutoML run (jobs/local/automl.py's train, in the project venv, about
a minute). It prints:
- where the time of one request goes: the server's own cost (a trivial entry script), validation,
  frame building, the model (n_jobs as loaded and after score.py set it to 1), the answer;
- the floor (trivial server + bare predict with n_jobs=1 on one row) against what a client sees;
- run()'s overhead over the bare model, for 1 and 1000 records;
- requests per second for 1 to 4 server workers and 1 to 8 concurrent clients, and the worker
  count that the local endpoint and the Azure deployment use;
and MET/MISSED for each target. Nothing here is asserted by the tests.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import http.client
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from timing import at_least, counts, percentiles, time_calls  # noqa: E402

from jobs.local import inference_server  # noqa: E402
from testing.scoring import SAMPLE_REQUEST, load_score_module  # noqa: E402

TRIVIAL = """
def init():
    pass


def run(data):
    return {"result": [False]}
"""

# Issue 12's targets.
FLOOR_RATIO = 1.5  # one record over HTTP, p50, at most this times the floor
LARGE_P50_MS = 50.0  # 1000 records over HTTP, p50
RUN_OVERHEAD_MS = {1: 0.5, 1000: 5.0}  # run() over the bare model
# A worker count is "as good as the best" when its throughput is within this of the best one.
THROUGHPUT_TOLERANCE = 0.05


class Client:
    """One keep-alive HTTP connection, with less overhead of its own than requests."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def post(self, body: bytes) -> None:
        self.connection.request("POST", inference_server.SCORE_PATH, body, {"Content-Type": "application/json"})
        response = self.connection.getresponse()
        payload = response.read()
        if response.status != 200:
            raise SystemExit(f"bench request failed: {response.status} {payload[:200]!r}")


def over_http(port: int, payload: dict, count: int) -> tuple[float, float, float]:
    client, body = Client(port), json.dumps(payload).encode()
    return time_calls(lambda: client.post(body), count)


def throughput(port: int, payload: dict, clients: int, seconds: float) -> tuple[int, float, list[float]]:
    """(requests answered, seconds taken, each request's latency in s) with `clients` keep-alive clients."""
    body = json.dumps(payload).encode()
    samples: list[float] = []
    lock = threading.Lock()
    ready = threading.Barrier(clients + 1)
    deadline: list[float] = []

    def loop() -> None:
        client, mine = Client(port), []
        client.post(body)
        ready.wait()
        while time.perf_counter() < deadline[0]:
            t0 = time.perf_counter()
            client.post(body)
            mine.append(time.perf_counter() - t0)
        with lock:
            samples.extend(mine)

    threads = [threading.Thread(target=loop) for _ in range(clients)]
    for thread in threads:
        thread.start()
    started = time.perf_counter()
    deadline.append(started + seconds)
    ready.wait()
    for thread in threads:
        thread.join()
    return len(samples), time.perf_counter() - started, samples


def server_cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of a server's master and workers so far."""
    import psutil

    master = psutil.Process(pid)
    total = 0.0
    for process in (master, *master.children(recursive=True)):
        with contextlib.suppress(psutil.NoSuchProcess):
            times = process.cpu_times()
            total += times.user + times.system
    return total


def find_model(explicit: Path | None, work: Path) -> tuple[Path, str]:
    """A folder holding one MLflow model, and where it came from."""
    if explicit is not None:
        return explicit, f"--model {explicit}"
    # dev's MLflow registry (jobs/local/registry.py) is read in the project venv: this one has no SQLAlchemy.
    latest = (
        "from jobs.local.places import registry_root; from jobs.local.registry import LocalRegistry; "
        "from jobs.paths import ROOT; found = LocalRegistry(registry_root(ROOT / '.local', 'dev'), say=lambda _: None)"
        ".versions('heart-failure-automl'); print(f'{found[-1].version} {found[-1].model_dir}' if found else '')"
    )
    shown = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), "-c", latest], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if shown.returncode == 0 and shown.stdout.strip():
        version, model_dir = shown.stdout.strip().splitlines()[-1].split(" ", 1)
        return Path(model_dir), f"registered version {version} ({model_dir})"
    print("no model registered in dev: training one as `make demo` does (about a minute)...", flush=True)
    code = (
        "import sys; from pathlib import Path; from jobs.local.automl import train; "
        "from jobs.training import TrainingSettings; "
        "r = train(TrainingSettings(), Path('data/heart_failure_clinical_records_dataset.csv'), Path(sys.argv[1]), "
        "progress=lambda line: None); print(r.model_dir); print(r.best_learner)"
    )
    result = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), "-c", code, str(work / "runs")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit("training the bench model failed:\n" + result.stderr[-2000:])
    model_dir, learner = result.stdout.strip().splitlines()[-2:]
    return Path(model_dir), f"trained now: {learner}"


def verdict(met: bool) -> str:
    return "MET" if met else "MISSED"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="an MLflow model folder (default: registered, else trained)")
    parser.add_argument(
        "--requests", type=at_least(1), default=400, help="requests per single-record measurement (default 400)"
    )
    parser.add_argument(
        "--large-requests", type=at_least(1), default=40, help="requests per 1000-record measurement (default 40)"
    )
    parser.add_argument("--workers", type=counts, default="1,2,3,4", help="server worker counts to compare")
    parser.add_argument("--clients", type=counts, default="1,2,4,8", help="concurrent client counts to compare")
    parser.add_argument(
        "--seconds", type=at_least(0.1, float), default=1.5, help="length of each throughput measurement (default 1.5)"
    )
    parser.add_argument(
        "--rounds", type=at_least(1), default=3, help="rounds of throughput measurements, taken in turns (default 3)"
    )
    args = parser.parse_args()
    if args.model is not None and not (args.model / "MLmodel").is_file():
        parser.error(f"--model {args.model} is not an MLflow model folder (no MLmodel file in it)")

    with tempfile.TemporaryDirectory(prefix="bench-scoring-") as folder:
        measure(args, Path(folder))


def measure(args: argparse.Namespace, work: Path) -> None:
    """Every measurement, with `work` as the scratch folder (a trained model, server logs)."""
    model_dir, origin = find_model(args.model, work)
    os.environ["AZUREML_MODEL_DIR"] = str(model_dir)
    score = load_score_module()
    score.init()
    print(f"model: {origin}")
    print(f"       {type(score._model).__name__}: {score._model!r}"[:400].replace("\n", " "))

    single = SAMPLE_REQUEST
    large = {"data": SAMPLE_REQUEST["data"] * 1000}
    request_1 = score.parse_request(data=copy.deepcopy(single["data"]))
    request_1000 = score.parse_request(data=copy.deepcopy(large["data"]))
    frame_1, frame_1000 = score.frame(request_1.rows), score.frame(request_1000.rows)

    import mlflow.sklearn

    as_loaded = mlflow.sklearn.load_model(str(model_dir))  # n_jobs as trained, for comparison
    n, m = args.requests, args.large_requests
    rows: dict[str, tuple[float, float, float]] = {}
    rows["model as loaded, predict, 1 row"] = time_calls(lambda: as_loaded.predict(frame_1), n)
    rows["model as loaded, predict_proba, 1 row"] = time_calls(lambda: as_loaded.predict_proba(frame_1), n)
    rows["model n_jobs=1, predict_proba, 1 row"] = time_calls(lambda: score._model.predict_proba(frame_1), n)
    rows["model n_jobs=1, predict, 1000 rows"] = time_calls(lambda: score._model.predict(frame_1000), m)
    rows["validation, 1 record"] = time_calls(lambda: score.parse_request(data=single["data"]), n)
    rows["validation, 1000 records"] = time_calls(lambda: score.parse_request(data=large["data"]), m)
    # The same 1000 records repeat their strings; real ones vary. The CSV's patients, as the
    # lesson's strings, the first time (no memo) and again.
    import csv

    import schema

    with (ROOT / "data" / "heart_failure_clinical_records_dataset.csv").open() as handle:
        patients = [{name: row[name] for name in schema.FEATURE_NAMES} for row in csv.DictReader(handle)]
    varied = [patients[i % len(patients)] for i in range(1000)]
    for _name, _convert, memo in schema._CONVERTERS:
        memo.clear()
    schema._STRING_NUMBERS.clear()
    rows["validation, 1000 CSV records, first time"] = time_calls(
        lambda: score.parse_request(data=varied), 1, warm_up=False
    )
    rows["validation, 1000 CSV records, again"] = time_calls(lambda: score.parse_request(data=varied), m)
    rows["frame building, 1 record"] = time_calls(lambda: score.frame(request_1.rows), n)
    rows["frame building, 1000 records"] = time_calls(lambda: score.frame(request_1000.rows), m)
    rows["run() in process, 1 record"] = time_calls(lambda: score.run(data=single["data"]), n)
    rows["run() in process, 1000 records"] = time_calls(lambda: score.run(data=large["data"]), m)
    # run()'s own cost, measured directly: the same run() with a model that answers at once
    # (a difference of two noisy medians on a shared machine can even come out negative).
    model = score._model
    answers = {len(frame_1): model.predict(frame_1), len(frame_1000): model.predict(frame_1000)}

    class Instant:
        classes_ = model.classes_

        def predict(self, features: Any) -> Any:
            return answers[len(features)]

    score._model = Instant()
    rows["run() with an instant model, 1 record"] = time_calls(lambda: score.run(data=single["data"]), n)
    rows["run() with an instant model, 1000 records"] = time_calls(lambda: score.run(data=large["data"]), m)
    score._model = model

    trivial_script = work / "trivial" / "score.py"
    trivial_script.parent.mkdir()
    trivial_script.write_text(TRIVIAL)
    python = Path(sys.executable)
    model_root = model_dir.parent
    # Both servers up at once, and the floor's parts and the real request measured in turns,
    # so that other load on the machine falls on all of them alike.
    trivial = inference_server.start(
        python, model_root, inference_server.free_port(), work / "trivial.log", workers=1, entry_script=trivial_script
    )
    real = inference_server.start(python, model_root, inference_server.free_port(), work / "score.log", workers=1)
    try:
        for size, payload, count in ((1, single, n), (1000, large, m)):
            body = json.dumps(payload).encode()
            features = frame_1 if size == 1 else frame_1000
            clients = Client(trivial.port), Client(real.port)
            calls = {
                f"server 1 worker, trivial script, {size} record(s)": lambda c=clients[0], b=body: c.post(b),
                f"server 1 worker, score.py, {size} record(s)": lambda c=clients[1], b=body: c.post(b),
                f"model n_jobs=1, predict, {size} row(s)": lambda f=features: model.predict(f),
            }
            samples: dict[str, list[float]] = {label: [] for label in calls}
            for _ in range(10):
                for call in calls.values():
                    call()
            started = time.perf_counter()
            for _ in range(count):
                for label, call in calls.items():
                    t0 = time.perf_counter()
                    call()
                    samples[label].append(time.perf_counter() - t0)
            elapsed = time.perf_counter() - started
            for label, values in samples.items():
                rows[label + ", in turns"] = (*percentiles(values), count / elapsed)
        cpu_before, wall_before = server_cpu_seconds(real.pid), time.perf_counter()
        client = Client(real.port)
        body = json.dumps(single).encode()
        for _ in range(n):
            client.post(body)
        cpu_per_request = (server_cpu_seconds(real.pid) - cpu_before) / n
        wall_per_request = (time.perf_counter() - wall_before) / n
    finally:
        inference_server.stop(trivial.pid)
        inference_server.stop(real.pid)

    print(f"\n{'measurement':<52} {'p50 ms':>9} {'p99 ms':>9} {'per s':>9}")
    for label, (p50, p99, rate) in rows.items():
        print(f"{label:<52} {p50:>9.3f} {p99:>9.3f} {rate:>9.1f}")

    p50 = {label: values[0] for label, values in rows.items()}
    server_cost = p50["server 1 worker, trivial script, 1 record(s), in turns"]
    model_cost = p50["model n_jobs=1, predict, 1 row(s), in turns"]
    floor = server_cost + model_cost
    http_1 = p50["server 1 worker, score.py, 1 record(s), in turns"]
    http_1000 = p50["server 1 worker, score.py, 1000 record(s), in turns"]
    overhead_1 = p50["run() with an instant model, 1 record"]
    overhead_1000 = p50["run() with an instant model, 1000 records"]
    validation, building = p50["validation, 1 record"], p50["frame building, 1 record"]
    as_loaded_ms = p50["model as loaded, predict, 1 row"]
    print("\nwhere one record's time goes (p50):")
    print(f"  server (trivial entry script, HTTP included)   {server_cost:8.3f} ms")
    print(f"  validation                                     {validation:8.3f} ms")
    print(f"  frame building                                 {building:8.3f} ms")
    print(f"  answer and the rest of run()                   {max(0.0, overhead_1 - validation - building):8.3f} ms")
    print(f"  {f'model, n_jobs=1 (as loaded: {as_loaded_ms:.3f} ms)':<47}{model_cost:8.3f} ms")
    print(f"  left over (score.py over HTTP minus the above) {http_1 - server_cost - model_cost - overhead_1:8.3f} ms")

    print("\ntargets (issue 12):")
    print(
        f"  one record over HTTP: p50 {http_1:.2f} ms, floor {floor:.2f} ms (trivial server {server_cost:.2f} + "
        f"bare predict n_jobs=1 {model_cost:.2f}): {http_1 / floor:.2f}x, target at most {FLOOR_RATIO}x "
        + verdict(http_1 <= FLOOR_RATIO * floor)
    )
    print(
        f"  1000 records over HTTP: p50 {http_1000:.2f} ms, target under {LARGE_P50_MS:.0f} ms "
        + verdict(http_1000 < LARGE_P50_MS)
    )
    print(
        f"  run() over the bare model, 1 record: {overhead_1:.3f} ms, target at most {RUN_OVERHEAD_MS[1]} ms "
        + verdict(overhead_1 <= RUN_OVERHEAD_MS[1])
    )
    print(
        f"  run() over the bare model, 1000 records: {overhead_1000:.3f} ms, target at most "
        f"{RUN_OVERHEAD_MS[1000]} ms " + verdict(overhead_1000 <= RUN_OVERHEAD_MS[1000])
    )
    print(
        f"  thread pools: one row predicts in {model_cost:.2f} ms with n_jobs=1 against {as_loaded_ms:.2f} ms "
        f"as loaded " + verdict(model_cost <= as_loaded_ms * 1.05)
    )

    worker_counts, client_counts = args.workers, args.clients
    print(
        f"\nthroughput, one record per request, {args.rounds} rounds of {args.seconds:.1f} s per cell, in turns "
        f"(requests/s, p50 ms, p99 ms), {os.cpu_count()} cores:"
    )
    servers = {
        workers: inference_server.start(
            python, model_root, inference_server.free_port(), work / f"workers-{workers}.log", workers=workers
        )
        for workers in worker_counts
    }
    counted: dict[tuple[int, int], list[float]] = {}
    try:
        # All servers up at once and measured in turns, round after round: load from elsewhere
        # on the machine then falls on every configuration alike.
        for _ in range(args.rounds):
            for clients in client_counts:
                for workers, server in servers.items():
                    count, elapsed, samples = throughput(server.port, single, clients, args.seconds)
                    cell = counted.setdefault((workers, clients), [0.0, 0.0])
                    cell[0] += count
                    cell[1] += elapsed
                    cell.extend(samples)
    finally:
        for server in servers.values():
            inference_server.stop(server.pid)
    print(f"{'workers':>8} " + " ".join(f"{f'{c} client(s)':>24}" for c in client_counts))
    best_rate: dict[int, float] = {}
    for workers in worker_counts:
        cells = []
        for clients in client_counts:
            count, elapsed, *samples = counted[(workers, clients)]
            rate = count / elapsed
            t50, t99 = percentiles(samples)
            cells.append(f"{rate:7.1f} /s {t50:6.1f} {t99:6.1f}")
            best_rate[workers] = max(best_rate.get(workers, 0.0), rate)
        print(f"{workers:>8} " + " ".join(f"{cell:>24}" for cell in cells))
    top = max(best_rate.values())
    by_throughput = min(w for w, rate in best_rate.items() if rate >= (1 - THROUGHPUT_TOLERANCE) * top)
    print(
        f"  the fewest workers within {THROUGHPUT_TOLERANCE:.0%} of the best throughput ({top:.1f}/s): "
        f"{by_throughput} (load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}: on a machine others use, "
        "this table shows their load as much as ours)"
    )

    # What does not depend on other load: how much of a request's time a worker spends on the
    # CPU. A worker that computes all the time cannot gain from a second worker on the same core;
    # one that waits (I/O) can.
    cpu_share = cpu_per_request / wall_per_request
    cores = os.cpu_count() or 1
    chosen = cores if cpu_share >= 0.5 else cores * math.ceil(1 / max(cpu_share, 0.1))
    print(
        f"  one request: {wall_per_request * 1000:.2f} ms wall, {cpu_per_request * 1000:.2f} ms CPU in the server's "
        f"processes ({cpu_share:.0%} busy): a worker computes nearly all the time, so one worker per core, {chosen}"
    )
    print(
        f"workers: {chosen}; jobs/local/inference_server.py DEFAULT_WORKERS is {inference_server.DEFAULT_WORKERS} "
        + verdict(chosen == inference_server.DEFAULT_WORKERS)
    )
    print(
        f"max_concurrent_requests_per_instance = WORKER_COUNT = {chosen}: requests one instance serves at once "
        f"(Azure answers 429 beyond 2 x that per instance)"
    )


if __name__ == "__main__":
    main()
