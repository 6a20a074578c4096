"""The command line and the Azure connection: help, messages for what is missing, dry runs."""

from __future__ import annotations

import argparse
import json
import re
import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from azure.ai.ml import load_data, load_job, load_model, load_online_deployment

from jobs.azure import stack_outputs
from jobs.cli import main
from jobs.commands import JOBS
from jobs.dataset import content_version

ROOT = Path(__file__).resolve().parents[2]
OUTPUTS = {
    "subscription_id": "00000000-0000-0000-0000-000000000001",
    "resource_group": "rg-azureml-heart-failure-dev-x",
    "workspace_name": "mlw-dev-x",
    "compute_name": "cpu-dev-x-aml",
    "compute_max_nodes": 3,
    "endpoint_name": "hf-dev-x",
    "location": "westeurope",
    "scoring_uri": "https://hf-dev-x/score",
    "studio_url": "https://ml.azure.com/?wsid=x",
}


@pytest.fixture
def outputs_file(tmp_path):
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(OUTPUTS))
    return path


@pytest.fixture(autouse=True)
def no_pulumi_cli(monkeypatch):
    monkeypatch.setattr(stack_outputs.shutil, "which", lambda _: None)
    for var in stack_outputs.ENV.values():
        monkeypatch.delenv(var, raising=False)


def help_of(command: str, capsys) -> tuple[str, set[str]]:
    """The help text unwrapped, and the flags it lists."""
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    return " ".join(text.split()), set(re.findall(r"^ +(?:-h, )?(--[a-z][a-z-]+)", text, re.MULTILINE))


AZURE_CONNECTION = {
    "--stack",
    "--outputs",
    "--subscription-id",
    "--resource-group",
    "--workspace",
    "--dry-run",
    "--out",
}
TRAINING = {
    "--data",
    "--metric",
    "--timeout-minutes",
    "--max-concurrent-trials",
    "--no-early-termination",
    "--featurization",
    "--trial-timeout-minutes",
    "--max-trials",
    "--cv-folds",
    "--block-model",
    "--drop",
    "--seed",
    "--local-budget-seconds",
}
DEPLOY = {"--instance-type", "--instance-count", "--port", "--collect"}
INVOKE = {"--file", "--set", "--probability"}
OWN_FLAGS = {
    "train": AZURE_CONNECTION | TRAINING | {"--wait", "--label", "--include-leaking-columns"},
    "register": AZURE_CONNECTION | {"--run", "--min-auc"},
    "deploy": AZURE_CONNECTION | DEPLOY | {"--version", "--threshold", "--min-sensitivity", "--env"},
    "invoke": AZURE_CONNECTION | INVOKE | {"--env"},
    "promote": AZURE_CONNECTION
    | {"--version", "--to", "--port", "--instance-type", "--instance-count", "--threshold", "--collect"},
    "rollback": AZURE_CONNECTION | {"--to", "--port"},
    "all": AZURE_CONNECTION
    | TRAINING
    | {"--min-auc", "--label", "--include-leaking-columns", "--threshold", "--min-sensitivity"}
    | DEPLOY
    | INVOKE,
    "pipeline": AZURE_CONNECTION
    | TRAINING
    | {"--wait", "--min-auc", "--with-deploy", "--label", "--include-leaking-columns"}
    | {"--threshold", "--min-sensitivity"}
    | DEPLOY,
    "monitor": AZURE_CONNECTION
    | {
        "--version",
        "--numerical-metric",
        "--numerical-threshold",
        "--categorical-metric",
        "--categorical-threshold",
        "--prediction-threshold",
        "--window-hours",
        "--max-refused-share",
        "--min-records",
        "--reference",
        "--email",
    },
    "status": {"--env"},
    "stop": {"--env"},
    "ui": {"--env", "--port"},
}


@pytest.mark.parametrize("command", sorted(OWN_FLAGS))
def test_each_commands_help_lists_its_own_flags_with_defaults(command, capsys):
    text, listed = help_of(command, capsys)
    assert listed - {"--help"} == OWN_FLAGS[command] | {"--target"}
    assert "(default: local)" in text
    if command in ("train", "all"):
        assert "(default: AUC_weighted)" in text and "(default: 20)" in text and "(default: 3)" in text
    if command in ("deploy", "all"):
        assert "(default: Standard_DS3_v2)" in text


