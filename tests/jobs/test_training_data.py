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
OUTPUTS = {
    "subscription_id": "00000000-0000-0000-0000-0000000000aa",
    "resource_group": "r",
    "workspace_name": "w",
    "compute_name": "cpu-x",
    "compute_max_nodes": 3,
    "endpoint_name": "hf-x",
}


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


def variant(tmp_path: Path, transform, name: str = "records.csv", encoding: str = "utf-8", newline: str = "\n") -> Path:
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
    return variant(tmp_path, lambda i, row: row[: HEADER.index("time")] + row[HEADER.index("time") + 1 :])


def excel_csv_utf8(tmp_path):  # Excel's "CSV UTF-8 (Comma delimited)": a BOM and CRLF
    return variant(tmp_path, lambda i, row: row, encoding="utf-8-sig", newline="\r\n")


CASES = [
    (with_index, ["column 1 has no name in the header ('Unnamed: 0')", "index=False", "--drop 'Unnamed: 0'"]),
    (with_id, ["column 'patient_id' is not a request field", "--drop patient_id"]),
    (with_capital_age, ["column 'Age' is not a request field: did you mean 'age'?", "--drop Age"]),
]


@pytest.mark.parametrize(("make", "fragments"), CASES, ids=[c[0].__name__ for c in CASES])
@pytest.mark.parametrize("target", ["local", "azure", "dry-run"])
def test_columns_the_endpoint_would_not_accept_are_refused_at_train(
    make, fragments, target, tmp_path, outputs_file, capsys, monkeypatch
):
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


@pytest.mark.parametrize(
    ("make", "drop"), [(with_index, "Unnamed: 0"), (with_id, "patient_id"), (without_time, "time")]
)
def test_drop_is_the_way_out_on_both_targets(make, drop, tmp_path):
    data = make(tmp_path)
    settings = TrainingSettings(drop_columns=(drop,))
    settings.validate(columns(data))
    from jobs.local.features import features, read_data

    X, _ = features(read_data(data), settings)
    assert drop not in X.columns and set(X.columns) <= set(HEADER)
    # Azure: the MLTable drops the column, and only a column that is there.
    session = FakeSession()
    backend = AzureBackend(
        session, StackOutputs(**OUTPUTS), "dev", say=lambda _: None, sleep=lambda _: None, state_dir=tmp_path
    )
    backend.train(settings, data, wait=False)
    table = session.ml.uploaded_mltables[-1]
    dropped = [step["drop_columns"] for step in table["transformations"] if "drop_columns" in step]
    # `time` leaks the outcome: dropped by default too, wherever the data has it.
    assert dropped == ([] if drop == "time" else [[drop, "time"]])


def test_excel_csv_utf8_reads_the_same_on_both_targets(tmp_path, outputs_file, capsys):
    data = excel_csv_utf8(tmp_path)
    assert data.read_bytes().startswith(b"\xef\xbb\xbfage,") and b"\r\n" in data.read_bytes()
    assert columns(data) == HEADER
    TrainingSettings().validate(columns(data))
    from jobs.local.features import read_data

    assert list(read_data(data).columns) == HEADER
    # The data asset Azure reads: the staged CSV and its MLTable agree on the columns.
    out = tmp_path / "dry"
    assert (
        main(
            [
                "train",
                "--target",
                "azure",
                "--outputs",
                str(outputs_file),
                "--data",
                str(data),
                "--dry-run",
                "--out",
                str(out),
            ]
        )
        == 0
    ), capsys.readouterr().err
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


def test_block_model_names_come_from_the_sdk_and_a_wrong_one_is_refused_before_submitting(
    tmp_path, outputs_file, capsys, monkeypatch
):
    from azure.ai.ml.automl import ClassificationModels

    assert known_models() == tuple(m.value for m in ClassificationModels)
    session = FakeSession()
    monkeypatch.setattr("jobs.azure.session.connect", lambda outputs: session)
    code = main(
        [
            "train",
            "--target",
            "azure",
            "--outputs",
            str(outputs_file),
            "--block-model",
            "TabnetClassifier",
            "--block-model",
            "knn",
        ]
    )
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
    from jobs.local.search import LEARNERS

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
    (tmp_path / "config.json").write_bytes(
        b"\xef\xbb\xbf"
        + json.dumps(
            {"subscription_id": "00000000-0000-0000-0000-0000000000aa", "resource_group": "r", "workspace_name": "w"}
        ).encode()
    )
    assert stack_outputs.resolve("dev", environ={}, cwd=tmp_path).workspace_name == "w"


