"""The command line: `python -m jobs COMMAND` (train, register, deploy, invoke, promote, rollback, all, ...).

Thin: it parses flags into settings and calls a backend (jobs/backend.py, the contract every target
keeps). One function per command (`train`, `register`, ... below, listed in COMMANDS); `all` and the
local `pipeline` call those functions in turn, each given the previous one's result. Every user-fixable problem is a
JobsError, printed as one paragraph with a non-zero exit; no traceback. Each command takes only
its own flags, and a flag that does not apply to the chosen target is refused, not ignored.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobs import environments
from jobs.backend import Backend, DeployOptions, LocalEndpointControl, RequestRefused, training_failure
from jobs.commands import JOBS, jobs_command
from jobs.dataset import DEFAULT_CSV
from jobs.errors import JobsError
from jobs.invocation import build_request
from jobs.lineage import DEFAULT_MIN_AUC
from jobs.monitoring.check import DEFAULT_MAX_REFUSED_SHARE, DEFAULT_MIN_RECORDS, DEFAULT_WINDOW_HOURS, Thresholds
from jobs.monitoring.drift import CATEGORICAL_METRICS, DEFAULT_CATEGORICAL, DEFAULT_NUMERICAL, NUMERICAL_METRICS
from jobs.options import TARGETS, allowed, argument_type, only_on
from jobs.options import problems as bound_problems
from jobs.paths import ROOT
from jobs.training import DEFAULT_LOCAL_BUDGET_S, TrainingSettings

DEFAULTS = TrainingSettings()
# `mlflow ui`'s own default port (its --port).
UI_PORT = 5000

# Flags that mean something for one target only, with why (the refusal says it): `dest: (flag, why)`, from each
# option's one declaration (jobs/options.py).
AZURE_ONLY = only_on("azure")
LOCAL_ONLY = only_on("local")
# Reproducible mode (--max-trials) has no time limit locally (jobs/local/search.py search_budget): these
# would be ignored there. In Azure both limits apply, whichever comes first.
TIME_LIMITS = {"local_budget_seconds": "--local-budget-seconds", "timeout_minutes": "--timeout-minutes"}

# With `pipeline`, these matter only when there is a deploy step.
DEPLOY_STEP = {
    "instance_type": "--instance-type",
    "instance_count": "--instance-count",
    "port": "--port",
    "collect": "--collect",
    "threshold": "--threshold",
    "min_sensitivity": "--min-sensitivity",
}


def _target(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument(
        "--target",
        choices=TARGETS,
        default=default,
        help=f"where to run: this machine, or the Azure ML workspace of a Pulumi stack; before or "
        f"after the command (env JOBS_TARGET) (default: {os.environ.get('JOBS_TARGET', 'local')})",
    )


def _azure_flags(parser: argparse.ArgumentParser) -> None:
    azure = parser.add_argument_group("Azure target: where the workspace is")
    azure.add_argument(
        "--stack",
        default=os.environ.get("PULUMI_STACK", "dev"),
        help="Pulumi stack whose outputs locate the workspace (env PULUMI_STACK)",
    )
    azure.add_argument(
        "--outputs",
        type=Path,
        metavar="FILE",
        help="a file holding `pulumi stack output --json` (for CI and machines without Pulumi)",
    )
    azure.add_argument("--subscription-id", help="override the stack's subscription id")
    azure.add_argument("--resource-group", help="override the stack's resource group")
    azure.add_argument("--workspace", help="override the stack's workspace name")
    azure.add_argument(
        "--dry-run",
        action="store_true",
        help="build the Azure ML specs and write them as YAML to --out without connecting",
    )
    azure.add_argument("--out", type=Path, default=Path("dry-run"), help="folder for --dry-run files")


def _train_flags(parser: argparse.ArgumentParser, wait: bool = True) -> None:
    g = parser.add_argument_group("training (the lesson's values are the defaults)")
    g.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_CSV,
        help="CSV with the features and the label; its schema is the <name>.schema.json beside it",
    )
    g.add_argument(
        "--label",
        default=None,
        metavar="COLUMN",
        help="the label column, for a CSV without a schema file: train infers the schema and writes it beside "
        "the CSV for you to review (with a schema file: its label, and --label must match it)",
    )
    g.add_argument(
        "--include-leaking-columns",
        action="store_true",
        help="also train on the columns the dataset's schema says leak the outcome (the heart-failure data's "
        "`time`), as the lesson does: the warning is printed and recorded; never for patients",
    )
    _automl_flags(g)
    _local_training_flags(parser)
    if wait:
        parser.add_argument_group("training, Azure target only").add_argument(
            "--wait", action="store_true", help="stream the job's status until it ends"
        )


def _automl_flags(g: argparse._ArgumentGroup) -> None:
    """The AutoML settings both targets take (jobs/training.py TrainingSettings)."""
    g.add_argument("--metric", default=DEFAULTS.primary_metric, help="primary metric")
    g.add_argument(
        "--timeout-minutes",
        default=DEFAULTS.timeout_minutes,
        type=argument_type("timeout_minutes"),
        help=f"experiment timeout in minutes ({allowed('timeout_minutes')})",
    )
    g.add_argument(
        "--max-concurrent-trials",
        default=DEFAULTS.max_concurrent_trials,
        type=argument_type("max_concurrent_trials"),
        help=f"Azure only: trials at once ({allowed('max_concurrent_trials')}, at most the cluster's max nodes)",
    )
    g.add_argument("--no-early-termination", action="store_true", help="turn early termination off")
    g.add_argument("--featurization", default=DEFAULTS.featurization, help="auto or off")
    g.add_argument(
        "--trial-timeout-minutes",
        default=None,
        type=argument_type("trial_timeout_minutes"),
        help="limit per trial in minutes (above 0, at most --timeout-minutes)",
    )
    g.add_argument(
        "--max-trials",
        default=None,
        type=argument_type("max_trials"),
        help=f"limit on the number of trials ({allowed('max_trials')}); locally the reproducible mode: no time "
        "limit, so the time-limit flags are refused with it",
    )
    g.add_argument(
        "--cv-folds",
        type=argument_type("cv_folds"),
        default=DEFAULTS.n_cross_validations,
        help=f"cross-validation folds ({allowed('cv_folds')})",
    )
    g.add_argument(
        "--block-model",
        action="append",
        default=[],
        metavar="MODEL",
        help="a model AutoML must not try (repeatable), e.g. KNN",
    )
    g.add_argument(
        "--drop",
        action="append",
        default=[],
        metavar="COLUMN",
        help="a column to leave out (repeatable); `--drop time` removes the follow-up length, which leaks the outcome",
    )


def _local_training_flags(parser: argparse.ArgumentParser) -> None:
    local = parser.add_argument_group("training, local target only")
    local.add_argument(
        "--seed",
        type=argument_type("seed"),
        default=DEFAULTS.seed,
        help=f"random seed ({allowed('seed')})",
    )
    local.add_argument(
        "--local-budget-seconds",
        default=DEFAULT_LOCAL_BUDGET_S,
        type=argument_type("local_budget_seconds"),
        help="cap on FLAML's time budget in seconds (the timeout, if shorter, wins)",
    )


def _run_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--run",
        "--job",
        dest="run",
        default=None,
        help="the training run (local) or AutoML job (Azure); default: the latest",
    )


def _gate_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--min-auc",
        type=argument_type("min_auc"),
        default=DEFAULT_MIN_AUC,
        help="quality gate's absolute floor: also refuse a model whose AUC_weighted is lower "
        "(off by default; the gate always compares the model with a simple baseline on the "
        "same folds and with the registered model for the same features)",
    )


def _version(text: str) -> str:
    """A --version: checked as the declared whole number, kept as the string both registries name it by."""
    return str(argument_type("version")(text))


def _version_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--version", type=_version, default=None, help="model version to deploy; default: the latest")


def _env_flag(parser: argparse.ArgumentParser, what: str = "whose registry and endpoint to use") -> None:
    parser.add_argument_group("environment, local target only").add_argument(
        "--env",
        type=environments.argument_type("--env"),
        default=environments.REGISTERED_IN,
        help=f"the environment {what} ({environments.allowed('--env')}; docs/promotion.md)",
    )


def _promotion_flags(parser: argparse.ArgumentParser, version: bool = True) -> None:
    g = parser.add_argument_group("promotion (both targets)")
    if version:
        g.add_argument(
            "--version",
            type=_version,
            required=True,
            help=f"the {environments.REGISTERED_IN} model version to promote",
        )
    g.add_argument(
        "--to",
        type=environments.argument_type("--to"),
        required=True,
        help=f"the environment ({environments.allowed('--to')})",
    )
    if version:
        _promotion_deploy_flags(parser)
        return
    _environment_port_flag(parser.add_argument_group("rollback, local target only"))


def _promotion_deploy_flags(parser: argparse.ArgumentParser) -> None:
    """How `promote` deploys in the environment it promotes to. Locally the version serves at the operating point
    it recorded, like the tested artifact it is; Azure AutoML's versions record none, so Azure takes --threshold."""
    azure = _instance_flags(parser.add_argument_group("promotion's deploy, Azure target only"))
    azure.add_argument(
        "--threshold",
        type=argument_type("threshold"),
        default=None,
        help="operating point: result=true at probability >= THRESHOLD (default: the one the version recorded; "
        "required for Azure AutoML's versions, which record none)",
    )
    azure.add_argument("--collect", action="store_true", help="collect each scored record in prod (docs/monitoring.md)")
    # No --min-sensitivity: a promotion serves the version's own point or --threshold, never a new rule's.
    parser.set_defaults(min_sensitivity=None)
    _environment_port_flag(parser.add_argument_group("promotion, local target only"))


