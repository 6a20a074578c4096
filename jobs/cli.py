"""The command line: `python -m jobs {train,register,deploy,invoke,all,pipeline,monitor,status,stop}`.

Thin: it parses flags into settings and calls a backend. Every user-fixable problem is a
JobsError, printed as one paragraph with a non-zero exit; no traceback. Each command takes only
its own flags, and a flag that does not apply to the chosen target is refused, not ignored.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jobs.backend import Backend, DeployOptions, training_failure
from jobs.commands import JOBS
from jobs.dataset import DEFAULT_CSV
from jobs.errors import JobsError
from jobs.invocation import build_request
from jobs.lineage import DEFAULT_MIN_AUC
from jobs.monitoring.check import DEFAULT_MAX_REFUSED_SHARE, DEFAULT_MIN_RECORDS, DEFAULT_WINDOW_HOURS, Thresholds
from jobs.monitoring.drift import CATEGORICAL_METRICS, DEFAULT_CATEGORICAL, DEFAULT_NUMERICAL, NUMERICAL_METRICS
from jobs.training import DEFAULT_LOCAL_BUDGET_S, TrainingSettings

ROOT = Path(__file__).resolve().parent.parent
DEFAULTS = TrainingSettings()
TARGETS = ("local", "azure")
# As long as the longest --timeout-minutes (a week): the cap cannot be longer than what it caps.
MAX_LOCAL_BUDGET_S = 7 * 24 * 3600

# Flags that mean something for one target only, with why (the refusal says it). `dest: (flag, why)`.
AZURE_ONLY = {
    "stack": ("--stack", "it names the Pulumi stack that locates the Azure ML workspace"),
    "outputs": ("--outputs", "it locates the Azure ML workspace"),
    "subscription_id": ("--subscription-id", "it locates the Azure ML workspace"),
    "resource_group": ("--resource-group", "it locates the Azure ML workspace"),
    "workspace": ("--workspace", "it locates the Azure ML workspace"),
    "dry_run": ("--dry-run", "it writes Azure ML specs (--dry-run builds Azure ML specs)"),
    "out": ("--out", "it is the folder for --dry-run's Azure ML specs"),
    "wait": ("--wait", "local training always runs to the end before the command returns"),
    "instance_type": ("--instance-type", "the local endpoint is one server on this machine"),
    "instance_count": ("--instance-count", "the local endpoint is one server on this machine"),
    "emails": ("--email", "the Azure monitoring schedule sends the alerts; locally, act on the exit code (1 on "
                          "drift)"),
}
LOCAL_ONLY = {
    "local_budget_seconds": ("--local-budget-seconds", "Azure AutoML runs for --timeout-minutes"),
    # azure-ai-ml 1.35.2's automl.classification() has no seed parameter (automl/_automl_tabular.py).
    "seed": ("--seed", "Azure AutoML takes no seed"),
    "port": ("--port", "the Azure endpoint's address comes from the stack"),
    "reference": ("--reference", "in Azure the reference is the training data asset named by the model's "
                                 "data_version tag"),
    # Azure's deployment logs refusals (scoring/collect.py) instead of collecting them, and its schedule
    # has no signal for them; its drift signals take no minimum count.
    "max_refused_share": ("--max-refused-share", "Azure collects scored records only; refusals go to the "
                                                 "deployment's log"),
    "min_records": ("--min-records", "Azure's monitoring schedule has no minimum record count"),
}
# With `pipeline`, these matter only when there is a deploy step.
DEPLOY_STEP = {"instance_type": "--instance-type", "instance_count": "--instance-count", "port": "--port",
               "collect": "--collect"}


def _number(kind: type, low: float, high: float, allowed: str, low_open: bool = False) -> Callable[[str], Any]:
    """An argparse type: a finite int or float within [low, high] (above low when low_open).

    The error names the value and what is allowed; argparse adds the flag.
    """
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'a whole number' if kind is int else 'a number'}; "
                                             f"allowed: {allowed}") from None
        if not math.isfinite(value) or value > high or value < low or (low_open and value == low):
            raise argparse.ArgumentTypeError(f"{text} is not allowed; allowed: {allowed}")
        return value

    return parse


def _target(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument("--target", choices=TARGETS, default=default,
                        help=f"where to run: this machine, or the Azure ML workspace of a Pulumi stack; before or "
                             f"after the command (env JOBS_TARGET) (default: {os.environ.get('JOBS_TARGET', 'local')})")


def _azure_flags(parser: argparse.ArgumentParser) -> None:
    azure = parser.add_argument_group("Azure target: where the workspace is")
    azure.add_argument("--stack", default=os.environ.get("PULUMI_STACK", "dev"),
                       help="Pulumi stack whose outputs locate the workspace (env PULUMI_STACK)")
    azure.add_argument("--outputs", type=Path, metavar="FILE",
                       help="a file holding `pulumi stack output --json` (for CI and machines without Pulumi)")
    azure.add_argument("--subscription-id", help="override the stack's subscription id")
    azure.add_argument("--resource-group", help="override the stack's resource group")
    azure.add_argument("--workspace", help="override the stack's workspace name")
    azure.add_argument("--dry-run", action="store_true",
                       help="build the Azure ML specs and write them as YAML to --out without connecting")
    azure.add_argument("--out", type=Path, default=Path("dry-run"), help="folder for --dry-run files")


def _train_flags(parser: argparse.ArgumentParser, wait: bool = True) -> None:
    g = parser.add_argument_group("training (the lesson's values are the defaults)")
    g.add_argument("--data", type=Path, default=DEFAULT_CSV, help="CSV with the features and the label")
    g.add_argument("--metric", default=DEFAULTS.primary_metric, help="primary metric")
    g.add_argument("--timeout-minutes", type=float, default=DEFAULTS.timeout_minutes,
                   help="experiment timeout (above 0, at most 10080)")
    g.add_argument("--max-concurrent-trials", type=int, default=DEFAULTS.max_concurrent_trials,
                   help="trials at once (at least 1; in Azure at most the cluster's max nodes)")
    g.add_argument("--no-early-termination", action="store_true", help="turn early termination off")
    g.add_argument("--featurization", default=DEFAULTS.featurization, help="auto or off")
    g.add_argument("--trial-timeout-minutes", type=float, default=None,
                   help="limit per trial (above 0, at most --timeout-minutes)")
    g.add_argument("--max-trials", type=int, default=None, help="limit on the number of trials (at least 1)")
    g.add_argument("--cv-folds", type=int, default=DEFAULTS.n_cross_validations,
                   help="cross-validation folds (2 to 20)")
    g.add_argument("--block-model", action="append", default=[], metavar="MODEL",
                   help="a model AutoML must not try (repeatable), e.g. KNN")
    g.add_argument("--drop", action="append", default=[], metavar="COLUMN",
                   help="a column to leave out (repeatable); `--drop time` removes the follow-up length, "
                        "which leaks the outcome")
    local = parser.add_argument_group("training, local target only")
    local.add_argument("--seed", type=_number(int, 0, 2**32 - 1, "a whole number from 0 to 4294967295"),
                       default=DEFAULTS.seed, help="random seed")
    local.add_argument("--local-budget-seconds", default=DEFAULT_LOCAL_BUDGET_S,
                       type=_number(float, 0, MAX_LOCAL_BUDGET_S, f"above 0 and at most {MAX_LOCAL_BUDGET_S} "
                                    "seconds", low_open=True),
                       help="cap on FLAML's time budget in seconds (the timeout, if shorter, wins)")
    if wait:
        parser.add_argument_group("training, Azure target only").add_argument(
            "--wait", action="store_true", help="stream the job's status until it ends")


def _run_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", "--job", dest="run", default=None,
                        help="the training run (local) or AutoML job (Azure); default: the latest")


def _gate_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--min-auc", type=_number(float, 0, 1, "from 0 to 1"), default=DEFAULT_MIN_AUC,
                        help="quality gate's absolute floor: also refuse a model whose AUC_weighted is lower "
                             "(off by default; the gate always compares the model with a simple baseline on the "
                             "same folds and with the registered model for the same features)")


def _version_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--version", default=None, help="model version to deploy; default: the latest")


def _deploy_flags(parser: argparse.ArgumentParser) -> None:
    azure = parser.add_argument_group("deploy, Azure target only")
    azure.add_argument("--instance-type", default=DeployOptions.instance_type, help="Azure VM size per instance")
    azure.add_argument("--instance-count", type=_number(int, 1, 10**6, "a whole number, at least 1"),
                       default=DeployOptions.instance_count,
                       help="Azure instances (each reserves 120%% of its cores in quota)")
    local = parser.add_argument_group("deploy, local target only")
    local.add_argument("--port", type=_number(int, 1024, 65535, "a whole number from 1024 to 65535"),
                       default=DeployOptions.port, help="port on 127.0.0.1")
    parser.add_argument_group("deploy, both targets").add_argument(
        "--collect", action="store_true",
        help="collect each scored record's 12 features and answer for `monitor` (README, Monitoring); off: "
             "nothing is kept")


def _invoke_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--file", type=Path, default=None, help="JSON request, or an array of records")
    parser.add_argument("--set", dest="set_fields", action="append", default=[], metavar="FIELD=VALUE",
                        help="change one field of the lesson's sample (repeatable)")
    parser.add_argument("--probability", action="store_true", help="also return the probability of DEATH_EVENT")


def _pipeline_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--with-deploy", action="store_true",
                        help="add the blue/green deploy step after the register step (the deploy flags apply "
                             "only with it)")


def _monitor_flags(parser: argparse.ArgumentParser) -> None:
    """The monitor command's flags; the thresholds' defaults are Azure ML's (jobs/monitoring/drift.py)."""
    above_0 = _number(float, 0, math.inf, "a number above 0", low_open=True)
    g = parser.add_argument_group("monitoring (both targets)")
    g.add_argument("--version", default=None,
                   help="model version; default: the deployed one (local), the live deployment's (Azure)")
    g.add_argument("--numerical-metric", default=DEFAULT_NUMERICAL[0], choices=NUMERICAL_METRICS,
                   help="data drift metric for numerical features")
    g.add_argument("--numerical-threshold", type=above_0, default=DEFAULT_NUMERICAL[1],
                   help="drift above it (for the KS test: a p-value below it, at most 1)")
    g.add_argument("--categorical-metric", default=DEFAULT_CATEGORICAL[0], choices=CATEGORICAL_METRICS,
                   help="data and prediction drift metric for categorical features (the 5 booleans, the answer)")
    g.add_argument("--categorical-threshold", type=above_0, default=DEFAULT_CATEGORICAL[1],
                   help="drift above it (for the chi-squared test: a p-value below it, at most 1)")
    g.add_argument("--prediction-threshold", type=above_0, default=DEFAULT_CATEGORICAL[1],
                   help="prediction drift threshold, on the categorical metric")
    g.add_argument("--window-hours", type=above_0, default=DEFAULT_WINDOW_HOURS,
                   help="how far back to look (Azure: the schedule's lookback window, rounded up to whole days)")
    local = parser.add_argument_group("monitoring, local target only")
    local.add_argument("--max-refused-share", type=_number(float, 0, 1, "from 0 to 1"),
                       default=DEFAULT_MAX_REFUSED_SHARE,
                       help="alert when more of the window's records than this were refused by the schema")
    local.add_argument("--min-records", type=_number(int, 1, 10**9, "a whole number, at least 1"),
                       default=DEFAULT_MIN_RECORDS,
                       help="fewer scored records than this and drift is not computed (too noisy)")
    local.add_argument("--reference", type=Path, default=None, metavar="FILE",
                       help="the training CSV, when the model's own (from its lineage tags) is gone")
    parser.add_argument_group("monitoring, Azure target only").add_argument(
        "--email", dest="emails", action="append", default=[], metavar="ADDRESS",
        help="alert this address when a signal crosses its threshold (repeatable)")


