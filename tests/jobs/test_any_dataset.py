"""Any tabular binary-classification dataset, with no code change (issue 19): scikit-learn's bundled
breast-cancer data (569 rows, 30 numeric features) written to CSV, from train to invoke on the local target,
and the Azure dry run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from jobs.local import inference_server
from jobs.paths import ROOT


def jobs(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jobs", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900
    )


@pytest.fixture
def breast_cancer_csv(tmp_path: Path) -> Path:
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame  # 30 features and `target` (1: benign)
    path = tmp_path / "breast_cancer.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.mark.slow
def test_breast_cancer_goes_from_train_to_invoke_with_an_inferred_schema(breast_cancer_csv, tmp_path):
    env = {**os.environ, "JOBS_LOCAL_HOME": str(tmp_path / ".local"), "JOBS_RUNS_DIR": str(tmp_path / "runs")}
    fast = ["--max-trials", "2", "--block-model", "RandomForest", "--block-model", "ExtremeRandomTrees"]
    trained = jobs(env, "train", "--data", str(breast_cancer_csv), "--label", "target", *fast)
    assert trained.returncode == 0, trained.stderr
    schema_file = tmp_path / "breast_cancer.schema.json"
    assert f"wrote {schema_file}" in trained.stdout and "Review it" in trained.stdout
    schema = json.loads(schema_file.read_text())
    assert schema["label"] == {"name": "target"} and len(schema["features"]) == 30
    try:
        assert jobs(env, "register").returncode == 0
        port = inference_server.free_port()
        deployed = jobs(env, "deploy", "--port", str(port))
        assert deployed.returncode == 0, deployed.stderr
        answer = json.loads(jobs(env, "invoke").stdout)  # the schema's example: each feature's median
        assert len(answer["result"]) == 1 and 0 <= answer["probability"][0] <= 1
        assert answer["outside_training_range"] == [[]]
        far = json.loads(jobs(env, "invoke", "--set", "mean radius=35").stdout)
        assert far["outside_training_range"] == [["mean radius"]]
        refused = jobs(env, "invoke", "--set", "mean radius=-5")  # below the inferred possible range
        assert refused.returncode != 0 and "mean radius" in refused.stderr
    finally:
        jobs(env, "stop")


def test_breast_cancer_azure_dry_run_writes_a_job_for_its_label(breast_cancer_csv, tmp_path, monkeypatch):
    from tests.jobs.test_cli import OUTPUTS

    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(OUTPUTS))
    env = {**os.environ, "PATH": "/nonexistent"}  # no Pulumi CLI: the outputs file is the source
    out = tmp_path / "specs"
    args = ["train", "--target", "azure", "--outputs", str(outputs), "--dry-run", "--out", str(out)]
    result = jobs(env, *args, "--data", str(breast_cancer_csv), "--label", "target")
    assert result.returncode == 0, result.stderr
    job = yaml.safe_load((out / "automl-job.yml").read_text())
    assert job["target_column_name"] == "target"
    assert (tmp_path / "breast_cancer.schema.json").is_file()