# --- review 11: one data check, the same on both targets, before any compute ----------------------


def cell(column: str, value: str, row: int = 6):
    """A transform that writes `value` into `column` on data row `row` (the header is row 0)."""
    at = HEADER.index(column)
    return lambda i, r: [*r[:at], value, *r[at + 1 :]] if i == row else r


def every_row(column: str, change):
    at = HEADER.index(column)
    return lambda i, r: [*r[:at], change(r[at]), *r[at + 1 :]] if i else r


def text_variant(tmp_path: Path, change) -> Path:
    path = tmp_path / "records.csv"
    path.write_text(change(SHIPPED))
    return path


def header_variant(tmp_path: Path, new_header: str) -> Path:
    return text_variant(tmp_path, lambda text: new_header + "\n" + text.split("\n", 1)[1])


EUROPEAN = "\n".join(line.replace(",", ";").replace(".", ",") for line in SHIPPED.splitlines()) + "\n"
BAD_DATA = {
    "empty value": (lambda p: variant(p, cell("serum_sodium", "")), ["serum_sodium, line 7: is empty"]),
    "yes/no flags": (
        lambda p: variant(p, every_row("anaemia", lambda v: "yes" if v == "1" else "no")),
        ["anaemia, line 2: is the word 'no'", "Write 1 for yes/true and 0 for no/false", "(299 rows in all)"],
    ),
    "14 fields": (
        lambda p: variant(p, lambda i, r: [*r, "x"] if i == 6 else r),
        ["row(s) do not have the header's 13 fields: line 7 has 14", "double quotes"],
    ),
    "12 fields": (lambda p: variant(p, lambda i, r: r[:-1] if i == 6 else r), ["line 7 has 12"]),
    "inf": (lambda p: variant(p, cell("platelets", "inf")), ["platelets, line 7: 'inf': NaN and infinity are not"]),
    "semicolons": (
        lambda p: text_variant(p, lambda t: t.replace(",", ";")),
        ["separated by semicolons, not commas", "CSV UTF-8 (Comma delimited)", "sep=';'"],
    ),
    "tabs": (lambda p: text_variant(p, lambda t: t.replace(",", "\t")), ["separated by tabs, not commas"]),
    "european excel": (
        lambda p: text_variant(p, lambda t: EUROPEAN),
        ["separated by semicolons", "decimal commas", "decimal=','"],
    ),
    "space after comma": (
        lambda p: header_variant(p, ", ".join(HEADER)),
        ["spaces or tabs around them: ' anaemia'", "Remove the spaces after the commas"],
    ),
    "trailing tab": (lambda p: header_variant(p, ",".join(HEADER) + "\t"), ["'DEATH_EVENT\\t'"]),
    "DEATH EVENT": (
        lambda p: header_variant(p, ",".join(HEADER).replace("DEATH_EVENT", "DEATH EVENT")),
        ["did you mean 'DEATH EVENT'? Rename it DEATH_EVENT"],
    ),
    "trailing comma": (
        lambda p: header_variant(p, ",".join(HEADER) + ","),
        ["the header ends with a comma, so column 14 has no name"],
    ),
    "platelets in thousands": (
        lambda p: variant(p, every_row("platelets", lambda v: f"{float(v) / 1000:g}")),
        ["platelets, line 2: 265 is outside", "looks like thousands per µL"],
    ),
    "ejection fraction as a fraction": (
        lambda p: variant(p, every_row("ejection_fraction", lambda v: f"{int(v) / 100:g}")),
        ["ejection_fraction, line 2: 0.2 is outside", "looks like a fraction"],
    ),
    "creatinine in µmol/L": (
        lambda p: variant(p, every_row("serum_creatinine", lambda v: f"{float(v) * 88.4:.0f}")),
        ["serum_creatinine, line 2: 168 is outside", "looks like µmol/L"],
    ),
    "age in months": (
        lambda p: variant(p, every_row("age", lambda v: f"{float(v) * 12:g}")),
        ["age, line 2: 900 is outside", "looks like months"],
    ),
}