COMMANDS: dict[str, tuple[str, list[Callable[[argparse.ArgumentParser], None]]]] = {
    "train": ("run AutoML on the dataset", [_azure_flags, _train_flags]),
    "register": ("register the best model of a finished run, behind a quality gate",
                 [_azure_flags, _run_flag, _gate_flag]),
    "deploy": ("deploy a registered model to the online endpoint (blue/green)",
               [_azure_flags, _version_flag, _deploy_flags]),
    "invoke": ("send the lesson's sample (or your records) to the endpoint", [_azure_flags, _invoke_flags]),
    "all": ("train, register, deploy and invoke, in order: always a new run, and the version it registers "
            "(for an existing run or version, use register or deploy)",
            [_azure_flags, lambda p: _train_flags(p, wait=False), _gate_flag, _deploy_flags, _invoke_flags]),
    "pipeline": ("train and register as one pipeline job (deploy too with --with-deploy)",
                 [_azure_flags, _train_flags, _gate_flag, _pipeline_flags, _deploy_flags]),
    "monitor": ("compare collected production records with the model's training data (drift, refusals); "
                "local: a report, exit 1 on drift; Azure: a monitoring schedule", [_azure_flags, _monitor_flags]),
    "status": ("local: show what really runs of the local endpoint", []),
    "stop": ("local: stop the local endpoint (and anything an interrupted command left)", []),
}