def test_dry_run_writes_specs_that_load_back(outputs_file, tmp_path, capsys):
    out = tmp_path / "specs"
    code = main(
        ["all", "--target", "azure", "--outputs", str(outputs_file), "--dry-run", "--out", str(out), "--drop", "time"]
    )
    assert code == 0, capsys.readouterr().err

    data = load_data(str(out / "data.yml"))
    assert data.name == "heart-failure-records"
    assert data.version == content_version(ROOT / "data" / "heart_failure_clinical_records_dataset.csv", ("time",))
    table = yaml.safe_load((out / Path(yaml.safe_load((out / "data.yml").read_text())["path"]) / "MLTable").read_text())
    assert {"drop_columns": ["time"]} in table["transformations"]

    job = load_job(str(out / "automl-job.yml"))
    assert job.type == "automl" and job.task_type.lower() == "classification"
    assert job.target_column_name == "DEATH_EVENT"
    assert job.compute == "cpu-dev-x-aml"
    assert (job.limits.timeout_minutes, job.limits.max_concurrent_trials) == (20, 3)
    assert job.limits.enable_early_termination is True
    raw_job = (out / "automl-job.yml").read_text()
    assert yaml.safe_load(raw_job)["training_data"]["path"] == f"azureml:heart-failure-records:{data.version}"
    assert "azureml:./" not in raw_job and "azureml:/" not in raw_job

    model = load_model(str(out / "model.yml"))
    assert model.type == "mlflow_model" and model.name == "heart-failure-automl"
    assert model.path.endswith("/outputs/artifacts/paths/outputs/mlflow-model/")

    deployment = load_online_deployment(str(out / "deployment.yml"))
    assert deployment.endpoint_name == "hf-dev-x"
    assert (deployment.instance_type, deployment.instance_count) == ("Standard_DS3_v2", 1)
    assert deployment.app_insights_enabled is True
    raw = yaml.safe_load((out / "deployment.yml").read_text())
    assert (out / raw["code_configuration"]["code"] / "score.py").is_file()

    request = json.loads((out / "request.json").read_text())
    assert request["data"][0]["serum_creatinine"] == "1.40"