@pytest.mark.parametrize("case", list(BAD_DATA))
def test_bad_data_is_refused_the_same_way_on_every_target_before_any_compute(
    case, tmp_path, outputs_file, capsys, monkeypatch
):
    make, fragments = BAD_DATA[case]
    data = make(tmp_path)
    session = FakeSession()
    monkeypatch.setattr("jobs.azure.session.connect", lambda outputs: session)
    monkeypatch.setattr("jobs.azure.backend.ROOT", tmp_path)
    azure = ["--target", "azure", "--outputs", str(outputs_file)]
    runs = {
        "local train": ["train"],
        "azure train": ["train", *azure],
        "azure dry run": ["train", *azure, "--dry-run", "--out", str(tmp_path / "dry")],
        "azure pipeline dry run": ["pipeline", *azure, "--dry-run", "--out", str(tmp_path / "dry")],
    }
    messages = {}
    for name, argv in runs.items():
        code = main([*argv, "--data", str(data)])
        err = capsys.readouterr().err
        assert code == 2, (name, err)
        assert "Traceback" not in err, name
        for fragment in fragments:
            assert fragment in err, (name, fragment, err)
        messages[name] = [line for line in err.splitlines() if line.startswith("  - ")]
    assert len({tuple(lines) for lines in messages.values()}) == 1, messages  # one check, one message
    assert session.ml.calls == []
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    assert not list((tmp_path / "dry").glob("*.yml")) and not (tmp_path / "dry" / "staging").exists()


def test_every_problem_is_listed_not_only_the_first_and_the_list_is_capped(tmp_path):
    data = variant(tmp_path, lambda i, r: cell("serum_sodium", "")(i, cell("platelets", "inf", 9)(i, r)))
    with pytest.raises(JobsError) as caught:
        TrainingSettings().check_data(data)
    assert "serum_sodium, line 7: is empty" in str(caught.value) and "platelets, line 10: 'inf'" in str(caught.value)
    # Every column wrong in every row: 11 problems of values (`time`, which leaks, is left out) and one of the
    # label, all listed.
    text = "\n".join([SHIPPED.splitlines()[0], *[",".join(["x"] * 13)] * 10])
    with pytest.raises(JobsError) as caught:
        TrainingSettings().check_data(text_variant(tmp_path, lambda _: text))
    listed = [line for line in str(caught.value).splitlines() if line.startswith("  - ")]
    assert len(listed) == 12 and all("(10 rows in all)" in line for line in listed[1:]), listed
    many = "\n".join([",".join([*HEADER, *(f"extra{n}" for n in range(40))]), SHIPPED.splitlines()[1] + ",1" * 40])
    with pytest.raises(JobsError, match=r"\.\.\. and 16 more problem\(s\) not listed"):
        TrainingSettings().check_data(text_variant(tmp_path, lambda _: many))


def test_the_file_that_passes_is_what_both_targets_read(tmp_path, outputs_file, capsys):
    # A flag written "1.0" and a number with spaces pass the endpoint, so they pass here, and train.
    data = variant(tmp_path, lambda i, r: cell("anaemia", "1.0")(i, cell("age", " 60 ", 3)(i, r)))
    from jobs.local.features import features, read_data

    X, _ = features(read_data(data), TrainingSettings())
    assert (X["anaemia"].iloc[5], X["age"].iloc[2]) == (1.0, 60.0)
    out = tmp_path / "dry"
    assert (
        main(
            [
                "train",
                "--target",
                "azure",
                "--outputs",
                str(outputs_file),
                "--data",
                str(data),
                "--dry-run",
                "--out",
                str(out),
            ]
        )
        == 0
    ), capsys.readouterr().err


def test_the_smaller_data_messages(tmp_path, outputs_file, capsys):
    trailing = header_variant(tmp_path, ",".join(HEADER) + ",")
    with pytest.raises(JobsError) as caught:
        TrainingSettings().check_data(trailing)
    assert "row index" not in str(caught.value)
    short = variant(tmp_path, lambda i, r: r[:-1] if i == 6 else r)
    with pytest.raises(JobsError) as caught:
        TrainingSettings().check_data(short)
    assert "found empty" not in str(caught.value) and "line 7 has 12" in str(caught.value)
    assert main(["train", "--data", str(tmp_path)]) == 2
    assert f"data file {tmp_path} is a directory; pass --data PATH to the CSV file itself" in capsys.readouterr().err
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    for argv in (
        ["train"],
        ["train", "--target", "azure", "--outputs", str(outputs_file), "--dry-run", "--out", str(tmp_path / "dry")],
    ):
        assert main([*argv, "--data", str(empty)]) == 2
        assert f"data file {empty} is empty; expected a CSV with a header row" in capsys.readouterr().err


# --- review 11: stack outputs' values ---------------------------------------------------------------