def _instance_flags(azure: Any) -> Any:
    """--instance-type and --instance-count, on the argument group `azure` (returned, for more flags)."""
    azure.add_argument("--instance-type", default=DeployOptions.instance_type, help="Azure VM size per instance")
    azure.add_argument(
        "--instance-count",
        type=argument_type("instance_count"),
        default=DeployOptions.instance_count,
        help="Azure instances (each reserves 120%% of its cores in quota)",
    )
    return azure


def _environment_port_flag(local: Any) -> None:
    """promote's and rollback's --port, on the argument group `local`: used only when the endpoint is not running."""
    local.add_argument(
        "--port",
        type=argument_type("port"),
        default=None,
        help="port on 127.0.0.1 for the environment's endpoint when it is not running (default: the environment's "
        f"own, {_environment_ports()}); a running endpoint keeps its port",
    )


def _environment_ports() -> str:
    return ", ".join(f"{e.name} {e.port}" for e in environments.ENVIRONMENTS.values())


def _ui_flags(parser: argparse.ArgumentParser) -> None:
    _env_flag(parser, "whose MLflow store to show")
    parser.add_argument(
        "--port",
        type=argument_type("port"),
        default=UI_PORT,
        help=f"port on 127.0.0.1 for the MLflow UI ({allowed('port')})",
    )


