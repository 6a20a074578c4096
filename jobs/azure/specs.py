"""Builders of the azure-ai-ml entities: data asset, AutoML job, model, environment, deployment.

Used by the Azure backend and by `--dry-run`, so what a dry run writes is what would be sent.
Each builder takes plain values; none connects to anything.
"""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path
from typing import Any

import yaml
from azure.ai.ml import Input, automl
from azure.ai.ml.constants import AssetTypes
from azure.ai.ml.entities import (
    CodeConfiguration,
    Data,
    Environment,
    ManagedOnlineDeployment,
    Model,
    OnlineRequestSettings,
    ProbeSettings,
)
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from jobs import dataset
from jobs.azure import monitoring, server_pins
from jobs.backend import DeployOptions
from jobs.commands import JOBS
from jobs.dataset import ASSET_NAME, DATA_DIR, DEFAULT_CSV, columns, content_version, rows
from jobs.errors import JobsError
from jobs.lineage import MODEL_NAME
from jobs.paths import ROOT
from jobs.training import TrainingSettings
from jobs.user_files import normalized_csv
from scoring.contract import OperatingPoint

SCORING_DIR = ROOT / "scoring"
EXPERIMENT = "heart-failure-automl"
ENVIRONMENT_NAME = "heart-failure-scoring"
# Azure ML's base image for custom conda environments (conda, no Python packages of its own),
# pinned by date tag so a rebuild gets the same OS layer. azureml-examples only shows `:latest`
# for ubuntu22.04; tag 20250601.v1 is from public Dockerfiles built FROM it (GitHub code search,
# "openmpi4.1.0-ubuntu22.04:20250601.v1"). The published tags are listed at
# https://mcr.microsoft.com/v2/azureml/openmpi4.1.0-ubuntu22.04/tags/list: move it forward from there.
BASE_IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:20250601.v1"
# AutoML writes the best child's MLflow model here.
MLFLOW_OUTPUT = "outputs/mlflow-model"


def data_folder(csv: Path, drop: tuple[str, ...], staging: Path) -> Path:
    """The folder uploaded as the MLTable asset: data/ itself, or a staged copy with its own MLTable.

    The copy is the CSV normalized by jobs/user_files.py (no byte-order mark, LF line endings,
    empty header cells named `Unnamed: N`), so Azure reads the columns the local check saw. MLTable
    has an `utf8bom` encoding (MLTableFileEncoding: ascii, iso88591, latin1, utf16, utf8, utf8bom,
    windows1252; learn.microsoft.com/python/api/mltable/mltable.mltablefileencoding), but no public
    source says how its reader treats CRLF or an empty header, so the copy leaves nothing to it.
    """
    normalized = normalized_csv(csv, f"data file {csv}").encode("utf-8")
    # data/ as it is only while its CSV is still in normal form (re-saved from Excel, it is not).
    if not drop and csv.resolve() == DEFAULT_CSV.resolve() and csv.read_bytes() == normalized:
        return DATA_DIR
    folder = staging / f"mltable-{content_version(csv, drop)}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / csv.name).write_bytes(normalized)
    table: dict[str, Any] = {
        "paths": [{"file": f"./{csv.name}"}],
        "transformations": [
            {"read_delimited": {"delimiter": ",", "encoding": "utf8", "header": "all_files_same_headers"}}
        ],
    }
    # A request field the data does not have may be "dropped" (training without it on purpose);
    # only columns that exist go into drop_columns.
    present = [column for column in drop if column in columns(csv)]
    if present:
        table["transformations"].append({"drop_columns": present})
    (folder / "MLTable").write_text(yaml.safe_dump(table, sort_keys=False))
    return folder


def data_asset(csv: Path, drop: tuple[str, ...], folder: Path) -> Data:
    version = content_version(csv, drop)
    dropped = f" without {', '.join(drop)}" if drop else ""
    records = len(rows(csv)) - 1
    return Data(
        name=ASSET_NAME,
        version=version,
        type=AssetTypes.MLTABLE,
        path=str(folder),
        description=f"Heart failure clinical records from {csv.name} ({records} patients){dropped}; "
        "version = content hash.",
        tags={
            "source": "UCI ML Repository dataset 519, CC BY 4.0"
            if csv.resolve() == DEFAULT_CSV.resolve()
            else f"file {csv.name}",
            "dropped_columns": ",".join(drop) or "none",
        },
    )