BAD_OUTPUTS = [
    ("compute_max_nodes", "three", "'compute_max_nodes' is 'three'; it must be a whole number of nodes, 1 or more"),
    ("compute_max_nodes", 0, "'compute_max_nodes' is the number 0; it must be a whole number"),
    ("compute_max_nodes", 2.5, "'compute_max_nodes' is the number 2.5"),
    ("subscription_id", {"value": "x"}, "'subscription_id' is a JSON object; it must be a GUID"),
    ("subscription_id", "not-a-guid", "'subscription_id' is 'not-a-guid'; it must be a GUID"),
    ("tenant_id", "contoso", "'tenant_id' is 'contoso'; it must be a GUID"),
    ("resource_group", ["rg"], "'resource_group' is a JSON array; it must be a non-empty string"),
    ("workspace_name", 5, "'workspace_name' is the number 5; it must be a non-empty string"),
    ("compute_name", "  ", "'compute_name' is '  '; it must be a non-empty string"),
]


@pytest.mark.parametrize(("key", "value", "fragment"), BAD_OUTPUTS, ids=[f"{k}={v!r}" for k, v, _ in BAD_OUTPUTS])
@pytest.mark.parametrize("dry_run", [True, False])
def test_outputs_values_of_the_wrong_type_or_shape_are_named(
    key, value, fragment, dry_run, tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr("jobs.azure.session.connect", lambda outputs: FakeSession())
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps({**OUTPUTS, key: value}))
    argv = ["train", "--target", "azure", "--outputs", str(path)] + (
        ["--dry-run", "--out", str(tmp_path)] if dry_run else []
    )
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"--outputs {path} has values the job scripts cannot use" in err and fragment in err, err
    assert "pulumi stack output --json >" in err and "Traceback" not in err


def test_outputs_from_the_pulumi_cli_are_checked_too(monkeypatch, tmp_path):
    monkeypatch.setattr(stack_outputs.shutil, "which", lambda _: "/usr/bin/pulumi")

    class Done:
        returncode, stderr, stdout = 0, "", json.dumps({**OUTPUTS, "subscription_id": "x"})

    monkeypatch.setattr(stack_outputs.subprocess, "run", lambda *a, **k: Done())
    with pytest.raises(JobsError, match=r"(?s)the outputs of the Pulumi stack 'dev'.*'subscription_id' is 'x'"):
        stack_outputs.resolve("dev", environ={}, cwd=tmp_path)
    Done.stdout = "Warning: something\n{}"
    with pytest.raises(JobsError, match="is not JSON"):
        stack_outputs.resolve("dev", environ={}, cwd=tmp_path)


# --- review 11: every JSON file refuses repeated keys, says empty, names UTF-16 ----------------------


def test_invoke_file_with_a_repeated_key_is_refused_like_the_endpoint_does(tmp_path, capsys):
    record = json.dumps(json.load((ROOT / "scoring" / "sample-request.json").open())["data"][0])
    request = tmp_path / "request.json"
    request.write_text(f'{{"data": [{record}], "data": [{record}]}}')
    with pytest.raises(JobsError, match=rf"--file {request}: the key 'data' appears more than once"):
        build_request(request)
    request.write_text('{"data": [' + record[:-1] + ', "age": "70"}]}')
    with pytest.raises(JobsError, match="the key 'age' appears more than once"):
        build_request(request)
    assert main(["invoke", "--file", str(request)]) == 2
    assert "the key 'age' appears more than once" in capsys.readouterr().err


def test_outputs_and_config_json_with_a_repeated_key_are_refused(tmp_path):
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(OUTPUTS)[:-1] + ', "workspace_name": "other"}')
    with pytest.raises(JobsError, match="the key 'workspace_name' appears more than once"):
        stack_outputs.resolve("dev", path, environ={}, cwd=tmp_path)
    (tmp_path / "config.json").write_text('{"subscription_id": "a", "subscription_id": "b"}')
    with pytest.raises(JobsError, match=r"config.json: the key 'subscription_id' appears more than once"):
        stack_outputs.resolve("dev", environ={}, cwd=tmp_path)


@pytest.mark.parametrize("content", [b"", b"  \r\n"], ids=["empty", "blank"])
def test_an_empty_json_file_says_it_is_empty(content, tmp_path):
    request = tmp_path / "request.json"
    request.write_bytes(content)
    with pytest.raises(JobsError, match=rf"--file {request} is empty; expected a JSON document"):
        build_request(request)


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_without_a_bom_is_named_not_utf8(encoding, tmp_path):
    request = tmp_path / "request.json"
    request.write_bytes(json.dumps({"data": []}).encode(encoding))
    with pytest.raises(JobsError, match=rf"--file {request} is not UTF-8 text: it looks like UTF-16"):
        build_request(request)
    data = variant(tmp_path, lambda i, row: row, encoding=encoding)
    with pytest.raises(JobsError, match="is not UTF-8 text: it looks like UTF-16"):
        TrainingSettings().check_data(data)