def _deploy_flags(parser: argparse.ArgumentParser) -> None:
    _instance_flags(parser.add_argument_group("deploy, Azure target only"))
    local = parser.add_argument_group("deploy, local target only")
    local.add_argument(
        "--port",
        type=argument_type("port"),
        default=None,
        help=f"port on 127.0.0.1 ({allowed('port')}; default: the environment's, {_environment_ports()})",
    )
    both = parser.add_argument_group("deploy, both targets")
    both.add_argument(
        "--threshold",
        type=argument_type("threshold"),
        default=None,
        help="operating point: result=true at probability >= THRESHOLD (default: the one the model recorded at "
        "training, the highest threshold with out-of-fold sensitivity >= 0.9; required on Azure)",
    )
    both.add_argument(
        "--min-sensitivity",
        type=argument_type("min_sensitivity"),
        default=None,
        help="operating point: the highest threshold whose out-of-fold sensitivity is at least this (local "
        "models, from their out-of-fold accuracy table)",
    )
    both.add_argument(
        "--collect",
        action="store_true",
        help="collect each scored record's 12 features and answer for `monitor` (docs/monitoring.md); off: "
        "nothing is kept",
    )


def _invoke_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--file",
        type=Path,
        default=None,
        help="JSON request, an array of records, or JSON Lines (.jsonl: one record per line; data collection's "
        "scored.jsonl too, its refusal lines skipped)",
    )
    parser.add_argument(
        "--set",
        dest="set_fields",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="change one field of the lesson's sample; with --file, of every record in the file (repeatable)",
    )
    parser.add_argument("--probability", action="store_true", help="also return the probability of DEATH_EVENT")


def _pipeline_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--with-deploy",
        action="store_true",
        help="add the blue/green deploy step after the register step (the deploy flags apply only with it)",
    )


