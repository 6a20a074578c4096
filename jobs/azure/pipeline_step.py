"""The steps the pipeline job runs inside Azure ML (jobs/azure/components/*.yml).

    python -m jobs.azure.pipeline_step register --model DIR [--min-auc 0.8] --model-name NAME --out DIR
    python -m jobs.azure.pipeline_step deploy --registration DIR --endpoint-name NAME

`register` applies the same quality gate and lineage tags as `python -m jobs register`
(jobs/lineage.py) to the AutoML node's best_model output, reading the data version, commit and
settings from the runs' own tags; a refused model fails the step, and
with it the pipeline, with the gate's message. `deploy` runs the same blue/green rollout as
`python -m jobs deploy`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from jobs.azure.lineage import azure_baseline, azure_budget, azure_children
from jobs.errors import JobsError
from jobs.lineage import TrainingRun, champion, model_tags, quality_gate

REGISTRATION_FILE = "registration.json"

# Registers an MLflow model folder: (folder, name, tags, description) -> version.
Registrar = Callable[[Path, str, dict[str, str], str], str]


def automl_run(client: Any, own_run_id: str) -> TrainingRun:
    """From this step's run, find the sibling AutoML run in the same pipeline: its tags, best child, metrics.

    `client` is an MLflow tracking client. The run's tags are the pipeline run's (the tags the
    pipeline job was submitted with: data_version, git_commit, setting.*) overlaid with the AutoML
    node's own, which carry the same and AutoML's best child.
    """
    own = client.get_run(own_run_id)
    pipeline_run = own.data.tags.get("mlflow.parentRunId")
    if not pipeline_run:
        raise JobsError(f"run {own_run_id} has no parent pipeline run")
    siblings = client.search_runs(
        experiment_ids=[own.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{pipeline_run}'"
    )
    automl = [run for run in siblings if "automl_best_child_run_id" in run.data.tags]
    if len(automl) != 1:
        raise JobsError(f"expected one AutoML run in pipeline {pipeline_run}, found {len(automl)}")
    best_child = automl[0].data.tags["automl_best_child_run_id"]
    tags = {**client.get_run(pipeline_run).data.tags, **automl[0].data.tags}
    return TrainingRun(
        automl[0].info.run_id,
        best_child,
        dict(client.get_run(best_child).data.metrics),
        {k: str(v) for k, v in tags.items()},
    )


def register_best_model(
    model_dir: Path,
    training: TrainingRun,
    children: list[Any],
    versions: list[Any],
    min_auc: float | None,
    model_name: str,
    register: Registrar,
    out: Path,
) -> str:
    """Gate, tag and register the model; write what was registered to out/registration.json.

    children: the AutoML run's child jobs (Job entities with properties); versions: (version, tags)
    of the model's registered versions. Same gate and tags as `python -m jobs register`.
    """
    if not (model_dir / "MLmodel").is_file():
        raise JobsError(
            f"{model_dir} is not an MLflow model (no MLmodel file); the AutoML node's best_model output should be one"
        )
    trials, best = azure_children(children)
    training = replace(training, tags={**azure_budget(trials, training.tags), **training.tags})
    verdict = quality_gate(
        training.metrics,
        baseline=azure_baseline(best, training),
        champion=champion(versions, training),
        min_score=min_auc,
    )
    print(verdict.summary())
    tags = model_tags(training, verdict, registered_by="pipeline")
    version = register(
        model_dir, model_name, tags, f"Best model of AutoML run {training.name} (AUC_weighted {verdict.score:.4f})"
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / REGISTRATION_FILE).write_text(
        json.dumps({"model_name": model_name, "version": version, "tags": tags}, indent=2)
    )
    print(f"registered {model_name} version {version} (AUC_weighted {verdict.score:.4f})")
    return version


def _workspace_client() -> Any:
    """MLClient for the workspace this job runs in, acting as the user who submitted it."""
    from azure.ai.ml import MLClient
    from azure.ai.ml.identity import AzureMLOnBehalfOfCredential

    return MLClient(
        AzureMLOnBehalfOfCredential(),
        os.environ["AZUREML_ARM_SUBSCRIPTION"],
        os.environ["AZUREML_ARM_RESOURCEGROUP"],
        os.environ["AZUREML_ARM_WORKSPACE_NAME"],
    )


def _azure_registrar(ml: Any) -> Registrar:
    def register(folder: Path, name: str, tags: dict[str, str], description: str) -> str:
        from azure.ai.ml.constants import AssetTypes
        from azure.ai.ml.entities import Model

        model = Model(path=str(folder), type=AssetTypes.MLFLOW_MODEL, name=name, tags=tags, description=description)
        return str(ml.models.create_or_update(model).version)

    return register


def _register(args: argparse.Namespace) -> None:
    from azure.core.exceptions import ResourceNotFoundError
    from mlflow.tracking import MlflowClient  # azureml-mlflow points it at the workspace inside a job

    training = automl_run(MlflowClient(), os.environ["MLFLOW_RUN_ID"])
    ml = _workspace_client()
    children = list(ml.jobs.list(parent_job_name=training.name))
    try:
        versions = [(m.version, m.tags or {}) for m in ml.models.list(name=args.model_name)]
    except ResourceNotFoundError:  # no version yet (see AzureBackend._model_versions)
        versions = []
    register_best_model(
        Path(args.model),
        training,
        children,
        versions,
        args.min_auc,
        args.model_name,
        _azure_registrar(ml),
        Path(args.out),
    )


def _deploy(args: argparse.Namespace) -> None:
    from jobs.azure.backend import AzureBackend
    from jobs.azure.session import connect
    from jobs.azure.stack_outputs import StackOutputs
    from jobs.backend import DeployOptions

    registration = json.loads((Path(args.registration) / REGISTRATION_FILE).read_text())
    outputs = StackOutputs(
        subscription_id=os.environ["AZUREML_ARM_SUBSCRIPTION"],
        resource_group=os.environ["AZUREML_ARM_RESOURCEGROUP"],
        workspace_name=os.environ["AZUREML_ARM_WORKSPACE_NAME"],
        endpoint_name=args.endpoint_name,
    )
    backend = AzureBackend(connect(outputs), outputs, stack="pipeline")
    backend.deploy(registration["version"], DeployOptions(args.instance_type, args.instance_count))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jobs.azure.pipeline_step", description=__doc__.split("\n\n")[0])
    steps = parser.add_subparsers(dest="step", required=True)
    register = steps.add_parser("register")
    register.add_argument("--model", required=True)
    register.add_argument("--min-auc", type=float, default=None, help="absolute floor; off when not given")
    register.add_argument("--model-name", required=True)
    register.add_argument("--out", required=True)
    deploy = steps.add_parser("deploy")
    deploy.add_argument("--registration", required=True)
    deploy.add_argument("--endpoint-name", required=True)
    # Required: the pipeline passes the deploy command's own values (DeployOptions' defaults, jobs/azure/specs.py).
    deploy.add_argument("--instance-type", required=True)
    deploy.add_argument("--instance-count", type=int, required=True)
    args = parser.parse_args(argv)
    try:
        (_register if args.step == "register" else _deploy)(args)
    except JobsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
