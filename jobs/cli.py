"""The command line: `python -m jobs {train,register,deploy,invoke,all,pipeline,status,stop}`.

Thin: it parses flags into settings and calls a backend. Every user-fixable problem is a
JobsError, printed as one paragraph with a non-zero exit; no traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from jobs.backend import DeployOptions, training_failure
from jobs.dataset import DEFAULT_CSV
from jobs.errors import JobsError
from jobs.invocation import build_request
from jobs.lineage import DEFAULT_MIN_AUC
from jobs.monitoring import command as monitor_command
from jobs.training import DEFAULT_LOCAL_BUDGET_S, TrainingSettings

ROOT = Path(__file__).resolve().parent.parent
DEFAULTS = TrainingSettings()
TARGETS = ("local", "azure")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", choices=TARGETS, default=os.environ.get("JOBS_TARGET", "local"),
                        help="where to run: this machine, or the Azure ML workspace of a Pulumi stack "
                             "(env JOBS_TARGET)")
    azure = parser.add_argument_group("Azure target")
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


def _train_flags(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("training (the lesson's values are the defaults)")
    g.add_argument("--data", type=Path, default=DEFAULT_CSV, help="CSV with the features and the label")
    g.add_argument("--metric", default=DEFAULTS.primary_metric, help="primary metric")
    g.add_argument("--timeout-minutes", type=float, default=DEFAULTS.timeout_minutes,
                   help="experiment timeout")
    g.add_argument("--max-concurrent-trials", type=int, default=DEFAULTS.max_concurrent_trials,
                   help="trials at once (at most the cluster's max nodes)")
    g.add_argument("--no-early-termination", action="store_true", help="turn early termination off")
    g.add_argument("--featurization", default=DEFAULTS.featurization, help="auto or off")
    g.add_argument("--trial-timeout-minutes", type=float, default=None, help="limit per trial")
    g.add_argument("--max-trials", type=int, default=None, help="limit on the number of trials")
    g.add_argument("--cv-folds", type=int, default=DEFAULTS.n_cross_validations, help="cross-validation folds")
    g.add_argument("--block-model", action="append", default=[], metavar="MODEL",
                   help="a model AutoML must not try (repeatable), e.g. KNN")
    g.add_argument("--drop", action="append", default=[], metavar="COLUMN",
                   help="a column to leave out (repeatable); `--drop time` removes the follow-up length, "
                        "which leaks the outcome")
    g.add_argument("--seed", type=int, default=DEFAULTS.seed, help="random seed (local)")
    g.add_argument("--local-budget-seconds", type=float, default=DEFAULT_LOCAL_BUDGET_S,
                   help="local only: cap on FLAML's time budget (the timeout, if shorter, wins)")
    g.add_argument("--wait", action="store_true", help="Azure: stream the job's status until it ends")


def _register_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", "--job", dest="run", default=None,
                        help="the training run (local) or AutoML job (Azure); default: the latest")
    parser.add_argument("--min-auc", type=float, default=DEFAULT_MIN_AUC,
                        help="quality gate: refuse a model whose AUC_weighted is lower")


def _deploy_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--version", default=None, help="model version to deploy; default: the latest")
    parser.add_argument("--instance-type", default=DeployOptions.instance_type, help="Azure VM size per instance")
    parser.add_argument("--instance-count", type=int, default=DeployOptions.instance_count,
                        help="Azure instances (each reserves 120%% of its cores in quota)")
    parser.add_argument("--port", type=int, default=DeployOptions.port, help="local only: port on 127.0.0.1")
    parser.add_argument("--collect", action="store_true",
                        help="collect each scored record's 12 features and answer for `jobs monitor` (see README)")


def _invoke_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--file", type=Path, default=None, help="JSON request, or an array of records")
    parser.add_argument("--set", dest="set_fields", action="append", default=[], metavar="FIELD=VALUE",
                        help="change one field of the lesson's sample (repeatable)")
    parser.add_argument("--probability", action="store_true", help="also return the probability of DEATH_EVENT")


def _pipeline_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--with-deploy", action="store_true",
                        help="add the blue/green deploy step after the register step")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m jobs", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    fmt = argparse.ArgumentDefaultsHelpFormatter
    specs = {
        "train": ("run AutoML on the dataset", [_train_flags]),
        "register": ("register the best model of a finished run, behind a quality gate", [_register_flags]),
        "deploy": ("deploy a registered model to the online endpoint (blue/green)", [_deploy_flags]),
        "invoke": ("send the lesson's sample (or your records) to the endpoint", [_invoke_flags]),
        "all": ("train, register, deploy and invoke, in order",
                [_train_flags, _register_flags, _deploy_flags, _invoke_flags]),
        "pipeline": ("train and register as one pipeline job (deploy too with --with-deploy)",
                     [_train_flags, _register_flags, _deploy_flags, _pipeline_flags]),
        "monitor": (monitor_command.HELP, [monitor_command.add_flags]),
        "status": ("local: show what the local endpoint serves", []),
        "stop": ("local: stop the local endpoint", []),
    }
    for name, (help_text, adders) in specs.items():
        sub = commands.add_parser(name, help=help_text, description=help_text, formatter_class=fmt)
        _common(sub)
        for add in adders:
            add(sub)
    return parser


def training_settings(args: argparse.Namespace) -> TrainingSettings:
    return TrainingSettings(
        primary_metric=args.metric, timeout_minutes=args.timeout_minutes,
        max_concurrent_trials=args.max_concurrent_trials, enable_early_termination=not args.no_early_termination,
        featurization=args.featurization, trial_timeout_minutes=args.trial_timeout_minutes,
        max_trials=args.max_trials, n_cross_validations=args.cv_folds, blocked_models=tuple(args.block_model),
        drop_columns=tuple(args.drop), seed=args.seed,
    )


def make_backend(args: argparse.Namespace) -> Any:
    if args.target == "local":
        if args.dry_run:
            raise JobsError("--dry-run builds Azure ML specs; use it with --target azure")
        from jobs.local.backend import LocalBackend

        home = Path(os.environ.get("JOBS_LOCAL_HOME", ROOT / ".local"))
        runs = Path(os.environ.get("JOBS_RUNS_DIR", ROOT / "runs"))
        return LocalBackend(home, runs, budget_s=getattr(args, "local_budget_seconds", DEFAULT_LOCAL_BUDGET_S))
    from jobs.azure.backend import AzureBackend

    return AzureBackend.from_args(args)


def run(args: argparse.Namespace) -> Any:
    backend = make_backend(args)
    command = args.command
    if command in ("status", "stop"):
        if args.target != "local":
            raise JobsError(f"`{command}` is for the local endpoint; for Azure, open the studio link that "
                            "`pulumi stack output studio_url` prints")
        print(getattr(backend, command)())
        return None
    if command == "monitor":
        return monitor_command.run(args, backend)
    if command == "pipeline":
        deploy = (DeployOptions(args.instance_type, args.instance_count, args.port, args.collect)
                  if args.with_deploy else None)
        with training_failure(args.target):
            backend.pipeline(training_settings(args), args.data, args.min_auc, deploy, args.wait)
        return None
    if command in ("train", "all"):
        settings = training_settings(args)
        with training_failure(args.target):
            run_name = backend.train(settings, args.data, wait=args.wait or command == "all")
        if command == "train":
            return None
        args.run = run_name
    if command in ("register", "all"):
        version = backend.register(args.run, args.min_auc)
        if command == "register":
            return None
        args.version = version
    if command in ("deploy", "all"):
        backend.deploy(args.version, DeployOptions(args.instance_type, args.instance_count, args.port, args.collect))
        if command == "deploy":
            return None
    payload = build_request(args.file, args.set_fields, args.probability)
    answer = backend.invoke(payload)
    print(json.dumps(answer))
    if isinstance(answer, dict) and "status" in answer:
        raise JobsError(f"the endpoint refused the request with {answer['status']}: {answer.get('message')}")
    return answer


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # azure-ai-ml logs a warning for every experimental schema it touches (dump and load do);
    # they say nothing about this project's specs.
    logging.getLogger("azure.ai.ml._utils._experimental").setLevel(logging.ERROR)
    try:
        run(args)
    except JobsError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("interrupted.", file=sys.stderr)
        return 130
    return 0
