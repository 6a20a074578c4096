"""Scoring speed of the model `make demo` deploys against its floor, and the fast path's faithfulness, in one run.

Run it in the scoring environment:  .venv-scoring/bin/python bench/scoring.py
The model is, in this order: --model DIR; the latest version in dev's MLflow registry (what `make demo`
registered); or a fresh local AutoML run (jobs/local/automl.py's train, in the project venv, about
a minute). It prints:
- which path answers (ONNX Runtime's fast path or scikit-learn, and why: scoring/fast_path.py);
- the fast path against the trained scikit-learn model on all 299 patients: the largest probability
  difference and the labels that differ at the operating point;
- out-of-fold AUC with the fast path against scikit-learn's, on the same 5 folds (each fold's model packaged as
  training packages it), so that no loss of AUC hides behind in-sample equality;
- the model's own predict, fast path and scikit-learn (n_jobs=1), for 1 and 1000 rows;
- over HTTP, measured in turns on one worker each: the same inference server with a trivial entry script
  (the floor), score.py with the fast path, and score.py with the same model served by scikit-learn;
and MET/NOT MET for issue 22's targets: one record at most 2x the floor (p50), 1000 records under 50 ms (p50),
probabilities within 1e-5 on all 299 patients, no loss of out-of-fold AUC. With --throughput, also requests
per second for 1 to 4 server workers and 1 to 8 clients, and the worker count the endpoints use (issue 12).
Nothing here is asserted by the tests.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import csv
import http.client
import json
import math
import os
import shutil
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

# This file is bench/scoring.py: with its folder on sys.path, `import scoring` would find it instead of the
# project's scoring package (which jobs.local.fast_model imports). Its neighbour `timing` is imported by now.
HERE = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != HERE]

from jobs.local import inference_server  # noqa: E402
from testing.scoring import SAMPLE_REQUEST, load_score_module  # noqa: E402

TRIVIAL = """
def init():
    pass


def run(data):
    return {"result": [False]}
"""

# Issue 22's targets.
FLOOR_RATIO = 2.0  # one record over HTTP, p50, at most this times the trivial entry script's
LARGE_P50_MS = 50.0  # 1000 records over HTTP, p50
MAX_DIFFERENCE = 1e-5  # the fast path's probabilities against the trained model's, on all 299 patients
AUC_LOSS = 0.0005  # out-of-fold AUC may not fall by half a unit of the report's third decimal
OOF_FOLDS = 5
# A worker count is "as good as the best" when its throughput is within this of the best one.
THROUGHPUT_TOLERANCE = 0.05
CSV = ROOT / "data" / "heart_failure_clinical_records_dataset.csv"


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
    return "MET" if met else "NOT MET"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="an MLflow model folder (default: registered, else trained)")
    parser.add_argument(
        "--requests", type=at_least(1), default=200, help="requests per single-record measurement (default 200)"
    )
    parser.add_argument(
        "--large-requests", type=at_least(1), default=30, help="requests per 1000-record measurement (default 30)"
    )
    parser.add_argument(
        "--oof-folds",
        type=at_least(0),
        default=OOF_FOLDS,
        help=f"folds of the AUC check, 0: skip (default {OOF_FOLDS})",
    )
    parser.add_argument("--throughput", action="store_true", help="also measure 1 to 4 workers (about 2 minutes)")
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

    print(f"{os.cpu_count()} cores, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} at the start")
    with tempfile.TemporaryDirectory(prefix="bench-scoring-") as folder:
        measure(args, Path(folder))
    print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} at the end")


def patients(columns: list[str]) -> list[dict[str, str]]:
    """The CSV's 299 patients with the model's fields, as the lesson's requests carry them (strings)."""
    with CSV.open() as handle:
        return [{name: row[name] for name in columns} for row in csv.DictReader(handle)]


def labels(score: Any) -> Any:
    """The CSV's label per patient (the model's dataset schema names the column), as 0/1 integers."""
    import numpy as np

    with CSV.open() as handle:
        return np.array([int(row[score._request.dataset.label]) for row in csv.DictReader(handle)])


