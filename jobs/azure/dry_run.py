"""`--dry-run --out DIR`: every Azure ML spec written as YAML, without connecting to anything.

Each file loads back with azure-ai-ml's load_* functions (checked as it is written). data.yml,
automl-job.yml and pipeline-job.yml work with `az ml <data|job> create -f FILE` as they are.
model.yml and deployment.yml hold values only a real run knows (the AutoML job's name, its best
child, the model's own environment): each such value is named in a `# PLACEHOLDER` comment at
the top of the file and in the command's output. Two dump quirks are undone: local paths come
out absolute or rewritten as `azureml:` references, so they are made relative to the file again.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from azure.ai.ml import load_data, load_job, load_model, load_online_deployment

from jobs import dataset
from jobs.azure import monitoring, specs
from jobs.azure.lineage import azure_budget
from jobs.azure.stack_outputs import StackOutputs
from jobs.backend import DeployOptions
from jobs.commands import JOBS
from jobs.errors import JobsError
from jobs.lineage import LINEAGE_METRICS, MODEL_NAME, TrainingRun, model_tags, training_tags
from jobs.monitoring.check import Thresholds
from jobs.paths import ROOT
from jobs.training import TrainingSettings

# Placeholders: a dry run submits nothing, so these are not real names. AutoML names its best
# child only when the job has run (the parent run's `automl_best_child_run_id` tag, as
# azureml-examples' AutoML notebooks read it; children are `<job name>_<iteration>`).
PLACEHOLDER_JOB = "<automl-job-name>"
PLACEHOLDER_CHILD = "<best-child-run-id>"
# Without stack outputs (no `pulumi up` yet, no --outputs) a dry run still writes every spec, naming these.
PLACEHOLDER_COMPUTE = "<compute_name from the stack>"
COMPUTE_NOTE = (
    f"compute {PLACEHOLDER_COMPUTE}: the stack's compute_name output (`pulumi stack output compute_name`), "
    "or pass the stack's outputs with --outputs FILE"
)


class DryRunBackend:
    def __init__(
        self,
        outputs: StackOutputs,
        out: Path,
        say: Callable[[str], None] = print,
        *,
        stack: str = "dev",
        promote_options: DeployOptions | None = None,
        stack_outputs: Callable[[str], StackOutputs] | None = None,
    ) -> None:
        self.outputs = outputs
        self.out = out
        self.say = say
        self.stack = stack
        self.promote_options = promote_options or DeployOptions()
        self.stack_outputs = stack_outputs or _placeholder_outputs
        self.written: dict[str, Path] = {}
        self.placeholder_version: str | None = None  # what a dry `register` returned, not a real version
        self.dropped: tuple[str, ...] = tuple(dataset.default_schema().leaking)  # what a dry `train` left out
        self.leaking = "none"

    def _write(
        self,
        filename: str,
        entity: Any,
        loader: Callable[[str], Any],
        local_paths: dict[str, Path],
        fix: Callable[[dict[str, Any]], None] | None = None,
        placeholders: tuple[str, ...] = (),
        warning: str | None = None,
    ) -> Path:
        """Dump an entity, undo the dump quirks, load it back; `placeholders` become YAML comments at the top
        and lines of output, each naming a value to replace before `az ml ... create -f` sends it."""
        self.out.mkdir(parents=True, exist_ok=True)
        target = self.out / filename
        entity.dump(str(target))
        spec = yaml.safe_load(target.read_text())
        for dotted, path in local_paths.items():
            _set(spec, dotted, os.path.relpath(path, self.out.resolve()))
        if fix is not None:
            fix(spec)
        header = (f"# WARNING: {warning}\n" if warning else "") + "".join(
            f"# PLACEHOLDER: {line}\n" for line in placeholders
        )
        target.write_text(header + yaml.safe_dump(spec, sort_keys=False))
        try:
            loader(str(target))
        except Exception as error:
            raise JobsError(f"{target} does not load back with azure-ai-ml: {error}") from None
        self.written[filename] = target
        if warning:
            self.say(f"WARNING: {warning}")
        self.say(
            f"wrote {target}"
            + (" (placeholders to replace before `az ml ... create`: see below)" if placeholders else "")
        )
        for line in placeholders:
            self.say(f"  PLACEHOLDER: {line}")
        return target

    def _data_yml(self, data: Path, drop: tuple[str, ...]) -> str:
        """Write data.yml (the data asset the jobs refer to, with its staged folder); return its version."""
        folder = specs.data_folder(data, drop, self.out / "staging")
        asset = specs.data_asset(data, drop, folder)
        self._write("data.yml", asset, load_data, {"path": folder.resolve()})
        return str(asset.version)

    def train(self, settings: TrainingSettings, data: Path, wait: bool) -> str:
        settings = settings.for_data(data)
        settings.check_data(data, max_nodes=self.outputs.compute_max_nodes)
        self.dropped, self.leaking = settings.drop_columns, ",".join(settings.leaking_columns_used) or "none"
        warning = settings.leak_warning(dataset.load_schema(data))
        compute = self.outputs.compute_name or PLACEHOLDER_COMPUTE
        version = self._data_yml(data, settings.drop_columns)
        tags = training_tags(version, settings.as_tags())
        job = specs.automl_job(settings, f"azureml:{dataset.ASSET_NAME}:{version}", compute, tags)
        notes = () if self.outputs.compute_name else (COMPUTE_NOTE,)
        self._write("automl-job.yml", job, load_job, {}, warning=warning, placeholders=notes)
        return PLACEHOLDER_JOB

    def pipeline(
        self, settings: TrainingSettings, data: Path, min_auc: float | None, deploy: DeployOptions | None, wait: bool
    ) -> str:
        specs.check_pipeline_deploy(deploy)
        settings = settings.for_data(data)
        settings.check_data(data, max_nodes=self.outputs.compute_max_nodes)
        compute = self.outputs.compute_name or PLACEHOLDER_COMPUTE
        endpoint = self.outputs.endpoint_name or "<endpoint_name from the stack>"
        version = self._data_yml(data, settings.drop_columns)
        tags = training_tags(version, settings.as_tags())
        job = specs.pipeline_job(
            settings,
            f"azureml:{dataset.ASSET_NAME}:{version}",
            compute,
            min_auc,
            tags,
            (endpoint, deploy) if deploy else None,
        )
        relative_root = os.path.relpath(ROOT, self.out.resolve())

        def fix(spec: dict[str, Any]) -> None:
            # dump() writes the AutoML node's output as `job_output_type`, which load_job rejects,
            # and each component's code folder as an absolute path.
            spec["jobs"]["train"]["outputs"]["best_model"] = {"type": "mlflow_model"}
            for node in spec["jobs"].values():
                if isinstance(node.get("component"), dict) and "code" in node["component"]:
                    node["component"]["code"] = relative_root

        warning = settings.leak_warning(dataset.load_schema(data))
        notes = () if self.outputs.compute_name else (COMPUTE_NOTE,)
        self._write("pipeline-job.yml", job, load_job, {}, fix=fix, warning=warning, placeholders=notes)
        return "pipeline-job-name"

    def register(self, run: str | None, min_auc: float | None) -> str:
        """model.yml with the tags `register` would send (jobs/lineage.py model_tags).

        The run's own tags come from automl-job.yml when this dry run wrote one, else the settings
        are unknown. The metrics, the best child and the gate's figures exist only after a real
        run: they are placeholders, named in the file and in the output.
        """
        job = run or PLACEHOLDER_JOB
        written = self.written.get("automl-job.yml")
        run_tags = dict(yaml.safe_load(written.read_text()).get("tags") or {}) if written else {}
        training = TrainingRun(job, PLACEHOLDER_CHILD, {}, run_tags)
        tags = model_tags(training, None, registered_by="jobs register")
        tags.update({f"metric.{name}": "<from the best child run>" for name in LINEAGE_METRICS})
        tags.update({**azure_budget(0, run_tags), "budget.trials": "<the job's trial count>"})
        model = specs.model_from_run(PLACEHOLDER_CHILD, tags, f"Best model of AutoML job {job}")
        notes = [
            f"path names the best child run as {PLACEHOLDER_CHILD}: replace it with the "
            f"`automl_best_child_run_id` tag of the finished job (`az ml job show --name {job} "
            "--query tags.automl_best_child_run_id`)",
            "metric.*, budget.trials and gate.* tags are known only after the job has run: `register` "
            "fills them in (metric.* with the metrics the best child reports)",
        ]
        if job == PLACEHOLDER_JOB:
            notes.insert(0, f"{PLACEHOLDER_JOB} stands for the AutoML job's name (given when it is submitted)")
        if not written:
            notes.append("data_version, git_commit and setting.* tags come from the training job's own tags")
        self._write("model.yml", model, load_model, {}, placeholders=tuple(notes))
        self.placeholder_version = "1"
        return self.placeholder_version

    def deploy(self, version: str | None, options: DeployOptions) -> str:
        """deployment.yml: the rollout's first deployment. Its environment is a placeholder: a real deploy
        builds it from the registered model's own conda.yaml (AutoML's Python and pins), which a dry run
        cannot download; scoring/conda.yaml stands in for it and would not load an Azure AutoML model."""
        endpoint = self.outputs.endpoint_name or "<endpoint_name from the stack>"
        model_ref = f"azureml:{MODEL_NAME}:{version or '1'}"
        conda = monitoring.with_collection(specs.scoring_conda(), options.collect)
        # What the registered model's tags would say (a dry run registers nothing): this data, these drops.
        tags = {"dropped_columns": ",".join(self.dropped) or "none", "leaking_columns_used": self.leaking}
        tags["data_version"] = dataset.content_version(options.data or dataset.DEFAULT_CSV, self.dropped)
        contract = specs.azure_contract(tags, options, f"version {version or '1'}")
        code = specs.staged_code(self.out / "code", contract)
        spec = specs.deployment("blue", endpoint, model_ref, specs.environment(conda), options, code)
        notes = [
            "environment.conda_file is scoring/conda.yaml, not the model's environment: `deploy` merges "
            "the registered model's own conda.yaml (its Python and pins) with what score.py needs; "
            f"replace it with that (`az ml model download --name {MODEL_NAME} --version {version or '1'}` "
            "has it under mlflow-model/conda.yaml), or an Azure AutoML model will not load"
        ]
        if version is None or version == self.placeholder_version:
            notes.append(f"model {model_ref}: version {version or '1'} stands for the version `register` returns")
        if not self.outputs.endpoint_name:
            notes.append("endpoint_name: the stack's endpoint_name output")
        if contract["operating_point"] is None:
            notes.append(
                "code/model-contract.json has no operating point: deploy with --threshold T (0 < T < 1); "
                "score.py refuses to start without one, and a real `deploy` refuses before creating anything"
            )
        self._write(
            "deployment.yml",
            spec,
            load_online_deployment,
            {"code_configuration.code": code.resolve()},
            placeholders=tuple(notes),
        )
        return "blue"

    def monitor(
        self,
        version: str | None,
        thresholds: Thresholds,
        window_hours: float,
        reference: Path | None,
        emails: list[str],
    ) -> str:
        """monitor.yml: the schedule for deployment blue, with the shipped CSV's data version as reference.

        Which deployment is live and which data version the model was trained on are known only in the
        workspace: both are placeholders, named in the file and in the output.
        """
        from azure.ai.ml.entities._load_functions import load_schedule

        endpoint = self.outputs.endpoint_name or "<endpoint_name from the stack>"
        data_version = dataset.content_version(dataset.DEFAULT_CSV)
        data_ref = f"azureml:{dataset.ASSET_NAME}:{data_version}"
        spec = monitoring.schedule(endpoint, "blue", data_ref, thresholds, emails, window_hours)
        notes = [
            "deployment blue stands for the deployment that takes the endpoint's traffic (`monitor` reads it; "
            "blue/green alternates the names)",
            f"reference data {data_ref} is the shipped CSV's version; `monitor` uses the data_version tag of "
            f"the deployed model (`az ml model show --name {MODEL_NAME} --version N --query tags.data_version`)",
        ]
        if not self.outputs.endpoint_name:
            notes.append("endpoint_name: the stack's endpoint_name output")
        self._write("monitor.yml", spec, load_schedule, {}, placeholders=tuple(notes))
        return monitoring.MONITOR_NAME

    def promote(self, version: str, to: str) -> str:
        """What `promote` would share and deploy, without Azure: promote-environment.yml (the registry environment)
        and promote-deployment.yml (prod's deployment of the registry model), and the steps as lines of output.

        The version's tags, and so the promotion rule (jobs/promotion_rules.py), are read only by a real run."""
        from azure.ai.ml import load_environment

        from jobs.azure.promotion import environment_version, registry_uri, workspace_uri

        target = self.stack_outputs(to)
        registry = self.outputs.registry_name or target.registry_name or "<registry_name from the shared stack>"
        endpoint = target.endpoint_name or f"<endpoint_name of the {to} stack>"
        options = self.promote_options
        source = workspace_uri(
            self.outputs.subscription_id or "<subscription>",
            self.outputs.resource_group or "<resource group>",
            self.outputs.workspace_name or "<workspace>",
        )
        env = specs.environment(monitoring.with_collection(specs.scoring_conda(), options.collect))
        env.version = environment_version(env)
        model_ref = registry_uri(registry, "models", MODEL_NAME, version)
        env_ref = registry_uri(registry, "environments", specs.ENVIRONMENT_NAME, env.version)
        self.say(f"would check {MODEL_NAME} version {version} of {source}: passed the quality gate, no leaking column")
        self.say(
            f"would share it to registry {registry} as {model_ref} (type mlflow_model), with every lineage tag "
            "and promoted.from, promoted.from_version, promoted.by, promoted.at"
        )
        self._write("promote-environment.yml", env, load_environment, {}, placeholders=(_CONDA_NOTE,))
        tags = {"dropped_columns": ",".join(self.dropped) or "none", "leaking_columns_used": self.leaking}
        tags["data_version"] = dataset.content_version(options.data or dataset.DEFAULT_CSV, self.dropped)
        contract = specs.azure_contract(tags, options, f"version {version}")
        code = specs.staged_code(self.out / "promote-code", contract)
        slot = "blue"
        spec = specs.deployment(slot, endpoint, model_ref, env_ref, options, code)
        notes = [
            f"{slot} stands for prod's free slot (the one without traffic); the slot serving now is kept at 0% for "
            f"`{JOBS} rollback`",
            f"{env_ref}: the version is the content hash of the environment a real run builds from the model's own "
            "conda.yaml, so it differs from this one",
        ]
        if contract["operating_point"] is None:
            notes.append("no operating point: promote with --threshold T (0 < T < 1), as dev's deploy")
        self._write(
            "promote-deployment.yml",
            spec,
            load_online_deployment,
            {"code_configuration.code": code.resolve()},
            placeholders=tuple(notes),
        )
        self.say(f"would smoke-test {slot} alone, then move all of {endpoint}'s traffic to it")
        return slot

    def rollback(self, to: str) -> str:
        """What `rollback` would do, without Azure: one update of the endpoint's traffic, to the slot its tags name."""
        from jobs.azure.rollout import PREVIOUS_SLOT

        endpoint = self.stack_outputs(to).endpoint_name or f"<endpoint_name of the {to} stack>"
        self.say(
            f"would move all of {endpoint}'s traffic to the deployment its {PREVIOUS_SLOT} tag names (the slot "
            "that served before the last promotion), in one update of the endpoint; none named: refused"
        )
        return f"<the {PREVIOUS_SLOT} tag of {endpoint}>"

    def sample_request(self) -> dict[str, Any]:
        """The shipped dataset's example (the lesson's sample)."""
        from jobs.invocation import SAMPLE_REQUEST

        return SAMPLE_REQUEST

    def invoke(self, payload: dict[str, Any]) -> Any:
        self.out.mkdir(parents=True, exist_ok=True)  # as _write does for every other command
        target = self.out / "request.json"
        target.write_text(json.dumps(payload, indent=2))
        self.say(
            f"wrote {target} (send it with `az ml online-endpoint invoke --name "
            f"{self.outputs.endpoint_name or '<endpoint>'} --request-file {target}`)"
        )
        return {"dry_run": sorted(str(p) for p in [*self.written.values(), target])}


_CONDA_NOTE = (
    "conda_file is scoring/conda.yaml, not the model's environment: `promote` builds it from the dev model's own "
    "conda.yaml (its Python and pins) with what score.py needs"
)


def _placeholder_outputs(stack: str) -> StackOutputs:
    """The other stack's outputs when Pulumi can give them; placeholders (empty names) otherwise: a dry run reads
    what it can and connects to no Azure service."""
    from jobs.azure.stack_outputs import resolve

    try:
        return resolve(stack, only_stack=True, allow_missing=True)
    except JobsError:
        return StackOutputs("", "", "")


def _set(spec: dict[str, Any], dotted: str, value: str) -> None:
    keys = dotted.split(".")
    node = spec
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = value