# --- issue 19: compressed and binary files, URLs, JSON Lines, --set with --file, too few rows per class ---


def _zipped(path: Path, members: dict[str, bytes]) -> Path:
    import zipfile

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return path


@pytest.mark.parametrize("kind", ["zip", "zip-from-macos", "gzip", "bzip2", "xz"])
def test_a_compressed_csv_is_read_as_the_csv_inside(kind, tmp_path):
    import bz2
    import gzip
    import lzma

    from jobs.user_files import normalized_csv

    raw = SHIPPED.encode()
    if kind == "zip":  # UCI's own download of dataset 519 is a .zip of the CSV
        data = _zipped(tmp_path / "heart+failure+clinical+records.zip", {DEFAULT_CSV.name: raw})
    elif kind == "zip-from-macos":  # Finder's "Compress" adds these beside the file
        data = _zipped(
            tmp_path / "records.zip",
            {"records/": b"", "records/heart.CSV": raw, "__MACOSX/records/._heart.CSV": b"\x00\x05\x16\x07"},
        )
    else:
        compress, suffix = {
            "gzip": (gzip.compress, ".gz"),
            "bzip2": (bz2.compress, ".bz2"),
            "xz": (lzma.compress, ".xz"),
        }[kind]
        data = tmp_path / f"records.csv{suffix}"
        data.write_bytes(compress(raw))
    table = TrainingSettings().check_data(data)
    assert table.header == HEADER and len(table.rows) == 299
    assert normalized_csv(data, "data") == normalized_csv(DEFAULT_CSV, "data")


@pytest.mark.parametrize(
    ("members", "fragments"),
    [
        (
            {"heart.csv": b"a\n", "heart-copy.csv": b"a\n", "README.txt": b"x"},
            ["is a zip archive with 2 CSV files (heart.csv, heart-copy.csv)", "`unzip -j", "'heart.csv'`"],
        ),
        (
            {"heart.xlsx": b"x", "notes/README.txt": b"x"},
            ["is a zip archive with no .csv file in it (it holds heart.xlsx, notes/README.txt)", "`unzip "],
        ),
        ({}, ["is a zip archive with no files in it"]),
    ],
    ids=["two CSVs", "no CSV", "empty"],
)
def test_a_zip_without_exactly_one_csv_says_what_is_inside_and_what_to_do(members, fragments, tmp_path, capsys):
    data = _zipped(tmp_path / "download.zip", members)
    assert main(["train", "--data", str(data)]) == 2
    err = capsys.readouterr().err
    assert f"data file {data} " in err and "Traceback" not in err
    for fragment in fragments:
        assert fragment in err


def test_an_encrypted_zip_says_so(tmp_path):
    data = _zipped(tmp_path / "secret.zip", {"heart.csv": SHIPPED.encode()})
    raw = bytearray(data.read_bytes())
    central = raw.index(b"PK\x01\x02")
    raw[central + 8] |= 0x01  # the central directory's "encrypted" flag bit, as `zip -e` sets it
    data.write_bytes(bytes(raw))
    with pytest.raises(JobsError, match=r"is a zip archive whose CSV is encrypted .* with its password"):
        TrainingSettings().check_data(data)


def test_a_compressed_file_past_the_bound_is_refused_without_reading_it_all(tmp_path, monkeypatch):
    import gzip

    from jobs import user_files

    monkeypatch.setattr(user_files, "MAX_DECOMPRESSED_BYTES", 4 * 1024 * 1024)
    bomb = tmp_path / "bomb.csv.gz"
    bomb.write_bytes(gzip.compress(b"age\n" + b"1\n" * (5 * 1024 * 1024)))
    with pytest.raises(JobsError, match=r"is more than 4 MiB once decompressed"):
        TrainingSettings().check_data(bomb)
    zipped = _zipped(tmp_path / "bomb.zip", {"bomb.csv": b"age\n" + b"1\n" * (5 * 1024 * 1024)})
    with pytest.raises(JobsError, match=r"bomb.csv inside it is more than 4 MiB once decompressed"):
        TrainingSettings().check_data(zipped)