def _monitor_flags(parser: argparse.ArgumentParser) -> None:
    """The monitor command's flags; the thresholds' defaults are Azure ML's (jobs/monitoring/drift.py)."""
    g = parser.add_argument_group("monitoring (both targets)")
    g.add_argument(
        "--version",
        type=_version,
        default=None,
        help="model version; default: the deployed one (local), the live deployment's (Azure)",
    )
    g.add_argument(
        "--numerical-metric",
        default=DEFAULT_NUMERICAL[0],
        choices=NUMERICAL_METRICS,
        help="data drift metric for numerical features",
    )
    g.add_argument(
        "--numerical-threshold",
        type=argument_type("numerical_threshold"),
        default=DEFAULT_NUMERICAL[1],
        help="drift above it (for the KS test: a p-value below it, at most 1)",
    )
    g.add_argument(
        "--categorical-metric",
        default=DEFAULT_CATEGORICAL[0],
        choices=CATEGORICAL_METRICS,
        help="data and prediction drift metric for categorical features (the 5 booleans, the answer)",
    )
    g.add_argument(
        "--categorical-threshold",
        type=argument_type("categorical_threshold"),
        default=DEFAULT_CATEGORICAL[1],
        help="drift above it (for the chi-squared test: a p-value below it, at most 1)",
    )
    g.add_argument(
        "--prediction-threshold",
        type=argument_type("prediction_threshold"),
        default=DEFAULT_CATEGORICAL[1],
        help="prediction drift threshold, on the categorical metric",
    )
    g.add_argument(
        "--window-hours",
        type=argument_type("window_hours"),
        default=DEFAULT_WINDOW_HOURS,
        help="how far back to look (Azure: the schedule's lookback window, rounded up to whole days)",
    )
    _monitor_target_flags(parser)


def _monitor_target_flags(parser: argparse.ArgumentParser) -> None:
    """The monitor flags of one target each (the refusal on the other comes from jobs/options.py)."""
    local = parser.add_argument_group("monitoring, local target only")
    local.add_argument(
        "--max-refused-share",
        type=argument_type("max_refused_share"),
        default=DEFAULT_MAX_REFUSED_SHARE,
        help="alert when more of the window's records than this were refused by the schema",
    )
    local.add_argument(
        "--min-records",
        type=argument_type("min_records"),
        default=DEFAULT_MIN_RECORDS,
        help="fewer scored records than this and drift is not computed (too noisy)",
    )
    local.add_argument(
        "--reference",
        type=Path,
        default=None,
        metavar="FILE",
        help="the training CSV, when the model's own (from its lineage tags) is gone",
    )
    parser.add_argument_group("monitoring, Azure target only").add_argument(
        "--email",
        dest="emails",
        action="append",
        default=[],
        metavar="ADDRESS",
        help="alert this address when a signal crosses its threshold (repeatable)",
    )


DESCRIPTION = """\
Train, register, deploy and call an AutoML classifier for DEATH_EVENT on the UCI heart-failure records,
on this machine (--target local, the default) or in the Azure ML workspace that `pulumi up` created
(--target azure). Each command's --help lists its own flags, grouped by the target they apply to."""

EPILOG = f"""\
example, the whole path on this machine (a few minutes), then a request with one field changed:
  {JOBS} all --target local --port 5001
  {JOBS} invoke --set age=75 --probability
  {JOBS} stop

Every command, flag and refusal: docs/jobs.md and the generated reference docs/cli.md in the checkout,
{ROOT / "docs"}."""