def measure(args: argparse.Namespace, work: Path) -> None:
    """Every measurement, with `work` as the scratch folder (a trained model, a copy without the fast path, logs)."""
    model_dir, origin = find_model(args.model, work)
    os.environ["AZUREML_MODEL_DIR"] = str(model_dir)
    score = load_score_module()
    score.init()
    import mlflow.sklearn

    trained = mlflow.sklearn.load_model(str(model_dir))  # the trained model itself, as scikit-learn answers
    score.single_threaded(trained)
    print(f"model: {origin}")
    print(f"       {trained!r}"[:300].replace("\n", " "))
    print(f"answers with: {score._serving}")
    fast = type(score._model).__name__ == "OnnxClassifier"
    records = patients(score._columns)
    import pandas as pd

    # A frame, which scikit-learn takes with its column names and the fast path as its numbers.
    features = pd.DataFrame(score._request.parse_request(copy.deepcopy(records)).rows, columns=score._columns)
    targets = [faithfulness(score, trained, records, features)]
    if args.oof_folds and fast:
        targets.append(out_of_fold(trained, features, labels(score), args.oof_folds))
    in_process(score, trained, features, args)
    targets += over_http(score, model_dir, work, fast, args)
    print("\ntargets (issue 22):")
    for line in targets:
        print("  " + line)
    if args.throughput:
        workers_table(args, model_dir.parent, work)


def faithfulness(score: Any, trained: Any, records: list[dict[str, str]], features: Any) -> str:
    """The fast path's answers to all patients against the trained model's: a target line."""
    import numpy as np

    positive = score._positive_index
    expected = trained.predict_proba(features)[:, positive]
    raw = np.asarray(score._model.predict_proba(features))[:, positive]
    answer = score.run(data=copy.deepcopy(records))
    answered = np.array(answer["probability"])
    threshold = answer["threshold"]
    flipped = int(np.sum((np.round(expected, 6) >= threshold) != (answered >= threshold)))
    worst = float(np.max(np.abs(raw - expected)))
    print(
        f"\nall {len(records)} patients: largest |probability - trained model's| {worst:.2e} before rounding, "
        f"{float(np.max(np.abs(answered - expected))):.2e} in the answers (6 decimals); labels that differ at "
        f"threshold {threshold:g}: {flipped}"
    )
    return (
        f"probabilities equal to the trained model's on all {len(records)} patients: largest difference {worst:.2e}, "
        f"target at most {MAX_DIFFERENCE:g} " + verdict(worst <= MAX_DIFFERENCE and flipped == 0)
    )


def out_of_fold(trained: Any, features: Any, y: Any, folds: int) -> str:
    """Out-of-fold AUC of the model's recipe, scikit-learn against the fast path packaged per fold: a target line."""
    import numpy as np
    from sklearn.base import clone
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    from jobs.local.fast_model import package

    sk, onnx = np.zeros(len(y)), np.zeros(len(y))
    refused = []
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=0).split(features, y):
        model = clone(trained).fit(features.iloc[train], y[train])
        sk[test] = model.predict_proba(features.iloc[test])[:, 1]
        packaged = package(model, features.iloc[train])
        if packaged.onnx_bytes is None:
            refused.append(packaged.record.reason)
            onnx[test] = sk[test]
            continue
        from scoring.fast_path import probabilities, session

        onnx[test] = probabilities(session(packaged.onnx_bytes), features.iloc[test].to_numpy())[:, 1]
    auc_sk, auc_onnx = roc_auc_score(y, sk), roc_auc_score(y, onnx)
    print(
        f"out-of-fold AUC, {folds} stratified folds (random_state 0), the model's recipe refitted per fold: "
        f"scikit-learn {auc_sk:.6f}, fast path {auc_onnx:.6f}"
        + (f" ({len(refused)} fold(s) refused the fast path: {refused[0]})" if refused else "")
    )
    return (
        f"out-of-fold AUC with the fast path {auc_onnx:.4f} against scikit-learn's {auc_sk:.4f} (loss "
        f"{auc_sk - auc_onnx:+.6f}, target at most {AUC_LOSS}) "
        + verdict(auc_sk - auc_onnx <= AUC_LOSS and not refused)
    )