def _xlsx() -> bytes:
    # The parts ECMA-376 requires of a workbook, which is all the check looks at.
    out = io.BytesIO()
    import zipfile

    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("_rels/.rels", "<Relationships/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
        archive.writestr("xl/worksheets/sheet1.xml", "<worksheet/>")
    return out.getvalue()


def _ods() -> bytes:
    out = io.BytesIO()
    import zipfile

    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        archive.writestr("content.xml", "<office:document-content/>")
    return out.getvalue()


def _tar_gz() -> bytes:
    import gzip
    import tarfile

    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as archive:
        info = tarfile.TarInfo("heart.csv")
        info.size = len(SHIPPED.encode())
        archive.addfile(info, io.BytesIO(SHIPPED.encode()))
    return gzip.compress(out.getvalue())


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("records.xlsx", _xlsx(), "is an Excel workbook (.xlsx), not a CSV; save its sheet as a CSV"),
        ("records.ods", _ods(), "is an OpenDocument spreadsheet (.ods), not a CSV"),
        ("records.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 512, "is an Excel 97-2003 workbook (.xls)"),
        ("records.parquet", b"PAR1\x15\x04\x15\x00" + b"\x00" * 64 + b"PAR1", "is a Parquet file, not a CSV"),
        ("records.tar.gz", _tar_gz(), "holds a tar archive, not a CSV; extract it (`tar -xf"),
        ("records.csv.zst", b"\x28\xb5\x2f\xfd" + b"\x00" * 16, "is zstd-compressed, which is not read here"),
        ("records.csv.7z", b"7z\xbc\xaf\x27\x1c" + b"\x00" * 16, "is 7z-compressed"),
    ],
)
def test_a_file_of_another_format_is_named_with_what_to_do(name, content, fragment, tmp_path, capsys):
    data = tmp_path / name
    data.write_bytes(content)
    assert main(["train", "--data", str(data)]) == 2
    err = capsys.readouterr().err
    assert fragment in err, err
    assert "UTF-16" not in err and "Traceback" not in err


def test_a_binary_file_is_not_called_utf16_but_a_utf16_file_still_is(tmp_path):
    png = tmp_path / "chart.csv"
    png.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    with pytest.raises(
        JobsError, match=r"is not text: it has a NUL byte at offset 8.* starts with the bytes 89 50 4e 47"
    ):
        TrainingSettings().check_data(png)
    for encoding in ("utf-16-le", "utf-16-be"):
        data = variant(tmp_path, lambda i, row: row, name=f"{encoding}.csv", encoding=encoding)
        with pytest.raises(JobsError, match="is not UTF-8 text: it looks like UTF-16"):
            TrainingSettings().check_data(data)


def test_a_compressed_request_file_is_named_not_called_utf16(tmp_path):
    import gzip

    request = tmp_path / "request.json.gz"
    request.write_bytes(gzip.compress(json.dumps(SAMPLE).encode()))
    with pytest.raises(JobsError, match=rf"--file {request} is gzip-compressed, not text; decompress it \(`gunzip -k"):
        build_request(request)


@pytest.mark.parametrize(
    ("url", "fragments"),
    [
        (
            "https://archive.ics.uci.edu/static/public/519/heart+failure+clinical+records.zip",
            [
                "is a URL, not a file on this machine",
                "`curl -L -o heart+failure+clinical+records.zip 'https://archive.ics.uci.edu/static/public/519/",
                "a .zip or .gz of one CSV is read as it is",
            ],
        ),
        (
            "azureml://subscriptions/0/resourcegroups/r/workspaces/w/data/heart-failure-records/versions/3",
            ["`az ml data download --name heart-failure-records --version 3 --download-path"],
        ),
        ("azureml:heart-failure-records:3", ["is an Azure ML data asset reference", "--name heart-failure-records"]),
        (
            "wasbs://data@account.blob.core.windows.net/uci/heart.csv",
            ["`azcopy copy 'https://account.blob.core.windows.net/data/uci/heart.csv' heart.csv`"],
        ),
        ("s3://bucket/heart.csv", ["is a URL", "that storage's own tool"]),
    ],
)
def test_a_url_handed_to_data_is_named_a_url_with_how_to_fetch_it(url, fragments, capsys):
    assert main(["train", "--data", url]) == 2
    err = capsys.readouterr().err
    assert f"data file {url} is " in err  # as typed: not with the "//" folded
    assert "does not exist" not in err and "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, err


def test_a_url_handed_to_invoke_file_is_named_a_url(capsys):
    assert main(["invoke", "--file", "https://example.org/request.json"]) == 2
    err = capsys.readouterr().err
    assert "--file https://example.org/request.json is a URL" in err and "curl -L -o request.json" in err


SAMPLE = json.loads((ROOT / "scoring" / "sample-request.json").read_text())["data"][0]