def build_parser(suppress_defaults: bool = False) -> argparse.ArgumentParser:
    """The parser. With `suppress_defaults`, a parse yields only the flags given (to refuse those that do
    not apply)."""
    parser = argparse.ArgumentParser(
        prog=JOBS, description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    _target(parser, argparse.SUPPRESS if suppress_defaults else os.environ.get("JOBS_TARGET", "local"))
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", title="commands")
    fmt = argparse.ArgumentDefaultsHelpFormatter
    for name, command in COMMANDS.items():
        sub = commands.add_parser(name, help=command.line, description=command.summary, formatter_class=fmt)
        # SUPPRESS: a --target before the command stays unless one is given after it too.
        _target(sub, argparse.SUPPRESS)
        for add in command.flags:
            add(sub)
        if suppress_defaults:
            for action in sub._actions:
                action.default = argparse.SUPPRESS
    return parser


def flags_that_do_not_apply(args: argparse.Namespace, given: set[str]) -> list[str]:
    """Each flag in `given` that means nothing here (another target's, a time limit beside --max-trials, a deploy
    flag of a pipeline without a deploy step): an error, listed with the rest by run(), never silently ignored."""
    problems = []
    wrong = AZURE_ONLY if args.target == "local" else LOCAL_ONLY
    other = "azure" if args.target == "local" else "local"
    source = "" if "target" in given or "JOBS_TARGET" not in os.environ else " (from $JOBS_TARGET)"
    for dest, (flag, why) in wrong.items():
        if dest in given:
            problems.append(
                f"{flag} applies to --target {other} only ({why}); this command runs with "
                f"--target {args.target}{source}"
            )
    if args.target == "azure" and "out" in given and not getattr(args, "dry_run", False):
        problems.append("--out is the folder for --dry-run; add --dry-run or leave --out out")
    if args.target == "local" and "max_trials" in given:
        problems += [
            f"{flag} does not apply with --max-trials on --target local (the reproducible mode stops after "
            f"--max-trials trials, with no time limit); leave it out, or leave out --max-trials for a "
            "time budget"
            for dest, flag in TIME_LIMITS.items()
            if dest in given
        ]
    if args.command == "pipeline" and not args.with_deploy:
        problems += [
            f"{flag} applies only with --with-deploy (there is no deploy step without it)"
            for dest, flag in DEPLOY_STEP.items()
            if dest in given and dest not in wrong
        ]
    elif args.command == "pipeline" and args.target == "azure" and "collect" in given:
        problems.append(
            f"--collect is not carried by the Azure pipeline's deploy step; run the pipeline without "
            f"it, then `{JOBS} deploy --target azure --collect`"
        )
    return problems


def _once(values: list[str]) -> tuple[str, ...]:
    """A repeatable flag's values in order, each once (`--block-model KNN --block-model KNN` blocks KNN)."""
    return tuple(dict.fromkeys(values))


def training_settings(args: argparse.Namespace) -> TrainingSettings:
    return TrainingSettings(
        primary_metric=args.metric,
        timeout_minutes=args.timeout_minutes,
        max_concurrent_trials=args.max_concurrent_trials,
        enable_early_termination=not args.no_early_termination,
        featurization=args.featurization,
        trial_timeout_minutes=args.trial_timeout_minutes,
        max_trials=args.max_trials,
        n_cross_validations=args.cv_folds,
        blocked_models=_once(args.block_model),
        drop_columns=_once(args.drop),
        seed=args.seed,
        include_leaking_columns=args.include_leaking_columns,
    ).for_data(args.data)


def make_backend(args: argparse.Namespace) -> Backend:
    """The target that `--target` (and, for Azure, `--dry-run`) names, configured from the flags."""
    if args.target == "local":
        from jobs.local.backend import LocalBackend

        runs = Path(os.environ.get("JOBS_RUNS_DIR", ROOT / "runs"))
        return LocalBackend(
            local_home(),
            runs,
            budget_s=getattr(args, "local_budget_seconds", DEFAULT_LOCAL_BUDGET_S),
            env=getattr(args, "env", environments.REGISTERED_IN),
            port=getattr(args, "port", None),
        )
    from jobs.azure.backend import AzureBackend

    return AzureBackend.from_args(args)


def local_home() -> Path:
    """The local target's state folder: $JOBS_LOCAL_HOME, else the checkout's .local/."""
    return Path(os.environ.get("JOBS_LOCAL_HOME", ROOT / ".local"))


def _deploy_options(args: argparse.Namespace) -> DeployOptions:
    """The deploy flags; no --port: the environment's endpoint port (jobs/environments.py)."""
    env = environments.ENVIRONMENTS[getattr(args, "env", environments.REGISTERED_IN)]
    port = env.port if args.port is None else args.port
    # promote takes no --min-sensitivity: its operating point is the version's own or --threshold.
    return DeployOptions(
        args.instance_type,
        args.instance_count,
        port,
        args.collect,
        args.threshold,
        getattr(args, "min_sensitivity", None),
    )


def monitor_thresholds(args: argparse.Namespace) -> Thresholds:
    """The monitor command's thresholds; raises JobsError for a combination no flag type can check alone."""
    thresholds = _thresholds(args)
    problems = thresholds.problems()
    if problems:
        raise JobsError("invalid monitoring settings:\n  - " + "\n  - ".join(problems))
    return thresholds


def _thresholds(args: argparse.Namespace) -> Thresholds:
    return Thresholds(
        args.numerical_metric,
        args.numerical_threshold,
        args.categorical_metric,
        args.categorical_threshold,
        args.prediction_threshold,
        args.max_refused_share,
        args.min_records,
    )


def _local_only(command: str) -> JobsError:
    return JobsError(
        f"`{command}` is for the local endpoint; for Azure, open the studio link that "
        "`pulumi stack output studio_url` prints"
    )


def _local_control(backend: Backend, command: str) -> LocalEndpointControl:
    """The backend's local endpoint control (jobs/backend.py LocalEndpointControl); JobsError on Azure."""
    if not isinstance(backend, LocalEndpointControl):
        raise _local_only(command)
    return backend


# -- the commands: one function each; `all` and the local `pipeline` compose them, passing results as values --


def train(backend: Backend, args: argparse.Namespace, *, wait: bool) -> str:
    """`train`: run AutoML; return the run (local) or job (Azure) name."""
    with training_failure(args.target):
        return backend.train(training_settings(args), args.data, wait=wait)


def register(backend: Backend, args: argparse.Namespace, run: str | None) -> str:
    """`register`: gate and register `run` (the latest when None); return the model version."""
    return backend.register(run, args.min_auc)


def deploy(backend: Backend, args: argparse.Namespace, version: str | None) -> str:
    """`deploy`: deploy `version` (the latest when None); return what the backend says now serves."""
    return backend.deploy(version, _deploy_options(args))


def invoke(backend: Backend, args: argparse.Namespace) -> Any:
    """`invoke`: send the request the flags build, print the answer as JSON on stdout and return it.

    A refusal (RequestRefused, both targets) prints the endpoint's body the same way, then raises.
    """
    payload = build_request(args.file, args.set_fields, args.probability, sample=backend.sample_request())
    try:
        answer = backend.invoke(payload)
    except RequestRefused as refusal:
        print(refusal.body_json())
        raise
    print(json.dumps(answer))
    return answer


def all_steps(backend: Backend, args: argparse.Namespace) -> Any:
    """`all`: train (to the end), register that run, deploy that version, invoke; return the answer."""
    run = train(backend, args, wait=True)
    version = register(backend, args, run)
    deploy(backend, args, version)
    return invoke(backend, args)


def pipeline(backend: Backend, args: argparse.Namespace) -> str:
    """`pipeline`: locally train, register and (with --with-deploy) deploy, composed from the commands; in
    Azure, one pipeline job. Return the registered version (local) or the pipeline job's name (Azure)."""
    if args.target == "local":
        version = register(backend, args, train(backend, args, wait=True))
        if args.with_deploy:
            deploy(backend, args, version)
        return version
    options = _deploy_options(args) if args.with_deploy else None
    with training_failure(args.target):
        return backend.pipeline(training_settings(args), args.data, args.min_auc, options, args.wait)


def monitor(backend: Backend, args: argparse.Namespace) -> object:
    """`monitor`: locally a drift report (exit 1 on drift, jobs.local.monitoring.DriftDetected); in Azure,
    create or update the monitoring schedule."""
    return backend.monitor(args.version, monitor_thresholds(args), args.window_hours, args.reference, args.emails)


def status(backend: Backend, args: argparse.Namespace) -> str:
    """`status`: print what really runs of the local endpoint; JobsError (exit 1) when the recorded
    deployment is not serving properly."""
    text = _local_control(backend, "status").status()
    print(text)
    if not text.serving_properly:
        raise NotServing("the local endpoint is not serving properly (above: what runs and what to do)")
    return text


class NotServing(JobsError):
    """`status` found the recorded deployment not serving: exit 1, as `monitor` exits 1 on drift."""

    exit_code = 1


def stop(backend: Backend, args: argparse.Namespace) -> str:
    """`stop`: stop the local endpoint and print what was stopped."""
    text = _local_control(backend, "stop").stop()
    print(text)
    return text


def promote(backend: Backend, args: argparse.Namespace) -> str:
    """`promote`: copy a gated, honest version into `--to`'s registry and deploy it there; print what was done."""
    if args.target == "local" and (args.threshold is not None or args.collect):
        given = " and ".join(
            f for f, v in (("--threshold", args.threshold is not None), ("--collect", args.collect)) if v
        )
        raise JobsError(
            f"{given}: a local promotion deploys the version at the operating point it recorded, without collection "
            f"(the artifact dev tested); change either afterwards with "
            f"`{jobs_command(f'deploy --env {args.to} --threshold T --collect')}`"
        )
    text = backend.promote(args.version, args.to)
    print(text)
    return text


def rollback(backend: Backend, args: argparse.Namespace) -> str:
    """`rollback`: put `--to`'s endpoint back on the version it served before; print what was done."""
    text = backend.rollback(args.to)
    print(text)
    return text


def ui(backend: Backend, args: argparse.Namespace) -> int:
    """`ui`: MLflow's UI on `--env`'s store, on 127.0.0.1, until Ctrl-C (JobsError when full mlflow is missing)."""
    from jobs.local.places import registry_root
    from jobs.local.ui import serve

    code = serve(registry_root(local_home(), args.env), args.port)
    if code != 0:
        raise JobsError(f"the MLflow UI exited with code {code}; its own messages are above")
    return code


Adder = Callable[[argparse.ArgumentParser], None]


@dataclass(frozen=True)
class Command:
    """One command: its one-line help, its flag groups, and the function that runs it."""

    line: str  # the top-level --help's one line
    summary: str  # the command's own --help
    flags: tuple[Adder, ...]
    run: Callable[[Backend, argparse.Namespace], object]
    trains: bool = False  # its training flags are validated before any backend is made
    local_only: bool = False  # refused for Azure before anything connects


COMMANDS: dict[str, Command] = {
    "train": Command(
        "run AutoML on the dataset (a new run)",
        "run AutoML on the dataset",
        (_azure_flags, _train_flags),
        lambda backend, args: train(backend, args, wait=args.wait),
        trains=True,
    ),
    "register": Command(
        "register a run's best model behind a quality gate",
        "register the best model of a finished run, behind a quality gate",
        (_azure_flags, _run_flag, _gate_flag),
        lambda backend, args: register(backend, args, args.run),
    ),
    "deploy": Command(
        "serve a registered model version at the endpoint",
        "deploy a registered model to the online endpoint (blue/green)",
        (_azure_flags, _version_flag, _env_flag, _deploy_flags),
        lambda backend, args: deploy(backend, args, args.version),
    ),
    "invoke": Command(
        "score records at the endpoint; print the answer",
        "send the lesson's sample (or your records) to the endpoint",
        (_azure_flags, _env_flag, _invoke_flags),
        invoke,
    ),
    "promote": Command(
        "promote a gated version to prod and deploy it there",
        "copy a model version that passed the quality gate and uses no leaking column into the environment's "
        "registry, with its lineage and origin, then deploy it there (blue/green, smoke test); idempotent",
        (_azure_flags, _promotion_flags),
        promote,
    ),
    "rollback": Command(
        "put prod's endpoint back on its previous version",
        "put the environment's endpoint back on the version it served before (blue/green, smoke test)",
        (_azure_flags, lambda p: _promotion_flags(p, version=False)),
        rollback,
    ),
    "all": Command(
        "train, register, deploy and invoke, in order",
        "train, register, deploy and invoke, in order: always a new run, and the version it registers (for an "
        "existing run or version, use register or deploy)",
        (_azure_flags, lambda p: _train_flags(p, wait=False), _gate_flag, _deploy_flags, _invoke_flags),
        all_steps,
        trains=True,
    ),
    "pipeline": Command(
        "train and register (and deploy) as one unit",
        "train and register as one pipeline job (deploy too with --with-deploy)",
        (_azure_flags, _train_flags, _gate_flag, _pipeline_flags, _deploy_flags),
        pipeline,
        trains=True,
    ),
    "monitor": Command(
        "check the endpoint's records for drift",
        "compare collected production records with the model's training data (drift, refusals); local: a "
        "report, exit 1 on drift; Azure: a monitoring schedule",
        (_azure_flags, _monitor_flags),
        monitor,
    ),
    "status": Command(
        "local: what runs of the local endpoint",
        "local: show what really runs of the local endpoint",
        (_env_flag,),
        status,
        local_only=True,
    ),
    "stop": Command(
        "local: stop the local endpoint",
        "local: stop the local endpoint (and anything an interrupted command left)",
        (_env_flag,),
        stop,
        local_only=True,
    ),
    "ui": Command(
        "local: MLflow's UI on an environment's registry",
        "local: start MLflow's UI on 127.0.0.1 on the environment's runs and registry, until Ctrl-C (needs the "
        "optional full mlflow package: make ui-setup)",
        (_ui_flags,),
        ui,
        local_only=True,
    ),
}


# The flags whose bounds the training settings and the monitoring thresholds check themselves (with their other
# problems, in one list): the command line does not list them a second time.
_SETTINGS_CHECK = set(DEFAULTS.flag_values())
_THRESHOLDS_CHECK = set(Thresholds().flag_values())


def run(args: argparse.Namespace, given: set[str] | None = None) -> object:
    """Run the parsed command: checks that need no backend first, then the command's function.

    `given`: the flags the user typed (their values are checked against jobs/options.py); None: all of them.
    Every problem of the flags' values, the training settings and the monitoring thresholds is listed at once.
    """
    command = COMMANDS[args.command]
    if command.local_only and args.target != "local":
        raise _local_only(args.command)  # before make_backend: no workspace lookup for a local-only command
    found: list[str] = flags_that_do_not_apply(args, given) if given is not None else []
    not_here = len(found)
    settings = schema = None
    if command.trains:
        # The data's schema first (inferred and written for a CSV with --label and no schema file), then the
        # settings: a bad flag fails here, before a connection, a venv build or any training.
        from jobs.dataset import ensure_schema

        schema = ensure_schema(args.data, args.label)
        settings = training_settings(args)
        found += settings.problems()
    if args.command == "monitor":
        found += _thresholds(args).problems()  # before a connection too
        if args.target == "azure":
            from jobs.azure.monitoring import email_problems

            found += email_problems(args.emails)  # before the login, not after it
    covered = (_SETTINGS_CHECK if command.trains else set()) | (
        _THRESHOLDS_CHECK if args.command == "monitor" else set()
    )
    values = vars(args)
    if isinstance(values.get("version"), str):  # _version checked it as a whole number, kept the string
        values = {**values, "version": int(values["version"])}
    found += bound_problems(values, (set(values) if given is None else given) - covered)
    if getattr(args, "threshold", None) is not None and getattr(args, "min_sensitivity", None) is not None:
        # Each alone is bounded above; together they are one too many (jobs/contract.py chosen_point).
        from jobs.contract import BOTH_POINT_FLAGS

        found.append(BOTH_POINT_FLAGS)
    if hasattr(args, "instance_type"):
        found += _deploy_options(args).problems()
    found = list(dict.fromkeys(found))  # one bound reached by two checks is one problem
    if found:
        heading = "flags that do not apply here" if len(found) == not_here else "invalid settings"
        raise JobsError(f"{heading}:\n  - " + "\n  - ".join(found))
    if settings is not None and schema is not None:
        warning = settings.leak_warning(schema)
        if warning:
            print("WARNING: " + warning, file=sys.stderr)
    if hasattr(args, "instance_type"):
        args.instance_type = _deploy_options(args).validated().instance_type
    if getattr(args, "dry_run", False):
        _check_out(args.out)
    backend = make_backend(args)
    deploys = args.command == "all" or (args.command == "pipeline" and args.with_deploy)
    if deploys and isinstance(backend, LocalEndpointControl):
        # What can be checked before the long work: the port is free (or ours), for one.
        backend.preflight_deploy(_deploy_options(args))
    return command.run(backend, args)


def _check_out(out: Path) -> None:
    """--dry-run's folder: made now (as the writes would), or a JobsError naming --out and why not."""
    if out.exists() and not out.is_dir():
        raise JobsError(
            f"--out {out} is a file, not a folder; give --out a folder for the Azure ML specs (it is "
            "created if missing)"
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise JobsError(
            f"--out {out}: cannot create the folder ({error.strerror or error}); give --out a folder you can write to"
        ) from None


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    previous = {}
    if threading.current_thread() is threading.main_thread():
        # A closed terminal (SIGHUP) or `kill` (SIGTERM) is an interruption like Ctrl-C: the same clean-up
        # runs (a deploy stops the server it was starting; an Azure wait says what still runs).
        previous = {signum: signal.signal(signum, _interrupt) for signum in (signal.SIGTERM, signal.SIGHUP)}
    try:
        return _main(argv)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _early_problem(argv: list[str]) -> str | None:
    """What argparse would misreport: a bad $JOBS_TARGET (it would fall back silently) and a command's flag
    given before the command (argparse calls its value an invalid command, or the flag unrecognized)."""
    env = os.environ.get("JOBS_TARGET")
    if env is not None and env not in TARGETS:
        return (
            f"environment variable JOBS_TARGET={env!r} is not a target; allowed: {', '.join(TARGETS)} "
            "(exactly, in lower case), or unset it for the default, local"
        )
    at = 0
    while at < len(argv) and argv[at].startswith("-"):
        flag = argv[at]
        if flag in ("-h", "--help") or flag.startswith("--target="):
            at += 1
        elif flag == "--target":
            at += 2
        else:
            name = flag.split("=", 1)[0]
            command = next((word for word in argv[at:] if word in COMMANDS), "COMMAND")
            return (
                f"{name} is a flag of the command: put it after the command (only --target may come before "
                f"it), e.g. `{JOBS} {command} {name} ...`"
            )
    return None


def _main(argv: list[str]) -> int:
    early = _early_problem(argv)
    if early is not None:
        print(f"error: {early}", file=sys.stderr)
        return 2
    args = build_parser().parse_args(argv)
    # azure-ai-ml logs a warning for every experimental schema it touches (dump and load do);
    # they say nothing about this project's specs.
    logging.getLogger("azure.ai.ml._utils._experimental").setLevel(logging.ERROR)
    try:
        given = set(vars(build_parser(suppress_defaults=True).parse_args(argv)))
        run(args, given)
    except JobsError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("interrupted.", file=sys.stderr)
        return 130
    return 0