def in_process(score: Any, trained: Any, features: Any, args: argparse.Namespace) -> None:
    """The model's own predict on 1 and 1000 rows, the serving model against scikit-learn, and run()'s parts."""
    one = features.iloc[:1]
    thousand = features.iloc[[i % len(features) for i in range(1000)]].reset_index(drop=True)
    records = {1: SAMPLE_REQUEST["data"], 1000: SAMPLE_REQUEST["data"] * 1000}
    n, m = args.requests, args.large_requests
    # What score.frame hands each: the fast path the bare numbers, scikit-learn a frame.
    arrays = getattr(score._model, "takes_arrays", False)
    one_served, thousand_served = (one.to_numpy(), thousand.to_numpy()) if arrays else (one, thousand)
    rows = {
        "serving model, predict_proba, 1 row": time_calls(lambda: score._model.predict_proba(one_served), n),
        "scikit-learn n_jobs=1, predict_proba, 1 row": time_calls(lambda: trained.predict_proba(one), max(5, n // 10)),
        "serving model, predict_proba, 1000 rows": time_calls(lambda: score._model.predict_proba(thousand_served), m),
        "scikit-learn n_jobs=1, predict_proba, 1000 rows": time_calls(lambda: trained.predict_proba(thousand), 5),
        "validation, 1 record": time_calls(lambda: score._request.parse_request(records[1]), n),
        "validation, 1000 records": time_calls(lambda: score._request.parse_request(records[1000]), m),
        "run() in process, 1 record": time_calls(lambda: score.run(data=records[1]), n),
        "run() in process, 1000 records": time_calls(lambda: score.run(data=records[1000]), m),
    }
    print(f"\n{'in process':<52} {'p50 ms':>9} {'p99 ms':>9} {'per s':>9}")
    for label, (p50, p99, rate) in rows.items():
        print(f"{label:<52} {p50:>9.3f} {p99:>9.3f} {rate:>9.1f}")
    for size in ("1 row", "1000 rows"):
        serving = rows[f"serving model, predict_proba, {size}"][0]
        sklearn = rows[f"scikit-learn n_jobs=1, predict_proba, {size}"][0]
        print(f"  {size}: the serving model predicts {sklearn / serving:.0f}x as fast as scikit-learn")


def without_fast_path(model_dir: Path, work: Path) -> Path:
    """A copy of the model folder with model.onnx removed: score.py then serves it with scikit-learn."""
    root = work / "scikit-learn" / "model"
    shutil.copytree(model_dir, root)
    (root / "model.onnx").unlink(missing_ok=True)
    return root.parent


def over_http(score: Any, model_dir: Path, work: Path, fast: bool, args: argparse.Namespace) -> list[str]:
    """The trivial entry script, score.py and (with a fast path) score.py on scikit-learn, one worker each, all up
    at once and measured in turns so that other load falls on all alike; returns the target lines."""
    trivial_script = work / "trivial" / "score.py"
    trivial_script.parent.mkdir()
    trivial_script.write_text(TRIVIAL)
    python = Path(sys.executable)
    roots = {"trivial entry script": (model_dir.parent, trivial_script), "score.py": (model_dir.parent, None)}
    if fast:
        roots["score.py on scikit-learn"] = (without_fast_path(model_dir, work), None)
    servers = {}
    try:
        for label, (root, script) in roots.items():
            extra = {"entry_script": script} if script else {}
            log = work / f"{len(servers)}.log"
            servers[label] = inference_server.start(python, root, inference_server.free_port(), log, workers=1, **extra)
        p50 = {}
        for size, count in ((1, args.requests), (1000, args.large_requests)):
            payload = {"data": SAMPLE_REQUEST["data"] * size}
            p50.update(in_turns(servers, payload, size, count))
    finally:
        for server in servers.values():
            inference_server.stop(server.pid)
    print(f"\n{'over HTTP, 1 worker each, in turns':<52} {'p50 ms':>9} {'p99 ms':>9} {'server CPU ms':>14}")
    for label, (median, p99, cpu) in p50.items():
        print(f"{label:<52} {median:>9.3f} {p99:>9.3f} {cpu:>14.3f}")
    floor, one, large = (p50[f"{name}, {size}"][0] for name, size in _HEADLINE)
    lines = [
        f"one record over HTTP: p50 {one:.2f} ms, floor (the same server, trivial entry script) {floor:.2f} ms: "
        f"{one / floor:.2f}x, target at most {FLOOR_RATIO:g}x " + verdict(one <= FLOOR_RATIO * floor),
        f"1000 records over HTTP: p50 {large:.2f} ms ({large / p50['trivial entry script, 1000 records'][0]:.2f}x "
        f"the floor's), target under {LARGE_P50_MS:.0f} ms " + verdict(large < LARGE_P50_MS),
    ]
    cpu_floor, cpu_one = p50["trivial entry script, 1 record"][2], p50["score.py, 1 record"][2]
    print(
        f"  one record, CPU in the server's processes: score.py {cpu_one:.2f} ms, trivial entry script "
        f"{cpu_floor:.2f} ms ({cpu_one / cpu_floor:.2f}x; less affected by other load than the wall times)"
    )
    if fast:
        slow = p50["score.py on scikit-learn, 1 record"][0]
        print(f"  one record: the fast path answers in {one:.2f} ms, scikit-learn in {slow:.2f} ms ({slow / one:.0f}x)")
    return lines


_HEADLINE = (("trivial entry script", "1 record"), ("score.py", "1 record"), ("score.py", "1000 records"))


def in_turns(servers: dict[str, Any], payload: dict, size: int, count: int) -> dict[str, tuple[float, float, float]]:
    """(p50 ms, p99 ms, CPU ms per request in the server's processes) per server of `count` requests of
    `payload`, taking turns request by request. The CPU time depends far less on other load than the wall time."""
    body = json.dumps(payload).encode()
    clients = {label: Client(server.port) for label, server in servers.items()}
    for _ in range(5):
        for client in clients.values():
            client.post(body)
    samples: dict[str, list[float]] = {label: [] for label in clients}
    cpu = {label: server_cpu_seconds(server.pid) for label, server in servers.items()}
    for _ in range(count):
        for label, client in clients.items():
            t0 = time.perf_counter()
            client.post(body)
            samples[label].append(time.perf_counter() - t0)
    unit = "record" if size == 1 else "records"
    return {
        f"{label}, {size} {unit}": (
            *percentiles(values),
            (server_cpu_seconds(servers[label].pid) - cpu[label]) * 1000 / count,
        )
        for label, values in samples.items()
    }


def workers_table(args: argparse.Namespace, model_root: Path, work: Path) -> None:
    """Requests per second for each worker count and client count, and the worker count one core per worker gives."""
    python = Path(sys.executable)
    single = SAMPLE_REQUEST
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
        first = servers[worker_counts[0]]
        cpu_before, wall_before = server_cpu_seconds(first.pid), time.perf_counter()
        client, body = Client(first.port), json.dumps(single).encode()
        for _ in range(args.requests):
            client.post(body)
        cpu_per_request = (server_cpu_seconds(first.pid) - cpu_before) / args.requests
        wall_per_request = (time.perf_counter() - wall_before) / args.requests
    finally:
        for server in servers.values():
            inference_server.stop(server.pid)
    print_workers(args, counted, cpu_per_request, wall_per_request)


def print_workers(
    args: argparse.Namespace, counted: dict[tuple[int, int], list[float]], cpu_per_request: float, wall: float
) -> None:
    print(f"{'workers':>8} " + " ".join(f"{f'{c} client(s)':>24}" for c in args.clients))
    best_rate: dict[int, float] = {}
    for workers in args.workers:
        cells = []
        for clients in args.clients:
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
        f"{by_throughput} (on a machine others use, this table shows their load as much as ours)"
    )
    # What does not depend on other load: how much of a request's time a worker spends on the
    # CPU. A worker that computes all the time cannot gain from a second worker on the same core;
    # one that waits (I/O) can.
    cpu_share = cpu_per_request / wall
    cores = os.cpu_count() or 1
    chosen = cores if cpu_share >= 0.5 else cores * math.ceil(1 / max(cpu_share, 0.1))
    print(
        f"  one request: {wall * 1000:.2f} ms wall, {cpu_per_request * 1000:.2f} ms CPU in the server's "
        f"processes ({cpu_share:.0%} busy): one worker per core when a worker computes at least half the time, {chosen}"
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
