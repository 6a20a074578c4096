"""Honest by default (issue 18) and the dataset's schema as data (issue 19), without training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from jobs.cli import main
from jobs.contract import accuracy_table, chosen_point, default_point
from jobs.dataset import DEFAULT_CSV, ensure_schema, infer_schema, load
from jobs.errors import JobsError
from jobs.paths import ROOT
from jobs.training import TrainingSettings
from scoring.schema import DatasetSchema, SchemaError


@pytest.fixture
def outputs_file(tmp_path, monkeypatch):
    from jobs.azure import stack_outputs
    from tests.jobs.test_cli import OUTPUTS

    monkeypatch.setattr(stack_outputs.shutil, "which", lambda _: None)
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(OUTPUTS))
    return path


def _mltable(out: Path) -> dict:
    folder = out / Path(yaml.safe_load((out / "data.yml").read_text())["path"])
    return yaml.safe_load((folder / "MLTable").read_text())


def test_the_default_leaves_the_leaking_column_out_and_the_opt_in_keeps_it_with_a_warning():
    honest = TrainingSettings().for_data(DEFAULT_CSV)
    assert honest.drop_columns == ("time",) and honest.leaking_columns_used == ()
    assert honest.as_tags()["leaking_columns_used"] == "none"
    lesson = TrainingSettings(include_leaking_columns=True).for_data(DEFAULT_CSV)
    assert lesson.drop_columns == () and lesson.leaking_columns_used == ("time",)
    assert lesson.as_tags()["leaking_columns_used"] == "time"
    assert "`time`, which leaks the outcome" in lesson.leak_warning(
        DatasetSchema.load(ROOT / "data" / "heart_failure_clinical_records_dataset.schema.json")
    )


def test_the_azure_dry_run_trains_without_time_and_the_opt_in_with_it_and_a_warning(outputs_file, tmp_path, capsys):
    honest = tmp_path / "honest"
    assert main(["train", "--target", "azure", "--outputs", str(outputs_file), "--dry-run", "--out", str(honest)]) == 0
    assert {"drop_columns": ["time"]} in _mltable(honest)["transformations"]
    job = (honest / "automl-job.yml").read_text()
    assert "WARNING" not in job and "leaking_columns_used: none" in job
    assert "WARNING" not in capsys.readouterr().out

    lesson = tmp_path / "lesson"
    args = ["train", "--target", "azure", "--outputs", str(outputs_file), "--dry-run", "--out", str(lesson)]
    assert main([*args, "--include-leaking-columns"]) == 0
    assert not any("drop_columns" in step for step in _mltable(lesson)["transformations"])
    job = (lesson / "automl-job.yml").read_text()
    assert job.startswith("# WARNING: --include-leaking-columns") and "leaking_columns_used: time" in job
    captured = capsys.readouterr()
    assert "WARNING" in captured.out + captured.err


def test_the_deploy_workflow_trains_the_honest_model_at_a_chosen_threshold():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "deploy.yml").read_text())
    runs = " ".join(step.get("run", "") for job in workflow["jobs"].values() for step in job["steps"])
    assert "-m jobs all --target azure" in runs
    assert "--include-leaking-columns" not in runs
    assert '--threshold "$OPERATING_THRESHOLD"' in runs


def test_an_azure_deploy_without_a_threshold_is_refused_before_anything_is_written(outputs_file, tmp_path, capsys):
    out = tmp_path / "d"
    code = main(["deploy", "--target", "azure", "--outputs", str(outputs_file), "--dry-run", "--out", str(out)])
    assert code == 0  # a dry run writes the deployment, and says what is missing
    assert "no operating point" in capsys.readouterr().out
    contract = json.loads((out / "code" / "model-contract.json").read_text())
    assert contract["inputs"] == [f["name"] for f in contract["dataset"]["features"] if f["name"] != "time"]
    assert contract["training_ranges"]["age"] == [40.0, 95.0]


def test_deploy_chooses_the_operating_point_by_threshold_or_sensitivity():
    y = [0, 0, 0, 1, 1, 1, 1, 0]
    proba = [0.1, 0.2, 0.3, 0.35, 0.6, 0.7, 0.9, 0.8]
    table = accuracy_table(y, proba)
    assert default_point(table, 0.75).threshold == 0.6  # 3 of the 4 deaths at or above it
    assert chosen_point(None, 1.0, table, "v1").threshold == 0.35
    assert chosen_point(0.42, None, table, "v1").threshold == 0.42
    assert chosen_point(None, None, table, "v1") is None
    with pytest.raises(JobsError, match="not both"):
        chosen_point(0.4, 0.9, table, "v1")
    with pytest.raises(JobsError, match="accuracy table"):
        chosen_point(None, 0.9, (), "Azure version 3")


def test_a_csv_without_a_schema_gets_one_inferred_and_written_for_review(tmp_path):
    csv = tmp_path / "clinic.csv"
    csv.write_text("score,flag,ratio,outcome\n3,0,0.5,1\n7,1,1.5,0\n5,1,1.0,1\n")
    said: list[str] = []
    assert ensure_schema(csv, None, said.append).label == "DEATH_EVENT"  # no label: the shipped schema
    assert not (tmp_path / "clinic.schema.json").exists()
    schema = ensure_schema(csv, "outcome", said.append)
    written = json.loads((tmp_path / "clinic.schema.json").read_text())
    assert schema.label == "outcome" and "review it" in said[0].lower()
    kinds = {f["name"]: (f["kind"], f.get("minimum"), f.get("maximum")) for f in written["features"]}
    assert kinds == {"score": ("integer", 1, 9), "flag": ("boolean", None, None), "ratio": ("number", 0.0, 2.0)}
    assert ensure_schema(csv, None).label == "outcome"  # read back, not inferred again
    with pytest.raises(JobsError, match="differs from the label outcome"):
        ensure_schema(csv, "score")


def test_inference_names_a_text_column_and_a_missing_label(tmp_path):
    csv = tmp_path / "t.csv"
    csv.write_text("name,age,y\nann,50,1\nbob,60,0\n")
    with pytest.raises(JobsError, match=r"'name' is not numeric .*--drop name"):
        infer_schema(load(csv), "y")
    with pytest.raises(JobsError, match="--label z: no such column"):
        infer_schema(load(csv), "z")


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"format": 2}, "format must be 1"),
        ({"features": [{"name": "a", "kind": "text"}]}, "kind 'text' is not one of"),
        ({"features": [{"name": "a", "kind": "number", "minimum": 5, "maximum": 1}]}, "minimum <= maximum"),
        ({"leaking_columns": {"nope": "why"}}, "not features: nope"),
        ({"label": {"name": "age"}}, "also listed as a feature"),
    ],
)
def test_a_bad_schema_file_is_refused_with_every_problem_named(change, problem):
    document = json.loads((ROOT / "data" / "heart_failure_clinical_records_dataset.schema.json").read_text())
    with pytest.raises(SchemaError, match=problem):
        DatasetSchema.from_dict({**document, **change})


def test_the_shipped_schema_keeps_every_unit_hint_and_the_lessons_sample():
    schema = DatasetSchema.load(ROOT / "data" / "heart_failure_clinical_records_dataset.schema.json")
    hinted = {f.name: [u.name for u in f.other_units] for f in schema.features if f.other_units}
    assert set(hinted) == {
        "age",
        "creatinine_phosphokinase",
        "ejection_fraction",
        "platelets",
        "serum_creatinine",
        "serum_sodium",
    }
    assert schema.example == json.loads((ROOT / "scoring" / "sample-request.json").read_text())["data"][0]
    assert schema.leaking == {"time": schema.leaking["time"]} and "follow-up" in schema.leaking["time"]


def test_a_dry_run_needs_no_stack_and_marks_what_it_does_not_know(tmp_path, capsys, monkeypatch):
    from jobs.azure import stack_outputs

    monkeypatch.setattr(stack_outputs.shutil, "which", lambda _: None)  # no Pulumi CLI, no --outputs
    monkeypatch.chdir(tmp_path)  # no config.json either
    out = tmp_path / "specs"
    assert main(["train", "--target", "azure", "--dry-run", "--out", str(out)]) == 0
    job = (out / "automl-job.yml").read_text()
    assert job.startswith("# PLACEHOLDER: compute <compute_name from the stack>: the stack's compute_name output")
    assert "PLACEHOLDER: compute" in capsys.readouterr().out
    # A real (connected) train still needs the workspace's coordinates.
    assert main(["train", "--target", "azure"]) == 2
    assert "cannot locate the Azure ML workspace" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--threshold", "1"], "argument --threshold: 1 is not allowed; allowed: above 0 and below 1"),
        (["--threshold", "0.3", "--min-sensitivity", "0.8"], "not both"),
    ],
)
def test_operating_point_flags_are_refused_before_any_model_is_looked_up(flags, message, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("JOBS_LOCAL_HOME", str(tmp_path / "empty"))
    assert main(["deploy", *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and "registered" not in err


def test_a_label_that_is_not_0_or_1_leaves_no_inferred_schema_behind(tmp_path):
    csv = tmp_path / "d.csv"
    csv.write_text("a,b,y\n1,2,1\n3,4,0\n5,6,1\n")
    with pytest.raises(JobsError, match=r"--label a: the label a must be 0 or 1.*no schema was written"):
        ensure_schema(csv, "a")
    assert not (tmp_path / "d.schema.json").exists()
