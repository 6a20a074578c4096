"""Every bounded flag is declared once (jobs/options.py); the parser, the settings, the endpoint's port check,
the target refusals and `make demo PORT=` all take it from there."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from jobs import cli, options
from jobs.backend import DeployOptions
from jobs.errors import JobsError
from jobs.local import endpoint
from jobs.monitoring.check import Thresholds
from jobs.training import TrainingSettings
from tests.jobs.conftest import ROOT


def refused(argv, capsys):
    assert cli.main(argv) == 2
    return " ".join(capsys.readouterr().err.split())


def test_every_bad_value_is_listed_at_once_not_only_the_first(capsys):
    err = refused(["train", "--cv-folds", "1", "--seed", "-1", "--timeout-minutes", "0"], capsys)
    for flag in ("--cv-folds: 1", "--seed: -1", "--timeout-minutes: 0"):
        assert f"argument {flag} is not allowed" in err


def test_a_value_that_is_no_number_names_what_is_allowed(capsys):
    with pytest.raises(SystemExit) as done:  # argparse's own refusal of a value it cannot convert
        cli.main(["deploy", "--port", "eighty"])
    assert done.value.code == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "argument --port: 'eighty' is not a whole number; allowed: a whole number from 1024 to 65535" in err


@pytest.mark.parametrize(
    ("settings", "flag"),
    [
        (TrainingSettings(n_cross_validations=1), "--cv-folds"),
        (TrainingSettings(seed=-1), "--seed"),  # once only the command line checked it
        (TrainingSettings(timeout_minutes=0), "--timeout-minutes"),
        (TrainingSettings(max_trials=1001), "--max-trials"),
        (TrainingSettings(max_concurrent_trials=0), "--max-concurrent-trials"),
    ],
)
def test_the_settings_check_the_same_bounds_as_the_command_line(settings, flag):
    with pytest.raises(JobsError) as error:
        settings.validate()
    assert f"argument {flag}: " in str(error.value)
    assert options.OPTIONS[next(o.dest for o in options.OPTIONS.values() if o.flag == flag)].bounds.allowed in str(
        error.value
    )


def test_the_monitor_thresholds_use_the_declared_bounds():
    assert Thresholds(max_refused_share=1.5).problems() == [
        "argument --max-refused-share: 1.5 is not allowed; allowed: from 0 to 1"
    ]


def test_the_port_has_one_range_and_one_default():
    assert DeployOptions().port == endpoint.DEFAULT_PORT == options.OPTIONS["port"].default
    with pytest.raises(JobsError, match="allowed: a whole number from 1024 to 65535"):
        endpoint.check_port(1023)
    endpoint.check_port(1024)


def test_the_target_refusals_come_from_the_declarations():
    assert cli.AZURE_ONLY["instance_count"][0] == "--instance-count"
    assert cli.LOCAL_ONLY["seed"] == ("--seed", "Azure AutoML takes no seed")
    assert not set(cli.AZURE_ONLY) & set(cli.LOCAL_ONLY)
    # Every flag the parser has that applies to one target is declared (a flag added without a declaration
    # would be accepted silently on the other target).
    declared = set(options.OPTIONS)
    parser_dests = {
        action.dest
        for sub in cli.build_parser()._subparsers._group_actions[0].choices.values()  # type: ignore[union-attr]
        for action in sub._actions
    }
    assert declared <= parser_dests | {"version"}


def test_the_bounds_read_as_words():
    words = {dest: option.bounds.allowed for dest, option in options.OPTIONS.items() if option.bounds}
    assert words["timeout_minutes"] == "above 0 and at most 10080 (a week)"
    assert words["threshold"] == "above 0 and below 1"
    assert words["instance_count"] == "a whole number, at least 1"
    assert words["local_budget_seconds"] == "above 0 and at most 604800 seconds"


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_nan_and_infinity_are_never_within_bounds(value):
    assert options.OPTIONS["window_hours"].problem(value)
    assert options.OPTIONS["numerical_threshold"].problem(value)


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_demo_without_port_uses_the_declared_default():
    shown = subprocess.run(["make", "-n", "demo"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert shown.returncode == 0, shown.stderr
    assert "-m jobs all --target local" in shown.stdout and "--port" not in shown.stdout.splitlines()[-1]


def test_the_module_command_checks_one_value():
    assert options.main(["port", "5001"]) == 0
    assert options.main(["port", "80"]) == 2
    assert options.main(["nonsense", "1"]) == 2


def test_a_program_passing_strings_or_bools_gets_the_flags_wording_not_a_traceback_later():
    """A script that builds the settings itself (not through the parser) is checked against the same declarations:
    '5001' is not a port and True is not an instance count, even where pydantic's lax mode would read them."""
    from jobs.backend import DeployOptions
    from jobs.monitoring.check import Thresholds
    from jobs.training import TrainingSettings

    assert DeployOptions(port="5001", threshold="0.3").problems() == [
        "argument --port: '5001' is not a whole number; allowed: a whole number from 1024 to 65535",
        "argument --threshold: '0.3' is not a number; allowed: above 0 and below 1",
    ]
    assert DeployOptions(instance_count=True).problems() == [
        "argument --instance-count: True is not a whole number; allowed: a whole number, at least 1"
    ]
    assert "--instance-type None is not an Azure VM size name" in DeployOptions(instance_type=None).problems()[0]
    # The comparison between two values waits until each is a number: no TypeError.
    assert TrainingSettings(trial_timeout_minutes="5").problems() == [
        "argument --trial-timeout-minutes: '5' is not a number; allowed: above 0 and at most 10080"
    ]
    assert Thresholds(numerical="0.1").problems() == [
        "argument --numerical-threshold: '0.1' is not a number; allowed: a number above 0"
    ]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["train", "--target", "local", "--timeout-minutes", "-1", "--max-trials", "0", "--cv-folds", "1"],
            [
                "--timeout-minutes does not apply with --max-trials",
                "--timeout-minutes: -1",
                "--max-trials: 0",
                "--cv-folds: 1",
            ],
        ),
        (
            [
                "deploy",
                "--target",
                "local",
                "--threshold",
                "1",
                "--version",
                "0",
                "--port",
                "70000",
                "--instance-count",
                "2",
            ],
            ["--instance-count applies to --target azure only", "--version: 0", "--port: 70000", "--threshold: 1"],
        ),
        (
            ["deploy", "--target", "azure", "--dry-run", "--instance-type", "bad type", "--instance-count", "0"],
            ["--instance-count: 0", "--instance-type 'bad type' is not an Azure VM size name"],
        ),
        (
            ["monitor", "--target", "azure", "--dry-run", "--email", "x", "--numerical-threshold", "0"],
            ["--numerical-threshold: 0", "--email 'x' is not an email address"],
        ),
    ],
)
def test_every_kind_of_flag_problem_is_listed_in_one_error(argv, expected, tmp_path, capsys):
    """Wrong-target flags, bounds, the instance type and the e-mail addresses come out together, once each: a user
    fixes them all in one go, and nothing (no login, no training, no --out folder) happens first."""
    from jobs.cli import main

    assert main([*argv, *(["--out", str(tmp_path / "out")] if "--dry-run" in argv else [])]) == 2
    error = capsys.readouterr().err
    for text in expected:
        assert error.count(text) == 1, (text, error)
    assert "Traceback" not in error and not (tmp_path / "out").exists()