@pytest.mark.parametrize("name", ["patients.jsonl", "patients.ndjson", "patients.json", "patients.txt"])
def test_invoke_file_in_json_lines_sends_one_record_per_line(name, tmp_path):
    request = tmp_path / name
    lines = [json.dumps(SAMPLE), "", json.dumps({**SAMPLE, "age": "80"})]
    request.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode())  # a BOM and CRLF, as PowerShell writes
    assert build_request(request) == {"data": [SAMPLE, {**SAMPLE, "age": "80"}]}


def test_invoke_file_takes_what_data_collection_wrote(tmp_path):
    from jobs.dataset import default_schema
    from scoring.collect import Collector, whole_number_columns

    FEATURE_NAMES = default_schema().feature_names  # the endpoint's, as score.py passes them
    parse_request = default_schema().request_schema().parse_request
    collector = Collector("local", tmp_path / "collected", model="3")
    rows = parse_request(data=[SAMPLE, {**SAMPLE, "age": "80"}]).rows
    kinds = {f.name: f.kind for f in default_schema().features}
    # As score.py collects them: flags and whole-number fields as ints (scoring/collect.py whole_number_columns).
    collector.scored(rows, FEATURE_NAMES, {"result": [False, True]}, whole_number_columns(FEATURE_NAMES, kinds))
    refused = {"record": 0, "field": "age", "problem": "131 is outside the possible range", "kind": "out_of_range"}
    collector.refused([refused], FEATURE_NAMES)
    assert collector.flush()
    scored = tmp_path / "collected" / "scored.jsonl"
    assert len(scored.read_text().splitlines()) == 3
    payload = build_request(scored, ["time=200"])
    # The scored records, as the model saw them (the refusal line has no values), each with --set applied.
    assert [record["age"] for record in payload["data"]] == [60.0, 80.0]
    assert all(record["time"] == "200" for record in payload["data"])
    assert parse_request(**{"data": payload["data"]}).rows[1][0] == 80.0  # the endpoint takes them back
    assert type(json.loads(scored.read_text().splitlines()[0])["features"]["anaemia"]) is int


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ('{"age": 60}\n{"age": 61\n', r"line 2 is not JSON \(Expecting ',' delimiter at column 11\); in JSON Lines"),
        ('{"age": 60}\n[1, 2]\n', r"line 2 holds a JSON list, not a record; in JSON Lines each line is one record"),
        ('{"age": 60}\n{"age": 1, "age": 2}\n', r"line 2: the key 'age' appears more than once"),
        ("\n\n", r"is empty; expected JSON Lines, one JSON record per line"),
        ('{"kind":"refused","records":1,"reasons":[]}\n', r"holds no record to send: its 1 line\(s\) are data"),
    ],
)
def test_a_json_lines_file_that_cannot_be_sent_names_its_line(content, fragment, tmp_path):
    request = tmp_path / "patients.jsonl"
    request.write_text(content)
    with pytest.raises(JobsError, match=rf"--file {request}:? {fragment}"):
        build_request(request)


def test_a_pretty_printed_json_file_is_still_one_document(tmp_path):
    request = tmp_path / "request.json"
    request.write_text(json.dumps({"data": [SAMPLE]}, indent=2))
    assert build_request(request) == {"data": [SAMPLE]}
    request.write_text(json.dumps({"data": [SAMPLE]}, indent=2) + "\n}")
    with pytest.raises(JobsError, match=rf"--file {request} is not JSON: Extra data"):
        build_request(request)


@pytest.mark.parametrize(
    ("payload", "records"),
    [
        ({"data": [SAMPLE, {**SAMPLE, "age": "70"}]}, lambda p: p["data"]),
        ([SAMPLE], lambda p: p["data"]),
        ({"Inputs": {"data": [SAMPLE]}, "GlobalParameters": 1.0}, lambda p: p["Inputs"]["data"]),
        (
            {"input_data": {"columns": list(SAMPLE), "index": [0], "data": [list(SAMPLE.values())]}},
            lambda p: [dict(zip(p["input_data"]["columns"], row, strict=True)) for row in p["input_data"]["data"]],
        ),
    ],
    ids=["data", "array", "Inputs", "input_data"],
)
def test_invoke_file_with_set_changes_that_field_of_every_record(payload, records, tmp_path):
    request = tmp_path / "patient.json"
    request.write_text(json.dumps(payload))
    sent = build_request(request, ["ejection_fraction=20", "smoking=true"])
    changed = records(sent)
    assert changed and all(r["ejection_fraction"] == "20" and r["smoking"] == "true" for r in changed)
    assert [r["age"] for r in changed] == [r["age"] for r in records(build_request(request))]  # the rest kept