def test_dry_run_needs_no_credentials_and_no_pulumi(outputs_file, tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a dry run must not connect")

    monkeypatch.setattr("jobs.azure.session.connect", refuse)
    assert (
        main(["train", "--target", "azure", "--outputs", str(outputs_file), "--dry-run", "--out", str(tmp_path / "o")])
        == 0
    )


def test_missing_stack_outputs_say_what_to_run(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = main(["train", "--target", "azure", "--stack", "prod"])
    err = capsys.readouterr().err
    assert code == 2
    assert "cannot locate the Azure ML workspace" in err
    assert "pulumi up --stack prod" in err and "--outputs FILE" in err
    assert "Traceback" not in err


def test_an_outputs_file_that_is_not_json_is_named(tmp_path, capsys):
    bad = tmp_path / "outputs.json"
    bad.write_text("Current stack outputs (3):")
    assert main(["train", "--target", "azure", "--outputs", str(bad)]) == 2
    assert f"--outputs {bad} is not JSON" in capsys.readouterr().err


def test_flags_and_environment_override_the_outputs(outputs_file, monkeypatch):
    monkeypatch.setenv("AZUREML_ENDPOINT_NAME", "hf-from-env")
    resolved = stack_outputs.resolve("dev", outputs_file, {"workspace_name": "mlw-from-flag"})
    assert (resolved.workspace_name, resolved.endpoint_name) == ("mlw-from-flag", "hf-from-env")
    assert resolved.compute_max_nodes == 3


def test_config_json_locates_the_workspace(tmp_path):
    (tmp_path / "config.json").write_text(
        json.dumps(
            {"subscription_id": "00000000-0000-0000-0000-0000000000aa", "resource_group": "r", "workspace_name": "w"}
        )
    )
    resolved = stack_outputs.resolve("dev", environ={}, cwd=tmp_path)
    assert (resolved.subscription_id, resolved.resource_group, resolved.workspace_name) == (
        "00000000-0000-0000-0000-0000000000aa",
        "r",
        "w",
    )


def test_missing_credentials_say_az_login(outputs_file, capsys, monkeypatch):
    from azure.core.exceptions import ClientAuthenticationError

    class NoCredential:
        def __init__(self, **kwargs):
            pass

        def get_token(self, *scopes):
            raise ClientAuthenticationError(
                "DefaultAzureCredential failed to retrieve a token: EnvironmentCredential"
                ", ManagedIdentityCredential, AzureCliCredential ..."
            )

    monkeypatch.setattr("azure.identity.DefaultAzureCredential", NoCredential)
    code = main(["register", "--target", "azure", "--outputs", str(outputs_file), "--job", "x"])
    err = capsys.readouterr().err
    assert code == 2
    assert "could not get an Azure token (no login found" in err and "run `az login`" in err
    assert "Traceback" not in err and "ManagedIdentityCredential" not in err


def test_local_target_refuses_dry_run(capsys):
    assert main(["train", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "--dry-run applies to --target azure only (it builds Azure ML specs); " in err
    assert "((" not in err and "))" not in err


def refused(argv: list[str], capsys) -> str:
    """The error of a command line that must be refused before anything runs."""
    try:
        code = main(argv)
    except SystemExit as done:  # argparse's own refusals
        code = done.code
    assert code == 2, argv
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return " ".join(err.split())


@pytest.fixture
def nothing_runs(monkeypatch):
    """Any backend work fails the test: a refused command line must stop before it."""

    def forbidden(*args, **kwargs):
        raise AssertionError("the command ran although its flags should have been refused")

    monkeypatch.setattr("jobs.cli.make_backend", forbidden)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["train", "--local-budget-seconds", "0"],
            "argument --local-budget-seconds: 0 is not allowed; allowed: above 0 and at most 604800 seconds",
        ),
        (["train", "--local-budget-seconds", "-5"], "argument --local-budget-seconds: -5 is not allowed"),
        (["train", "--local-budget-seconds", "nan"], "argument --local-budget-seconds: nan is not allowed"),
        (["train", "--local-budget-seconds", "inf"], "argument --local-budget-seconds: inf is not allowed"),
        (["all", "--local-budget-seconds", "soon"], "argument --local-budget-seconds: 'soon' is not a number"),
        (["register", "--min-auc", "1.5"], "argument --min-auc: 1.5 is not allowed; allowed: from 0 to 1"),
        (["register", "--min-auc", "-0.1"], "argument --min-auc: -0.1 is not allowed; allowed: from 0 to 1"),
        (["register", "--min-auc", "nan"], "argument --min-auc: nan is not allowed"),
        (["deploy", "--port", "80"], "argument --port: 80 is not allowed; allowed: a whole number from 1024 to 65535"),
        (["deploy", "--port", "70000"], "argument --port: 70000 is not allowed"),
        (["deploy", "--port", "5001.5"], "argument --port: '5001.5' is not a whole number"),
        (
            ["deploy", "--target", "azure", "--instance-count", "0"],
            "argument --instance-count: 0 is not allowed; allowed: a whole number, at least 1",
        ),
        (["train", "--seed", "-1"], "argument --seed: -1 is not allowed; allowed: a whole number from 0 to 4294967295"),
        (
            ["train", "--max-trials", "0"],
            "argument --max-trials: 0 is not allowed; allowed: a whole number from 1 to 1000",
        ),
        # Reproducible mode has no time limit: an unbounded trial count would never end.
        (["train", "--max-trials", "999999999999"], "argument --max-trials: 999999999999 is not allowed"),
        (["train", "--cv-folds", "1"], "argument --cv-folds: 1 is not allowed; allowed: a whole number from 2 to 20"),
        (["train", "--timeout-minutes", "0"], "argument --timeout-minutes: 0 is not allowed; allowed: above 0"),
        (["train", "--timeout-minutes", "nan"], "argument --timeout-minutes: nan is not allowed"),
        (
            ["all", "--target", "azure", "--max-concurrent-trials", "0"],
            "argument --max-concurrent-trials: 0 is not allowed; allowed: a whole number, at least 1",
        ),
        (["pipeline", "--trial-timeout-minutes", "-1"], "argument --trial-timeout-minutes: -1 is not allowed"),
        (
            ["pipeline", "--trial-timeout-minutes", "30", "--timeout-minutes", "20"],
            "--trial-timeout-minutes 30 must be above 0 and at most --timeout-minutes (20)",
        ),
        (["deploy", "--version", "0"], "argument --version: 0 is not allowed; allowed: a whole number, at least 1"),
        (["deploy", "--target", "azure", "--version", "abc"], "argument --version: 'abc' is not a whole number"),
        (["monitor", "--version", "-2"], "argument --version: -2 is not allowed"),
        (
            ["deploy", "--target", "azure", "--instance-type", ""],
            "--instance-type '' is not an Azure VM size name; expected one such as Standard_DS3_v2",
        ),
        (
            ["deploy", "--target", "azure", "--instance-type", "Standard DS3"],
            "--instance-type 'Standard DS3' is not an Azure VM size name",
        ),
        (
            ["pipeline", "--target", "azure", "--with-deploy", "--instance-type", "DS3_v2"],
            "--instance-type 'DS3_v2' is not an Azure VM size name",
        ),
        (
            ["monitor", "--numerical-threshold", "0"],
            "argument --numerical-threshold: 0 is not allowed; allowed: a number above 0",
        ),
        (["monitor", "--categorical-threshold", "nan"], "argument --categorical-threshold: nan is not allowed"),
        (["monitor", "--prediction-threshold", "-0.1"], "argument --prediction-threshold: -0.1 is not allowed"),
        (["monitor", "--window-hours", "0"], "argument --window-hours: 0 is not allowed; allowed: above 0 and at most"),
        (["monitor", "--window-hours", "99999999999"], "argument --window-hours: 99999999999 is not allowed"),
        (["monitor", "--window-hours", "inf"], "argument --window-hours: inf is not allowed"),
        (
            ["monitor", "--max-refused-share", "1.5"],
            "argument --max-refused-share: 1.5 is not allowed; allowed: from 0 to 1",
        ),
        (
            ["monitor", "--min-records", "0"],
            "argument --min-records: 0 is not allowed; allowed: a whole number, at least 1",
        ),
        (["monitor", "--min-records", "10.5"], "argument --min-records: '10.5' is not a whole number"),
        (
            ["monitor", "--categorical-metric", "pearsons_chi_squared_test", "--prediction-threshold", "2"],
            "--prediction-threshold 2 is a p-value for pearsons_chi_squared_test; allowed: above 0 and at most 1",
        ),
    ],
)
def test_every_numeric_flag_is_validated_before_anything_runs(argv, message, capsys, nothing_runs):
    assert message in refused(argv, capsys)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["all", "--run", "X", "--version", "1"], "unrecognized arguments: --run X --version 1"),
        (["deploy", "--min-auc", "0.5"], "unrecognized arguments: --min-auc 0.5"),
        (["status", "--port", "5001"], "unrecognized arguments: --port 5001"),
        (["stop", "--stack", "dev"], "unrecognized arguments: --stack dev"),
        (["train", "--stack", "prod"], "--stack applies to --target azure only"),
        (["register", "--outputs", "o.json"], "--outputs applies to --target azure only"),
        (["train", "--wait"], "--wait applies to --target azure only"),
        (
            ["train", "--max-concurrent-trials", "64"],
            "--max-concurrent-trials applies to --target azure only (local training runs one trial at a time)",
        ),
        (
            ["train", "--max-trials", "5", "--local-budget-seconds", "10"],
            "--local-budget-seconds does not apply with --max-trials on --target local (the reproducible mode stops "
            "after --max-trials trials, with no time limit)",
        ),
        (
            ["all", "--max-trials", "5", "--timeout-minutes", "3"],
            "--timeout-minutes does not apply with --max-trials on --target local",
        ),
        (["deploy", "--instance-count", "2"], "--instance-count applies to --target azure only"),
        (["deploy", "--target", "azure", "--port", "5002"], "--port applies to --target local only"),
        (
            ["train", "--target", "azure", "--local-budget-seconds", "5"],
            "--local-budget-seconds applies to --target local only (Azure AutoML runs for --timeout-minutes)",
        ),
        (["train", "--target", "azure", "--seed", "7"], "--seed applies to --target local only"),
        (["train", "--target", "azure", "--out", "d"], "--out is the folder for --dry-run"),
        (
            ["pipeline", "--target", "azure", "--instance-type", "Standard_DS2_v2"],
            "--instance-type applies only with --with-deploy",
        ),
        (["pipeline", "--port", "5002"], "--port applies only with --with-deploy"),
        (["train", "--collect"], "unrecognized arguments: --collect"),
        (["register", "--collect"], "unrecognized arguments: --collect"),
        (["invoke", "--collect"], "unrecognized arguments: --collect"),
        (["monitor", "--collect"], "unrecognized arguments: --collect"),
        (["pipeline", "--collect"], "--collect applies only with --with-deploy"),
        (
            ["pipeline", "--target", "azure", "--with-deploy", "--collect"],
            "--collect is not carried by the Azure pipeline's deploy step",
        ),
        (["deploy", "--numerical-threshold", "0.2"], "unrecognized arguments: --numerical-threshold 0.2"),
        (["monitor", "--port", "5002"], "unrecognized arguments: --port 5002"),
        (["monitor", "--email", "ml-team@example.com"], "--email applies to --target azure only"),
        (["monitor", "--target", "azure", "--reference", "data.csv"], "--reference applies to --target local only"),
        (
            ["monitor", "--target", "azure", "--max-refused-share", "0.1"],
            "--max-refused-share applies to --target local only",
        ),
        (["monitor", "--target", "azure", "--min-records", "50"], "--min-records applies to --target local only"),
    ],
)
def test_flags_that_do_not_apply_are_refused(argv, message, capsys, nothing_runs):
    assert message in refused(argv, capsys)