def build_parser(suppress_defaults: bool = False) -> argparse.ArgumentParser:
    """The parser. With `suppress_defaults`, a parse yields only the flags given (to refuse those that do
    not apply)."""
    parser = argparse.ArgumentParser(prog=JOBS, description=__doc__.split("\n\n")[0])
    _target(parser, argparse.SUPPRESS if suppress_defaults else os.environ.get("JOBS_TARGET", "local"))
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    fmt = argparse.ArgumentDefaultsHelpFormatter
    for name, (help_text, adders) in COMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text, formatter_class=fmt)
        # SUPPRESS: a --target before the command stays unless one is given after it too.
        _target(sub, argparse.SUPPRESS)
        for add in adders:
            add(sub)
        if suppress_defaults:
            for action in sub._actions:
                action.default = argparse.SUPPRESS
    return parser


def refuse_flags_that_do_not_apply(args: argparse.Namespace, given: set[str]) -> None:
    """A flag given where it means nothing is an error, never silently ignored."""
    problems = []
    wrong = AZURE_ONLY if args.target == "local" else LOCAL_ONLY
    other = "azure" if args.target == "local" else "local"
    source = "" if "target" in given or "JOBS_TARGET" not in os.environ else " (from $JOBS_TARGET)"
    for dest, (flag, why) in wrong.items():
        if dest in given:
            problems.append(f"{flag} applies to --target {other} only ({why}); this command runs with "
                            f"--target {args.target}{source}")
    if args.target == "azure" and "out" in given and not getattr(args, "dry_run", False):
        problems.append("--out is the folder for --dry-run; add --dry-run or leave --out out")
    if args.command == "pipeline" and not args.with_deploy:
        problems += [f"{flag} applies only with --with-deploy (there is no deploy step without it)"
                     for dest, flag in DEPLOY_STEP.items() if dest in given and dest not in wrong]
    elif args.command == "pipeline" and args.target == "azure" and "collect" in given:
        problems.append(f"--collect is not carried by the Azure pipeline's deploy step; run the pipeline without "
                        f"it, then `{JOBS} deploy --target azure --collect`")
    if problems:
        raise JobsError("flags that do not apply here:\n  - " + "\n  - ".join(problems))