def automl_job(
    settings: TrainingSettings,
    training_data: Any,
    compute: str | None,
    tags: dict[str, str],
    outputs: dict[str, Any] | None = None,
) -> Any:
    """The lesson's AutoMLConfig, in SDK v2 terms.

    `training_data` is a data asset reference (`azureml:name:version`) for a standalone job, or
    the pipeline's input when the job is a pipeline node (then compute comes from the pipeline).
    """
    if isinstance(training_data, str):
        training_data = Input(type=AssetTypes.MLTABLE, path=training_data)
    job = automl.classification(
        compute=compute,
        experiment_name=EXPERIMENT if compute else None,
        training_data=training_data,
        outputs=outputs,
        target_column_name=settings.target,
        primary_metric=settings.primary_metric,
        n_cross_validations=settings.n_cross_validations,
        enable_model_explainability=True,
        tags=tags,
    )
    job.set_limits(
        timeout_minutes=math.ceil(settings.timeout_minutes),
        max_concurrent_trials=settings.max_concurrent_trials,
        enable_early_termination=settings.enable_early_termination,
        trial_timeout_minutes=math.ceil(settings.trial_timeout_minutes) if settings.trial_timeout_minutes else None,
        max_trials=settings.max_trials,
    )
    job.set_featurization(mode=settings.featurization)
    if settings.blocked_models:
        job.set_training(blocked_training_algorithms=list(settings.blocked_models))
    return job


def model_from_run(run_name: str, tags: dict[str, str], description: str) -> Model:
    """The best child's MLflow model output, registered under the fixed name."""
    return Model(
        name=MODEL_NAME,
        path=f"azureml://jobs/{run_name}/outputs/artifacts/paths/{MLFLOW_OUTPUT}/",
        type=AssetTypes.MLFLOW_MODEL,
        description=description,
        tags=tags,
    )


# What score.py itself needs on top of the model's own environment: the server it runs in, the
# swagger decorators, and MLflow to load the model. A package counts as named when the model
# names it or one that brings it: azureml-mlflow requires mlflow-skinny with an upper bound
# (azureml-mlflow 1.62.0.post6 on PyPI: `mlflow-skinny<=3.15.0`), so adding our own MLflow next to
# it could ask for a version it forbids and fail the image build.
SCORING_NEEDS = {
    "azureml-inference-server-http": ("azureml-inference-server-http",),
    "inference-schema": ("inference-schema",),
    "mlflow-skinny": ("mlflow", "mlflow-skinny", "azureml-mlflow"),
}


def scoring_conda(model_conda: dict[str, Any] | None = None) -> dict[str, Any]:
    """The deployment's environment: the model's own recorded environment plus what score.py needs.

    The model's environment wins: a model unpickles only with the library versions it was trained
    with, and Azure AutoML trains on its own Python and pins (numpy below 2, for one). Only the
    packages score.py needs and the model does not name (SCORING_NEEDS) are added. MLflow, when
    added, is capped at scoring/conda.yaml's pin rather than pinned to it, so that whatever the
    model's packages require of MLflow (azureml-mlflow's cap, for one) still resolves and no MLflow
    above it is ever forced in. Without a model environment (a dry run), it is scoring/conda.yaml as it is.
    Raises JobsError naming each pin of the model that a package added forbids (jobs/azure/server_pins.py).
    """
    ours: dict[str, Any] = yaml.safe_load((SCORING_DIR / "conda.yaml").read_text())  # our own file: a mapping
    if not model_conda:
        return ours
    model_deps = [d for d in model_conda.get("dependencies", []) if not isinstance(d, dict)]
    model_pip: list[str] = next(
        (d["pip"] for d in model_conda.get("dependencies", []) if isinstance(d, dict) and "pip" in d), []
    )
    our_pins = {_package(req): req for req in next(d["pip"] for d in ours["dependencies"] if isinstance(d, dict))}
    named = {_package(req) for req in model_pip} | {_package(str(d)) for d in model_deps}
    added = []
    for package, aliases in SCORING_NEEDS.items():
        if named & set(aliases):
            continue
        pin = our_pins[package]
        added.append(pin.replace("==", "<=") if package == "mlflow-skinny" else pin)
    problems = server_pins.clashes(model_conda, added)  # review F9: refused here, not in Azure's image build
    if problems:
        raise JobsError(
            "the scoring server cannot be installed next to the model's own pins (its conda.yaml):\n  - "
            + "\n  - ".join(problems)
            + "\nthe model's versions win, as it unpickles only with them; deploy a model trained with versions "
            "the server allows, or score it with a server release that fits them (scoring/conda.yaml)"
        )
    if not any(str(d).startswith("python") for d in model_deps):
        model_deps.insert(0, next(d for d in ours["dependencies"] if str(d).startswith("python")))
    if "pip" not in model_deps:
        model_deps.append("pip")
    return {
        "name": ours["name"],
        "channels": model_conda.get("channels") or ours["channels"],
        "dependencies": [*model_deps, {"pip": [*model_pip, *added]}],
    }