def test_flags_that_do_not_apply_are_listed_together(capsys, nothing_runs):
    err = refused(["deploy", "--stack", "dev", "--instance-type", "x", "--instance-count", "2"], capsys)
    for flag in ("--stack", "--instance-type", "--instance-count"):
        assert f"{flag} applies to --target azure only" in err


def test_a_refusal_names_jobs_target_when_the_target_came_from_it(capsys, nothing_runs, monkeypatch):
    monkeypatch.setenv("JOBS_TARGET", "azure")
    err = refused(["deploy", "--port", "5002"], capsys)
    assert "--port applies to --target local only" in err and "--target azure (from $JOBS_TARGET)" in err


def test_the_target_may_come_before_the_command(outputs_file, tmp_path, capsys):
    out = tmp_path / "specs"
    assert main(["--target", "azure", "train", "--outputs", str(outputs_file), "--dry-run", "--out", str(out)]) == 0
    assert (out / "automl-job.yml").is_file()
    # Given on both sides, the one after the command wins, as for any flag given twice.
    assert "--dry-run applies to --target azure only" in refused(
        ["--target", "azure", "train", "--target", "local", "--dry-run"], capsys
    )


@pytest.mark.parametrize("argv", [["status", "--target", "azure"], ["--target", "azure", "stop"]])
def test_status_and_stop_for_azure_say_where_to_look(argv, capsys, monkeypatch):
    monkeypatch.chdir(Path("/"))  # no config.json, no outputs: a workspace lookup would fail
    err = refused(argv, capsys)
    assert f"`{argv[-1] if argv[0] == '--target' else argv[0]}` is for the local endpoint" in err
    assert "pulumi stack output studio_url" in err
    assert "workspace" not in err