def training_settings(args: argparse.Namespace) -> TrainingSettings:
    return TrainingSettings(
        primary_metric=args.metric, timeout_minutes=args.timeout_minutes,
        max_concurrent_trials=args.max_concurrent_trials, enable_early_termination=not args.no_early_termination,
        featurization=args.featurization, trial_timeout_minutes=args.trial_timeout_minutes,
        max_trials=args.max_trials, n_cross_validations=args.cv_folds, blocked_models=tuple(args.block_model),
        drop_columns=tuple(args.drop), seed=args.seed,
    )


def make_backend(args: argparse.Namespace) -> Backend:
    if args.target == "local":
        from jobs.local.backend import LocalBackend

        home = Path(os.environ.get("JOBS_LOCAL_HOME", ROOT / ".local"))
        runs = Path(os.environ.get("JOBS_RUNS_DIR", ROOT / "runs"))
        return LocalBackend(home, runs, budget_s=getattr(args, "local_budget_seconds", DEFAULT_LOCAL_BUDGET_S))
    from jobs.azure.backend import AzureBackend

    return AzureBackend.from_args(args)


def _deploy_options(args: argparse.Namespace) -> DeployOptions:
    return DeployOptions(args.instance_type, args.instance_count, args.port, args.collect)


def monitor_thresholds(args: argparse.Namespace) -> Thresholds:
    """The monitor command's thresholds; raises JobsError for a combination no flag type can check alone."""
    thresholds = Thresholds(args.numerical_metric, args.numerical_threshold, args.categorical_metric,
                            args.categorical_threshold, args.prediction_threshold, args.max_refused_share,
                            args.min_records)
    problems = thresholds.problems()
    if problems:
        raise JobsError("invalid monitoring settings:\n  - " + "\n  - ".join(problems))
    return thresholds