def test_invoke_file_with_set_of_a_field_the_records_lack_adds_it_and_a_typo_is_refused(tmp_path, capsys):
    without_time = {key: value for key, value in SAMPLE.items() if key != "time"}
    request = tmp_path / "patient.json"
    request.write_text(json.dumps({"data": [without_time]}))
    assert build_request(request, ["time=100"])["data"] == [{**without_time, "time": "100"}]
    assert main(["invoke", "--file", str(request), "--set", "ejection_fractoin=20"]) == 2
    err = capsys.readouterr().err
    assert "--set 'ejection_fractoin=20': expected FIELD=VALUE with FIELD one of age, anaemia" in err
    request.write_text(json.dumps({"data": [SAMPLE, 7]}))
    with pytest.raises(
        JobsError, match=r"--set cannot change record 1 of --file .* \(data\[1\] is not a JSON object\)"
    ):
        build_request(request, ["age=70"])
    request.write_text(json.dumps({"nothing": []}))
    with pytest.raises(JobsError, match=r"--set applies to every record of --file .* but it has no array of records"):
        build_request(request, ["age=70"])


@pytest.mark.parametrize(
    ("ones", "zeros", "folds", "expected", "absent"),
    [
        (3, 20, 5, "add at least 2 more row(s) of 1, or lower --cv-folds to 3 (the smaller class's count)", None),
        (1, 20, 5, "add at least 4 more row(s) of 1, or add 1 more row(s) of 1 and pass --cv-folds 2", "lower"),
        (
            1,
            20,
            2,
            "2-fold cross-validation needs at least 2 of each: add at least 1 more row(s) of 1 (--cv-folds "
            "cannot go lower than 2)",
            "lower --cv-folds",
        ),
        (20, 0, 5, "a classifier needs rows of both: the file has no row of 0", "--cv-folds"),
        (3, 4, 5, "add at least 2 more row(s) of 1 and at least 1 more row(s) of 0, or lower --cv-folds to 3", None),
    ],
)
def test_too_few_rows_of_a_class_says_the_counts_and_what_would_do(ones, zeros, folds, expected, absent, tmp_path):
    rows = SHIPPED.splitlines()
    data = tmp_path / "few.csv"
    data.write_text(
        "\n".join(
            [
                rows[0],
                *[r for r in rows[1:] if r.endswith(",1")][:ones],
                *[r for r in rows[1:] if r.endswith(",0")][:zeros],
            ]
        )
        + "\n"
    )
    with pytest.raises(JobsError) as caught:
        TrainingSettings(n_cross_validations=folds).check_data(data)
    message = str(caught.value)
    assert f"the label DEATH_EVENT has {ones} row(s) of 1 and {zeros} of 0; {folds}-fold" in message
    assert expected in message
    if absent:
        assert absent not in message


@pytest.mark.parametrize(
    ("name", "staged"),
    [
        ("heart.csv", "heart.csv"),
        ("heart.CSV.GZ", "heart.CSV"),
        ("heart+failure.zip", "heart+failure.csv"),
        ("d.xz", "d.csv"),
    ],
)
def test_a_compressed_csv_written_out_again_is_named_as_a_csv(name, staged):
    from jobs.user_files import staged_csv_name

    assert staged_csv_name(Path(name)) == staged


@pytest.mark.parametrize("value", [0, {}, False])
def test_a_required_output_that_is_there_but_wrong_is_a_bad_value_not_a_missing_one(tmp_path, value):
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({**OUTPUTS, "subscription_id": value}))
    with pytest.raises(JobsError) as refused:
        stack_outputs.resolve("dev", outputs_file=outputs, environ={}, cwd=tmp_path)
    assert "has no subscription_id" not in str(refused.value) and "'subscription_id' is" in str(refused.value)


def test_missing_outputs_and_bad_ones_come_out_together_and_a_flag_is_not_blamed_on_the_file(tmp_path):
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({"subscription_id": "nope", "resource_group": "r"}))
    with pytest.raises(JobsError) as refused:
        stack_outputs.resolve("dev", outputs_file=outputs, environ={}, cwd=tmp_path)
    assert "has no workspace_name" in str(refused.value) and "'subscription_id' is 'nope'" in str(refused.value)
    outputs.write_text(json.dumps(OUTPUTS))
    with pytest.raises(JobsError) as refused:
        stack_outputs.resolve(
            "dev", outputs_file=outputs, environ={}, cwd=tmp_path, overrides={"subscription_id": "alsobad"}
        )
    message = str(refused.value)
    assert message.startswith("the workspace's coordinates has values") and "(from a flag)" in message
    assert "Correct it in the file" not in message
