"""The promotion time stamp, the environments' one declaration, and the MLflow UI's command line."""

from __future__ import annotations

import argparse
import datetime
import os
import sys

import pytest

from jobs import environments
from jobs.errors import JobsError
from jobs.options import OPTIONS
from jobs.paths import ROOT
from jobs.promotion_rules import promoted_at


def test_promoted_at_is_utc_to_the_second():
    at = datetime.datetime(2026, 12, 3, 18, 0, 5, 700, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
    assert promoted_at(at) == "2026-12-03T16:00:05Z"


def test_the_environments_are_the_pulumi_stacks_and_their_ports_are_allowed():
    for name, environment in environments.ENVIRONMENTS.items():
        assert (ROOT / f"Pulumi.{name}.yaml").is_file(), name
        assert OPTIONS["port"].problem(environment.port) is None, name
    ports = [e.port for e in environments.ENVIRONMENTS.values()]
    assert len(set(ports)) == len(ports)  # two endpoints on one machine
    assert environments.REGISTERED_IN == "dev" and environments.PROMOTION_TARGETS == ("prod",)


@pytest.mark.parametrize(
    ("flag", "text", "problem"),
    [
        ("--to", "dev", "'dev' cannot be given to --to; allowed: prod (dev is where `register` puts versions"),
        ("--to", "Prod", "'Prod' is not an environment; allowed: prod"),
        ("--env", "", "'' is not an environment; allowed: dev, prod"),
    ],
)
def test_a_name_outside_the_declaration_is_refused_with_what_is_allowed(flag, text, problem):
    with pytest.raises(argparse.ArgumentTypeError) as refused:
        environments.argument_type(flag)(text)
    assert str(refused.value).startswith(problem)
    with pytest.raises(JobsError, match=f"argument {flag}: "):
        (environments.promotion_target if flag == "--to" else environments.environment)(text)


def test_the_ui_listens_on_loopback_on_the_environments_store(tmp_path):
    from jobs.local.ui import ui_command

    command = ui_command(tmp_path / "prod", 5123)
    assert command[:4] == [sys.executable, "-m", "mlflow", "ui"]
    assert command[command.index("--backend-store-uri") + 1] == f"sqlite:///{tmp_path / 'prod' / 'mlflow.db'}"
    assert command[command.index("--host") + 1] == "127.0.0.1" and command[-1] == "5123"


def test_the_ui_refuses_an_environment_without_a_store(tmp_path, monkeypatch):
    from jobs.local import ui

    monkeypatch.setattr(ui, "ui_installed", lambda: True)
    with pytest.raises(JobsError, match="there is no MLflow store in"):
        ui.serve(tmp_path / "prod", 5123)


def test_the_ui_extra_is_the_pinned_mlflow_skinnys_version():
    import re
    import tomllib

    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["ui"]
    pinned = re.search(r"^mlflow-skinny==(\S+)$", (ROOT / "requirements.txt").read_text(), re.MULTILINE)
    assert pinned is not None and extra == [f"mlflow=={pinned.group(1)}"]


@pytest.mark.parametrize(("flags", "named"), [(["--threshold", "0.3"], "--threshold"), (["--collect"], "--collect")])
def test_a_local_promotion_refuses_deploy_settings_it_would_not_apply(tmp_path, flags, named):
    """Locally the promoted version serves at the point it recorded; a flag that would change that is refused, not
    dropped, and nothing is copied."""
    from tests.jobs.conftest import run_jobs

    env = {**os.environ, "JOBS_LOCAL_HOME": str(tmp_path / ".local"), "JOBS_RUNS_DIR": str(tmp_path / "runs")}
    refused = run_jobs(env, "promote", "--version", "1", "--to", "prod", *flags)
    assert refused.returncode == 2, refused.stderr
    assert f"{named}: a local promotion deploys the version at the operating point it recorded" in refused.stderr
    assert "deploy --env prod --threshold T" in refused.stderr and "Traceback" not in refused.stderr
    assert not (tmp_path / ".local" / "mlflow" / "prod").exists()
