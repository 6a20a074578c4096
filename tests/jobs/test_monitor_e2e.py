"""Collection and monitoring end to end, locally, through the real command line and the real server.

deploy --collect, then three windows: records drawn from the training data (no drift), the same
records with serum_sodium shifted (that feature, and no other, reported), and a batch mixing
refused records (the refused share reported). The exit code says which.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from jobs.dataset import content_version
from jobs.lineage import MODEL_NAME, model_tags
from jobs.local import inference_server
from jobs.local.endpoint import post_json
from jobs.local.lineage import local_run
from jobs.local.places import registry_root
from jobs.local.registry import LocalRegistry
from testing.scoring import write_contract

ROOT = Path(__file__).resolve().parents[2]
CSV = ROOT / "data" / "heart_failure_clinical_records_dataset.csv"
FEATURES = [c for c in pd.read_csv(CSV).columns if c != "DEATH_EVENT"]
pytestmark = pytest.mark.slow


def jobs(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jobs", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def register_small_model(home: Path, runs: Path) -> None:
    """A registered version as `jobs train` + `register` leave it (run.json, lineage tags), in two seconds."""
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame = pd.read_csv(CSV)
    features, label = frame[FEATURES].astype("float64"), frame["DEATH_EVENT"]
    run = runs / "20261129-000000-monitr"
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(features, label)
    mlflow.sklearn.save_model(
        model, str(run / "model"), signature=infer_signature(features, label), pip_requirements=["scikit-learn"]
    )
    ranges = {name: [float(features[name].min()), float(features[name].max())] for name in FEATURES}
    write_contract(run / "model", list(FEATURES), ranges)
    version = content_version(CSV)
    info = {
        "run_id": run.name,
        "data": str(CSV),
        "data_version": version,
        "metrics": {"AUC_weighted": 0.9},
        "best_learner": "lrl1",
        "git_commit": "test",
    }
    (run / "run.json").write_text(json.dumps(info))
    # The tags `register` writes (jobs/lineage.py), without its gate: the model here is a fixture.
    tags = model_tags(local_run(info), None, registered_by="test")
    registry = LocalRegistry(registry_root(home, "dev"))
    registry.register(MODEL_NAME, registry.log_training_run(run, info), tags)


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    base = tmp_path_factory.mktemp("monitor")
    home, runs = base / ".local", base / "runs"
    env = {**os.environ, "JOBS_LOCAL_HOME": str(home), "JOBS_RUNS_DIR": str(runs)}
    register_small_model(home, runs)
    result = jobs(env, "deploy", "--collect", "--port", str(inference_server.free_port()))
    assert result.returncode == 0, result.stderr
    assert "collecting scored records in" in result.stdout
    state = json.loads((home / "endpoint.json").read_text())
    yield home, runs, env, inference_server.score_url(state["port"])
    jobs(env, "stop")


def send(url: str, records: list[dict]) -> None:
    for start in range(0, len(records), 100):
        answer = post_json(url, {"data": records[start : start + 100]})
        assert "result" in answer, answer


def written(home: Path, scored: int, refused: int = 0) -> None:
    """Wait (at most 30 s) until the server's writer thread has written this window's records."""
    deadline = time.monotonic() + 30
    while True:
        lines = [line for path in (home / "collected").glob("scored*.jsonl") for line in path.read_text().splitlines()]
        if (
            sum('"kind":"scored"' in line for line in lines) >= scored
            and sum('"kind":"refused"' in line for line in lines) >= refused
        ):
            return
        assert time.monotonic() < deadline, f"{len(lines)} lines written"
        time.sleep(0.05)


def drawn_from_training(n: int = 1200, seed: int = 7) -> pd.DataFrame:
    return pd.read_csv(CSV)[FEATURES].sample(n, replace=True, random_state=seed).reset_index(drop=True)


def as_records(frame: pd.DataFrame) -> list[dict]:
    return [
        {k: (bool(v) if set(frame[k].unique()) <= {0, 1} else float(v)) for k, v in row.items()}
        for row in frame.to_dict("records")
    ]


def new_window(home: Path, name: str) -> None:
    # Each phase is its own window: the previous phase's records are moved aside (the server
    # re-creates the folder on its next write, as it does after a rotation).
    (home / "collected").rename(home / f"collected-{name}")


def summary_of(result: subprocess.CompletedProcess[str]) -> dict:
    report = Path(next(w for w in result.stdout.split() if w.endswith("report.html")))
    assert report.is_file() and "Monitoring heart-failure-automl:1" in report.read_text()
    return json.loads((report.parent / "summary.json").read_text())


def test_records_like_the_training_data_are_not_drift(deployed):
    home, runs, env, url = deployed
    send(url, as_records(drawn_from_training()))
    written(home, scored=1201)
    result = jobs(env, "monitor")
    assert result.returncode == 0, result.stderr
    summary = summary_of(result)
    # 1200 and the lesson's sample that deploy sends as its smoke test, a real answered request.
    assert summary["scored_records"] == 1201 and summary["refused_records"] == 0
    assert [f["feature"] for f in summary["features"]] == FEATURES
    assert not any(f["drifted"] for f in summary["features"]) and not summary["prediction"]["drifted"]
    # The report sits beside the training report, under the model's training run.
    assert str(runs / "20261129-000000-monitr" / "monitoring") in result.stdout
    new_window(home, "plain")


def test_one_shifted_feature_is_reported_and_no_other(deployed):
    home, _, env, url = deployed
    shifted = drawn_from_training()
    shifted["serum_sodium"] = np.clip(shifted["serum_sodium"] + 8, 80, 200)
    send(url, as_records(shifted))
    written(home, scored=1200)
    result = jobs(env, "monitor")
    assert result.returncode == 1, result.stderr
    assert "data drift: serum_sodium normalized_wasserstein_distance" in result.stderr
    summary = summary_of(result)
    assert [f["feature"] for f in summary["features"] if f["drifted"]] == ["serum_sodium"]
    report = Path(next(w for w in result.stdout.split() if w.endswith("report.html")))
    assert (report.parent / "feature-serum_sodium.png").stat().st_size > 1000
    assert (report.parent / "prediction.png").stat().st_size > 1000
    # A looser threshold of the user's choosing lets the same window pass.
    looser = jobs(env, "monitor", "--numerical-threshold", "5", "--prediction-threshold", "0.9")
    assert looser.returncode == 0, looser.stderr
    new_window(home, "shifted")


def test_a_batch_mixing_refused_records_reports_the_refused_share(deployed):
    home, _, env, url = deployed
    send(url, as_records(drawn_from_training()))
    bad = [dict(record, age=200) for record in as_records(drawn_from_training(120, seed=8))]
    for start in range(0, 120, 20):
        answer = post_json(url, {"data": bad[start : start + 20]})
        assert answer["status"] == 400
    written(home, scored=1200, refused=6)
    result = jobs(env, "monitor")
    assert result.returncode == 1
    assert "refused records: 9.1% of 1320 records" in result.stderr
    assert "data drift" not in result.stderr
    summary = summary_of(result)
    assert summary["refused_records"] == 120
    assert summary["refusal_reasons"] == [{"field": "age", "reason": "out_of_range", "count": 120}]
    refusals = [
        line
        for p in (home / "collected").glob("*.jsonl")
        for line in p.read_text().splitlines()
        if '"kind":"refused"' in line
    ]
    assert len(refusals) == 6
    for line in refusals:  # refusals keep no value (the time and the random id may hold any digits)
        kept = {key: value for key, value in json.loads(line).items() if key not in ("time", "correlation_id")}
        assert "200" not in json.dumps(kept), kept
    new_window(home, "refused")


def test_bad_monitor_settings_and_an_empty_window_are_clear_errors(deployed):
    home, _, env, _ = deployed
    shutil.rmtree(home / "collected", ignore_errors=True)
    empty = jobs(env, "monitor")
    assert empty.returncode == 2 and "nothing has been collected" in empty.stderr
    (home / "collected").mkdir()
    (home / "collected" / "scored.jsonl").write_text("")
    bad = jobs(env, "monitor", "--max-refused-share", "2")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "argument --max-refused-share: 2 is not allowed; allowed: from 0 to 1" in bad.stderr
    p_value = jobs(
        env, "monitor", "--numerical-metric", "two_sample_kolmogorov_smirnov_test", "--numerical-threshold", "5"
    )
    assert p_value.returncode == 2 and "Traceback" not in p_value.stderr
    assert "--numerical-threshold 5 is a p-value for two_sample_kolmogorov_smirnov_test" in p_value.stderr