def _package(requirement: str) -> str:
    """The normalized project name of a pip requirement (PEP 508, via packaging) or a conda spec.

    Conda specs (`python=3.9`, `numpy=1.23.5=py39h...`, `conda-forge::pip`) are not PEP 508: their
    name is what precedes the first `=`, `<`, `>`, `!` or space, after any `channel::`. Names are
    normalized as PEP 503 does (`Azureml_MLflow` and `azureml.mlflow` are `azureml-mlflow`).
    """
    try:
        name = Requirement(requirement).name
    except InvalidRequirement:
        name = re.split(r"[=<>!~\s\[]", requirement.split("::")[-1].strip(), maxsplit=1)[0]
    return canonicalize_name(name)


def environment(conda: dict[str, Any]) -> Environment:
    return Environment(
        name=ENVIRONMENT_NAME,
        image=BASE_IMAGE,
        conda_file=conda,
        description="azmlinfsrv + the model's dependencies, from scoring/conda.yaml",
    )


def azure_contract(tags: dict[str, str], options: DeployOptions, what: str) -> dict[str, Any]:
    """The contract (scoring/contract.py) of a model Azure AutoML wrote, which carries none of its own: the schema
    beside the training CSV (options.data, else the shipped one), the inputs that CSV has less the model's
    `dropped_columns` tag, their training ranges, and the operating point --threshold chose (None when not given:
    score.py then refuses to start, so `deploy` refuses first).

    JobsError when the CSV is not the data the model was trained on (its `data_version` tag, a content hash).
    """
    import pandas as pd

    from jobs.contract import contract_document, training_ranges

    csv = options.data or DEFAULT_CSV
    schema = dataset.load_schema(csv)
    dropped = tuple(c for c in tags.get("dropped_columns", "none").split(",") if c and c != "none")
    expected = tags.get("data_version")
    found = content_version(csv, dropped)
    if expected and expected != found:
        raise JobsError(
            f"{what} was trained on data version {expected}, and {csv} is version {found}: the contract (fields, "
            "ranges) must come from the data the model saw; pass that CSV with --data"
        )
    table = dataset.load(csv)
    frame = pd.DataFrame([cells for _, cells in table.rows], columns=table.header).apply(pd.to_numeric, errors="coerce")
    inputs = [name for name in schema.feature_names if name in table.header and name not in dropped]
    point = None
    if options.threshold is not None:
        point = OperatingPoint(float(options.threshold), f"--threshold {options.threshold:g}, chosen at deploy time")
    leaking = tuple(
        c for c in tags.get("leaking_columns_used", "none").split(",") if c and c not in ("none", "unknown")
    )
    return contract_document(schema, inputs, training_ranges(frame, inputs), point, (), leaking)


def staged_code(folder: Path, contract: dict[str, Any]) -> Path:
    """The deployment's code folder: scoring/'s scripts and the model's contract beside them, in `folder`."""
    from jobs.contract import write_contract

    folder.mkdir(parents=True, exist_ok=True)
    for script in sorted(SCORING_DIR.glob("*.py")):
        shutil.copyfile(script, folder / script.name)
    write_contract(folder, contract)
    return folder


def deployment(
    name: str, endpoint: str, model_ref: str, env: Environment | str, options: DeployOptions, code: Path = SCORING_DIR
) -> Any:
    """The managed online deployment; `code` is the folder uploaded as its code (staged_code: score.py and the
    model's contract); `env` an inline Environment, or a registered one's reference (azureml://registries/...)."""
    return ManagedOnlineDeployment(
        name=name,
        endpoint_name=endpoint,
        model=model_ref,
        environment=env,
        code_configuration=CodeConfiguration(code=str(code), scoring_script="score.py"),
        instance_type=options.instance_type,
        instance_count=options.instance_count,
        app_insights_enabled=True,
        # Two server workers, measured (bench/scoring.py, docs/testing.md), and as many
        # concurrent requests: "set to the number of requests that your model can process concurrently"
        # with WORKER_COUNT to match (azure-ai-docs reference-yaml-deployment-managed-online.md).
        request_settings=OnlineRequestSettings(request_timeout_ms=10_000, max_concurrent_requests_per_instance=2),
        # MLflow and LightGBM imports plus the model load take tens of seconds on a cold
        # instance: give liveness a minute before it counts, and readiness five minutes in all.
        liveness_probe=ProbeSettings(initial_delay=60, period=10, timeout=5, failure_threshold=30),
        readiness_probe=ProbeSettings(initial_delay=10, period=10, timeout=5, failure_threshold=30),
        environment_variables={
            "WORKER_COUNT": "2",
            "AZUREML_LOG_LEVEL": "INFO",
            **monitoring.collection_variables(options.collect),
        },
        data_collector=monitoring.data_collector(options.collect),  # jobs deploy --collect
        tags={"managed-by": "python -m jobs deploy"},
    )