def test_all_with_a_taken_port_fails_before_training(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("JOBS_LOCAL_HOME", str(tmp_path / ".local"))
    monkeypatch.setenv("JOBS_RUNS_DIR", str(tmp_path / "runs"))

    def no_training(*args, **kwargs):
        raise AssertionError("training started although the port is taken")

    monkeypatch.setattr("jobs.local.backend.LocalBackend.train", no_training)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        err = refused(["all", "--port", str(port)], capsys)
    assert f"port {port} on 127.0.0.1 is already in use by another program" in err
    assert "choose another with --port (for `make demo`: PORT=, e.g. `make demo PORT=5002`)" in err
    assert "nothing was done" in err


def test_messages_show_a_command_that_works_as_shown(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("JOBS_LOCAL_HOME", str(tmp_path / ".local"))
    monkeypatch.setenv("JOBS_RUNS_DIR", str(tmp_path / "runs"))
    err = refused(["invoke"], capsys)
    # jobs/commands.py: `.venv/bin/python -m jobs` here, `.venv/bin/heart-failure` once `make setup` installed it.
    assert f"run `{JOBS} deploy --target local` first" in err
    err = refused(["register"], capsys)
    assert f"run `{JOBS} train --target local` first" in err
    assert "python -m jobs" not in err.replace(f"{JOBS}", "")
    # What the message shows runs, from where the tests run (the repository root).
    shown = subprocess.run(
        [*shlex.split(JOBS), "status"], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert shown.returncode == 0 and shown.stdout.strip() == "nothing is deployed locally", shown.stderr


def test_outside_the_venv_one_line_says_how_to_run(tmp_path):
    # -S: no site-packages, as with a system Python that never had the project's packages installed.
    result = subprocess.run(
        [sys.executable, "-S", "-m", "jobs", "train"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "lacks the project's packages" in lines[0] and f"`{ROOT}/.venv/bin/heart-failure COMMAND`" in lines[0]
    assert "make setup" in lines[0]


def test_bad_training_flags_are_listed_together(capsys):
    code = main(["train", "--metric", "f1", "--cv-folds", "1", "--block-model", "Magic", "--featurization", "on"])
    err = capsys.readouterr().err
    assert code == 2
    for fragment in ("--metric 'f1'", "--cv-folds: 1", "--block-model Magic", "--featurization 'on'"):
        assert fragment in err


def test_invoke_from_a_file_that_is_not_json(tmp_path, capsys):
    bad = tmp_path / "request.json"
    bad.write_text("{oops")
    assert main(["invoke", "--file", str(bad)]) == 2
    assert f"--file {bad} is not JSON" in capsys.readouterr().err


def test_all_against_the_fake_workspace_trains_registers_deploys_and_invokes(
    outputs_file, tmp_path, monkeypatch, capsys
):
    from jobs.azure.session import RunDetails
    from tests.fakes import FakeMLClient, FakeSession

    session = FakeSession(FakeMLClient(endpoint_name="hf-dev-x"))
    session.ml.job_statuses["automl_job_1"] = ["Running", "Completed"]
    session.runs["automl_job_1"] = RunDetails({"automl_best_child_run_id": "automl_job_1_5"}, {})
    session.runs["automl_job_1_5"] = RunDetails({}, {"AUC_weighted": 0.9})
    monkeypatch.setattr("jobs.azure.session.connect", lambda outputs: session)
    monkeypatch.setattr("jobs.azure.backend.ROOT", tmp_path)  # the last-job state file
    monkeypatch.setattr("time.sleep", lambda seconds: None)

    code = main(["all", "--target", "azure", "--outputs", str(outputs_file), "--threshold", "0.3"])
    out = capsys.readouterr().out
    assert code == 0
    assert json.loads(out.strip().splitlines()[-1])["result"] == [False]
    assert [op for op, _ in session.ml.calls if op.endswith(("create_or_update", "invoke"))] == [
        "data.create_or_update",
        "jobs.create_or_update",
        "models.create_or_update",
        "online_deployments.begin_create_or_update",
        "online_endpoints.invoke",
        "online_endpoints.begin_create_or_update",
        "online_endpoints.invoke",
    ]
    assert session.ml.endpoints["hf-dev-x"].traffic == {"blue": 100}


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_demo_takes_the_port():
    shown = subprocess.run(
        ["make", "-n", "demo", "PORT=5123"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert shown.returncode == 0, shown.stderr
    assert "-m jobs all --target local --port 5123" in shown.stdout


@pytest.mark.parametrize(
    ("port", "problem"), [("abc", "is not a port number"), ("80", "is not a usable port"), ("", "is not a port number")]
)
def test_make_demo_names_port_in_makes_terms(port, problem):
    shown = subprocess.run(
        ["make", "demo-port", f"PORT={port}"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert shown.returncode != 0
    assert f"error: PORT={port} {problem}; use make demo PORT=N" in shown.stdout + shown.stderr
    assert "(make passes it to --port)" in shown.stdout + shown.stderr


def readme_commands() -> dict[str, str]:
    """The command table of the README's "The job scripts" section: command -> what it does."""
    section = (ROOT / "README.md").read_text().split("\n## The job scripts\n", 1)[1].split("\n## ", 1)[0]
    return {
        row[0].strip("`"): row[1]
        for row in (
            [cell.strip() for cell in line.strip("|").split("|")]
            for line in section.splitlines()
            if re.match(r"\| `[a-z]+` \|", line)
        )
    }


def test_every_command_has_help_and_a_readme_entry(capsys):
    from jobs.cli import COMMANDS

    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    top = capsys.readouterr().out
    listed = dict(re.findall(r"^ {4}([a-z]+) +(\S.*)$", top, re.MULTILINE))
    # The ones the README and the parser know are the same; each has a line that fits on one terminal line.
    assert set(listed) == set(COMMANDS) == set(readme_commands())
    for name, line in listed.items():
        assert line == COMMANDS[name].line and len(line) <= 55, name
        text, _ = help_of(name, capsys)
        assert text.split(" options: ")[0].endswith(" ".join(COMMANDS[name].summary.split())), name
        assert readme_commands()[name], name


def test_the_top_level_help_says_what_the_tool_is_with_an_example(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    assert "heart-failure" in text and "--target local" in text and "--target azure" in text
    assert f"\n  {JOBS} all --target local" in text  # an example, indented as a command
    assert "docs/jobs.md" in text and "docs/cli.md" in text


class RecordingBackend:
    """A backend that records each call and answers with values no default could produce."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def sample_request(self):
        from jobs.invocation import SAMPLE_REQUEST

        return SAMPLE_REQUEST

    def train(self, settings, data, wait):
        self.calls.append(("train", wait))
        return "run-from-train"

    def register(self, run, min_auc):
        self.calls.append(("register", run))
        return "7"

    def deploy(self, version, options):
        self.calls.append(("deploy", version))
        return version

    def invoke(self, payload):
        self.calls.append(("invoke", len(payload["data"])))
        return {"result": [False]}


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["all"], [("train", True), ("register", "run-from-train"), ("deploy", "7"), ("invoke", 1)]),
        (["pipeline", "--with-deploy"], [("train", True), ("register", "run-from-train"), ("deploy", "7")]),
        (["pipeline"], [("train", True), ("register", "run-from-train")]),
    ],
)
def test_all_and_the_local_pipeline_pass_each_steps_result_to_the_next(argv, expected, monkeypatch, capsys):
    from jobs import cli

    backend = RecordingBackend()
    seen: list[argparse.Namespace] = []
    monkeypatch.setattr(cli, "make_backend", lambda args: seen.append(args) or backend)
    assert main(argv) == 0, capsys.readouterr().err
    assert backend.calls == expected
    # The results went from step to step as values; the parsed flags are what the user typed.
    assert not hasattr(seen[0], "run") and not hasattr(seen[0], "version")


def test_dry_run_invoke_creates_its_out_folder(outputs_file, tmp_path, capsys):
    out = tmp_path / "new" / "specs"
    assert main(["invoke", "--target", "azure", "--outputs", str(outputs_file), "--dry-run", "--out", str(out)]) == 0
    assert json.loads((out / "request.json").read_text())["data"]


@pytest.mark.parametrize("value", ["bogus", "Azure", ""])
def test_a_bad_jobs_target_is_refused_naming_the_variable(value, capsys, nothing_runs, monkeypatch):
    monkeypatch.setenv("JOBS_TARGET", value)
    for argv in (["status"], ["train", "--dry-run"]):
        err = refused(argv, capsys)
        assert f"environment variable JOBS_TARGET={value!r} is not a target; allowed: local, azure" in err


@pytest.mark.parametrize(
    ("argv", "flag", "command"),
    [
        (["--port", "5401", "deploy"], "--port", "deploy"),
        (["--dry-run", "train"], "--dry-run", "train"),
        (["--target", "azure", "--stack=prod", "register"], "--stack", "register"),
    ],
)
def test_a_commands_flag_before_the_command_says_to_move_it(argv, flag, command, capsys, nothing_runs):
    err = refused(argv, capsys)
    assert f"{flag} is a flag of the command: put it after the command (only --target may come before it)" in err
    assert f"`{JOBS} {command} {flag} ...`" in err


def test_instance_type_is_written_in_azures_spelling(outputs_file, tmp_path, capsys):
    out = tmp_path / "specs"
    assert (
        main(
            [
                "deploy",
                "--target",
                "azure",
                "--outputs",
                str(outputs_file),
                "--dry-run",
                "--out",
                str(out),
                "--instance-type",
                "STANDARD_ds3_V2",
            ]
        )
        == 0
    )
    assert load_online_deployment(out / "deployment.yml").instance_type == "Standard_DS3_v2"


def test_a_repeated_block_model_is_blocked_once(outputs_file, tmp_path, capsys):
    out = tmp_path / "specs"
    assert (
        main(
            [
                "train",
                "--target",
                "azure",
                "--outputs",
                str(outputs_file),
                "--dry-run",
                "--out",
                str(out),
                "--block-model",
                "KNN",
                "--block-model",
                "KNN",
            ]
        )
        == 0
    )
    job = load_job(out / "automl-job.yml")
    assert [getattr(m, "value", m) for m in job.training.blocked_training_algorithms] == ["KNN"]


@pytest.mark.parametrize(
    "make_out",
    [
        lambda tmp: (tmp / "a-file").write_text("x") and tmp / "a-file",
        lambda tmp: Path("/proc/nope"),
    ],
)
def test_a_bad_out_is_blamed_on_out_not_on_the_data(make_out, outputs_file, tmp_path, capsys):
    out = make_out(tmp_path)
    err = refused(
        ["train", "--target", "azure", "--outputs", str(outputs_file), "--dry-run", "--out", str(out)], capsys
    )
    assert f"--out {out}" in err and "the data or the settings" not in err


class SchemaBackend(RecordingBackend):
    """Answers invoke as the endpoint's own schema does: a refusal carries scoring/schema.py's body."""

    def invoke(self, payload):
        from jobs.backend import RequestRefused
        from jobs.dataset import default_schema
        from scoring.schema import RequestError

        try:
            default_schema().request_schema().parse_request(
                payload.get("data"), payload.get("input_data"), payload.get("Inputs")
            )
        except RequestError as error:
            raise RequestRefused(400, error.body()) from None
        return {"result": [False]}


@pytest.mark.parametrize(
    ("request_body", "line"),
    [
        # A problem with the whole request: the schema writes its record and field as null.
        (
            {"nothing": 1},
            "  - expected exactly one of the keys data, input_data or Inputs in the JSON body; found none",
        ),
        ({"data": []}, "  - field data: the array of records is empty; send 1 to 1000 records"),
        ({"data": [{"age": "60"}]}, "  - record 0, field anaemia: "),
    ],
)
def test_a_refusal_lists_each_problem_with_only_the_record_and_field_it_has(
    request_body, line, tmp_path, monkeypatch, capsys
):
    from jobs import cli

    monkeypatch.setattr(cli, "make_backend", lambda args: SchemaBackend())
    request = tmp_path / "request.json"
    request.write_text(json.dumps(request_body))
    assert main(["invoke", "--file", str(request)]) == 2
    err = capsys.readouterr().err
    assert any(printed.startswith(line) for printed in err.splitlines()), err
    assert "None" not in err