def run(args: argparse.Namespace) -> Any:
    command = args.command
    if command in ("status", "stop") and args.target != "local":
        raise JobsError(f"`{command}` is for the local endpoint; for Azure, open the studio link that "
                        "`pulumi stack output studio_url` prints")
    if command in ("train", "all", "pipeline"):
        # Settings first: a bad flag fails here, before a connection, a venv build or any training.
        training_settings(args).validate()
    thresholds = monitor_thresholds(args) if command == "monitor" else None
    backend = make_backend(args)
    deploys = command == "all" or (command == "pipeline" and args.with_deploy)
    if deploys and hasattr(backend, "preflight_deploy"):
        # What can be checked before the long work: the port is free (or ours), for one.
        backend.preflight_deploy(_deploy_options(args))
    if command in ("status", "stop"):
        print(getattr(backend, command)())
        return None
    if command == "monitor":
        # Local: the report, and exit 1 (DriftDetected) on drift. Azure: create or update the schedule.
        return backend.monitor(args.version, thresholds, args.window_hours, args.reference, args.emails)
    if command == "pipeline":
        deploy = _deploy_options(args) if args.with_deploy else None
        with training_failure(args.target):
            backend.pipeline(training_settings(args), args.data, args.min_auc, deploy, args.wait)
        return None
    if command in ("train", "all"):
        settings = training_settings(args)
        with training_failure(args.target):
            run_name = backend.train(settings, args.data, wait=command == "all" or args.wait)
        if command == "train":
            return None
        args.run = run_name
    if command in ("register", "all"):
        version = backend.register(args.run, args.min_auc)
        if command == "register":
            return None
        args.version = version
    if command in ("deploy", "all"):
        backend.deploy(args.version, _deploy_options(args))
        if command == "deploy":
            return None
    payload = build_request(args.file, args.set_fields, args.probability)
    answer = backend.invoke(payload)
    print(json.dumps(answer))
    if isinstance(answer, dict) and "status" in answer:
        raise JobsError(f"the endpoint refused the request with {answer['status']}: {answer.get('message')}")
    return answer


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


def _main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    # azure-ai-ml logs a warning for every experimental schema it touches (dump and load do);
    # they say nothing about this project's specs.
    logging.getLogger("azure.ai.ml._utils._experimental").setLevel(logging.ERROR)
    try:
        refuse_flags_that_do_not_apply(args, set(vars(build_parser(suppress_defaults=True).parse_args(argv))))
        run(args)
    except JobsError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("interrupted.", file=sys.stderr)
        return 130
    return 0