COMPONENTS = Path(__file__).resolve().parent / "components"
PIPELINE_NAME = "heart_failure_train_and_register"


def pipeline_job(
    settings: TrainingSettings,
    data_ref: str,
    compute: str,
    min_auc: float | None,
    tags: dict[str, str],
    deploy: tuple[str, DeployOptions] | None = None,
) -> Any:
    """The lesson's challenge as one pipeline job: AutoML, then the gated register step (then, optionally,
    the blue/green deploy step), wired through the AutoML node's best_model output.

    `tags` (training_tags: data version, commit, settings) go on the pipeline and on the AutoML node;
    the register step reads them back from those runs, so they are not passed to it a second time.
    min_auc None leaves the optional floor input out."""
    from azure.ai.ml import Output, dsl, load_component
    from azure.ai.ml.entities import UserIdentityConfiguration

    register_step = load_component(source=str(COMPONENTS / "register_model.yml"))
    deploy_step = load_component(source=str(COMPONENTS / "deploy_model.yml")) if deploy else None

    # func=None spelled out: azure-ai-ml 1.35.2's overload for the decorator factory declares it without a default.
    @dsl.pipeline(
        None,
        name=PIPELINE_NAME,
        experiment_name=EXPERIMENT,
        description="AutoML classification of DEATH_EVENT, then the gated model registration.",
    )
    # No annotation: with `from __future__ import annotations` the dsl would see a string and refuse it.
    def train_and_register(training_data):  # type: ignore[no-untyped-def]  # see the line above
        train = automl_job(settings, training_data, None, tags, outputs={"best_model": Output(type="mlflow_model")})
        floor = {} if min_auc is None else {"min_auc": min_auc}
        register = register_step(model=train.outputs.best_model, model_name=MODEL_NAME, **floor)
        # Each step runs as the person who submitted the pipeline: the register and deploy steps call Azure ML
        # with AzureMLOnBehalfOfCredential (pipeline_step.py), which needs the step's identity to be the user's
        # (azureml-examples' on-behalf-of sample: "identity: type: user_identity" in the definition of the job that
        # uses the credential; a pipeline step is such a job). Set per step, as the docs show, not on the pipeline.
        # (Set one by one: the dsl names each node after the last local variable bound to it.)
        train.identity = UserIdentityConfiguration()
        register.identity = UserIdentityConfiguration()
        if deploy_step is not None and deploy is not None:
            endpoint, options = deploy
            deploy_model = deploy_step(
                registration=register.outputs.registration,
                endpoint_name=endpoint,
                instance_type=options.instance_type,
                instance_count=options.instance_count,
            )
            deploy_model.name = "deploy"
            deploy_model.identity = UserIdentityConfiguration()

    job = train_and_register(training_data=Input(type=AssetTypes.MLTABLE, path=data_ref))
    # Never None: the getter creates the settings when unset (azure-ai-ml 1.35.2, PipelineJob.settings).
    assert job.settings is not None
    job.settings.default_compute = compute
    job.tags = tags
    return job


def check_pipeline_deploy(deploy: DeployOptions | None) -> None:
    """Refuse what the pipeline's deploy step (components/deploy_model.yml) cannot carry: --collect, and the
    model's contract and operating point (staged from the training CSV and --threshold by `jobs deploy`).

    Raises JobsError naming the command that deploys instead.
    """
    if deploy is not None:
        raise JobsError(
            "--with-deploy: the pipeline's deploy step cannot carry the model's contract (its fields, ranges and "
            "operating point, staged beside score.py from the training CSV and --threshold); run the pipeline "
            f"without --with-deploy, then `{JOBS} deploy --target azure --threshold T`"
        )
