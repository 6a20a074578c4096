"""Training CSVs and user files as people really save them: checked against the request schema before any
compute, on both targets and in --dry-run; Excel's and PowerShell's BOM and CRLF read the same everywhere."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import yaml

from jobs.azure import stack_outputs
from jobs.azure.backend import AzureBackend
from jobs.azure.stack_outputs import StackOutputs
from jobs.cli import main
from jobs.dataset import DEFAULT_CSV, columns
from jobs.errors import JobsError
from jobs.invocation import build_request
from jobs.training import TrainingSettings, known_models
from tests.fakes import FakeSession

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = DEFAULT_CSV.read_text()
HEADER = SHIPPED.splitlines()[0].split(",")
OUTPUTS = {"subscription_id": "00000000-0000-0000-0000-0000000000aa",
        "resource_group": "r", "workspace_name": "w", "compute_name": "cpu-x",
           "compute_max_nodes": 3, "endpoint_name": "hf-x"}


@pytest.fixture(autouse=True)
def no_pulumi_cli(monkeypatch, tmp_path):
    monkeypatch.setattr(stack_outputs.shutil, "which", lambda _: None)
    for var in stack_outputs.ENV.values():
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("JOBS_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("JOBS_LOCAL_HOME", str(tmp_path / "home"))


@pytest.fixture
def outputs_file(tmp_path):
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(OUTPUTS))
    return path


def variant(tmp_path: Path, transform, name: str = "records.csv", encoding: str = "utf-8",
            newline: str = "\n") -> Path:
    """The shipped CSV, each row passed through transform(row_index, row) -> row."""
    rows = list(csv.reader(io.StringIO(SHIPPED)))
    out = io.StringIO()
    csv.writer(out, lineterminator=newline).writerows(transform(i, row) for i, row in enumerate(rows))
    path = tmp_path / name
    path.write_bytes(out.getvalue().encode(encoding))
    return path


def with_index(tmp_path):  # pandas' df.to_csv("x.csv") without index=False: an empty first header cell
    return variant(tmp_path, lambda i, row: ["" if i == 0 else str(i - 1), *row])


def with_id(tmp_path):
    return variant(tmp_path, lambda i, row: ["patient_id" if i == 0 else f"P{i:04d}", *row])


def with_capital_age(tmp_path):
    return variant(tmp_path, lambda i, row: ["Age", *row[1:]] if i == 0 else row)


def without_time(tmp_path):
    return variant(tmp_path, lambda i, row: row[:HEADER.index("time")] + row[HEADER.index("time") + 1:])


def excel_csv_utf8(tmp_path):  # Excel's "CSV UTF-8 (Comma delimited)": a BOM and CRLF
    return variant(tmp_path, lambda i, row: row, encoding="utf-8-sig", newline="\r\n")


CASES = [
    (with_index, ["column 1 has no name in the header ('Unnamed: 0')", "index=False", "--drop 'Unnamed: 0'"]),
    (with_id, ["column 'patient_id' is not a request field", "--drop patient_id"]),
    (with_capital_age, ["column 'Age' is not a request field: did you mean 'age'?", "--drop Age"]),
    (without_time, ["the data lacks the request field(s) time", "--drop time"]),
]


@pytest.mark.parametrize(("make", "fragments"), CASES, ids=[c[0].__name__ for c in CASES])
@pytest.mark.parametrize("target", ["local", "azure", "dry-run"])
def test_columns_the_endpoint_would_not_accept_are_refused_at_train(make, fragments, target, tmp_path, outputs_file,
                                                                    capsys, monkeypatch):
    data = make(tmp_path)
    session = FakeSession()
    monkeypatch.setattr("jobs.azure.session.connect", lambda outputs: session)
    monkeypatch.setattr("jobs.azure.backend.ROOT", tmp_path)
    argv = ["train", "--data", str(data)]
    if target != "local":
        argv += ["--target", "azure", "--outputs", str(outputs_file)]
    if target == "dry-run":
        argv += ["--dry-run", "--out", str(tmp_path / "dry")]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    for fragment in fragments:
        assert fragment in err
    assert "Traceback" not in err
    # Nothing was spent: no data asset, no job, no run folder, no dry-run spec.
    assert session.ml.calls == []
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    assert not (tmp_path / "dry" / "automl-job.yml").exists()


@pytest.mark.parametrize(("make", "drop"), [(with_index, "Unnamed: 0"), (with_id, "patient_id"),
                                            (without_time, "time")])
def test_drop_is_the_way_out_on_both_targets(make, drop, tmp_path):
    data = make(tmp_path)
    settings = TrainingSettings(drop_columns=(drop,))
    settings.validate(columns(data))
    from jobs.local.automl import features, read_data

    X, _ = features(read_data(data), settings)
    assert drop not in X.columns and set(X.columns) <= set(HEADER)
    # Azure: the MLTable drops the column, and only a column that is there.
    session = FakeSession()
    backend = AzureBackend(session, StackOutputs(**OUTPUTS), "dev", say=lambda _: None, sleep=lambda _: None,
                           state_dir=tmp_path)
    backend.train(settings, data, wait=False)
    table = session.ml.uploaded_mltables[-1]
    dropped = [step["drop_columns"] for step in table["transformations"] if "drop_columns" in step]
    assert dropped == ([] if drop == "time" else [[drop]])


def test_excel_csv_utf8_reads_the_same_on_both_targets(tmp_path, outputs_file, capsys):
    data = excel_csv_utf8(tmp_path)
    assert data.read_bytes().startswith(b"\xef\xbb\xbfage,") and b"\r\n" in data.read_bytes()
    assert columns(data) == HEADER
    TrainingSettings().validate(columns(data))
    from jobs.local.automl import read_data

    assert list(read_data(data).columns) == HEADER
    # The data asset Azure reads: the staged CSV and its MLTable agree on the columns.
    out = tmp_path / "dry"
    assert main(["train", "--target", "azure", "--outputs", str(outputs_file), "--data", str(data), "--dry-run",
                 "--out", str(out)]) == 0, capsys.readouterr().err
    folder = out / yaml.safe_load((out / "data.yml").read_text())["path"]
    table = yaml.safe_load((folder / "MLTable").read_text())
    encoding = table["transformations"][0]["read_delimited"]["encoding"]
    staged = (folder / data.name).read_bytes()
    assert (encoding, staged[:4]) == ("utf8", b"age,")  # no BOM left for a utf8 reader to glue on
    assert b"\r" not in staged
    assert staged.decode().splitlines()[1:] == [line for line in SHIPPED.splitlines()[1:] if line]


def test_the_shipped_csv_re_saved_by_excel_is_uploaded_normalized(tmp_path, monkeypatch):
    from jobs.azure import specs

    shipped = tmp_path / "data" / DEFAULT_CSV.name
    shipped.parent.mkdir()
    shipped.write_bytes(b"\xef\xbb\xbf" + SHIPPED.replace("\n", "\r\n").encode())
    # The shipped file as it is in git goes up as it is, with data/MLTable.
    assert specs.data_folder(DEFAULT_CSV, (), tmp_path / "staging") == DEFAULT_CSV.parent
    monkeypatch.setattr(specs, "DEFAULT_CSV", shipped)
    monkeypatch.setattr(specs, "DATA_DIR", shipped.parent)
    folder = specs.data_folder(shipped, (), tmp_path / "staging")
    assert folder != shipped.parent
    assert (folder / shipped.name).read_bytes() == SHIPPED.encode()


def test_a_csv_that_is_not_utf8_is_named(tmp_path, capsys):
    data = variant(tmp_path, lambda i, row: row, encoding="utf-16")
    assert main(["train", "--data", str(data)]) == 2
    err = capsys.readouterr().err
    assert f"data file {data} is not UTF-8 text" in err and "CSV UTF-8" in err


def test_a_header_twice_is_refused(tmp_path):
    data = variant(tmp_path, lambda i, row: [*row, row[0]])
    with pytest.raises(JobsError, match=r"column 'age' appears more than once in the header \(columns 1, 14\)"):
        TrainingSettings().validate(columns(data))


# --- --block-model: the SDK's own list --------------------------------------------------------


def test_block_model_names_come_from_the_sdk_and_a_wrong_one_is_refused_before_submitting(tmp_path, outputs_file,
                                                                                        capsys, monkeypatch):
    from azure.ai.ml.automl import ClassificationModels

    assert known_models() == tuple(m.value for m in ClassificationModels)
    session = FakeSession()
    monkeypatch.setattr("jobs.azure.session.connect", lambda outputs: session)
    code = main(["train", "--target", "azure", "--outputs", str(outputs_file), "--block-model", "TabnetClassifier",
                 "--block-model", "knn"])
    err = capsys.readouterr().err
    assert code == 2
    assert "--block-model TabnetClassifier: not a model Azure AutoML classification knows" in err
    assert "--block-model knn: not a model Azure AutoML classification knows; did you mean KNN?" in err
    assert "Traceback" not in err and "KeyError" not in err
    assert session.ml.calls == []


def test_every_allowed_name_survives_the_sdks_conversion_at_submit():
    from jobs.azure import specs

    job = specs.automl_job(TrainingSettings(blocked_models=known_models()), "azureml:d:1", "cpu", {})
    sent = job._to_rest_object().properties.task_details.training_settings.blocked_training_algorithms
    assert [model.value for model in sent] == list(known_models())


def test_the_local_learners_are_sdk_names():
    from jobs.local.automl import LEARNERS

    assert set(LEARNERS) <= set(known_models())


# --- every JSON file a user hands us ------------------------------------------------------------


def test_invoke_file_with_a_bom_and_crlf_is_read(tmp_path):
    request = tmp_path / "request.json"
    body = json.dumps({"data": [{"age": "60"}]}, indent=2).replace("\n", "\r\n")
    request.write_bytes(b"\xef\xbb\xbf" + body.encode())  # PowerShell's Out-File -Encoding utf8
    assert build_request(request) == {"data": [{"age": "60"}]}


def test_outputs_file_with_a_bom_is_read(tmp_path):
    path = tmp_path / "outputs.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(OUTPUTS).encode())
    assert stack_outputs.resolve("dev", path, environ={}, cwd=tmp_path).workspace_name == "w"


def test_an_outputs_file_from_windows_powershell_says_what_it_is(tmp_path, capsys):
    path = tmp_path / "outputs.json"
    path.write_bytes(json.dumps(OUTPUTS).encode("utf-16"))  # Windows PowerShell 5.1's `>`
    assert main(["train", "--target", "azure", "--outputs", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"--outputs {path} is not UTF-8 text" in err and "pulumi stack output --json" in err


# --- when training fails for another reason: the last lines say why ----------------------------


def test_an_unforeseen_training_failure_ends_in_its_reason_not_a_traceback(tmp_path, capsys, monkeypatch):
    def search(*args, **kwargs):
        raise ValueError("Input X contains infinity or a value too large for dtype('float64').\nmore detail")

    monkeypatch.setattr("jobs.local.automl.search", search)
    assert main(["train", "--local-budget-seconds", "5"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()
    assert last[-1] == "why: ValueError: Input X contains infinity or a value too large for dtype('float64')."
    log = Path(last[-2].split("the full traceback is in ")[1].rstrip("."))
    assert "Traceback" in log.read_text() and "infinity" in log.read_text()
    log.unlink()
    assert not any((tmp_path / "runs").glob("*/run.json"))


def test_one_class_or_too_few_rows_per_fold_is_refused_before_training(tmp_path, capsys):
    rows = SHIPPED.splitlines()
    data = tmp_path / "first-rows.csv"  # the file's first rows: every patient died
    data.write_text("\n".join(rows[:7]) + "\n")
    assert main(["train", "--data", str(data)]) == 2
    err = capsys.readouterr().err
    assert "the label DEATH_EVENT has 6 row(s) of 1 and 0 of 0; 5-fold cross-validation needs at least 5 of each" in err
    assert "Traceback" not in err


def test_a_config_json_downloaded_with_a_bom_is_read(tmp_path):
    (tmp_path / "config.json").write_bytes(b"\xef\xbb\xbf" + json.dumps(
        {"subscription_id": "00000000-0000-0000-0000-0000000000aa",
                "resource_group": "r", "workspace_name": "w"}).encode())
    assert stack_outputs.resolve("dev", environ={}, cwd=tmp_path).workspace_name == "w"
