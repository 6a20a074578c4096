"""`--dry-run --out DIR`: every Azure ML spec written as YAML, without connecting to anything.

Each file loads back with azure-ai-ml's load_* functions (checked as it is written) and works
with `az ml <data|job|model|online-deployment> create -f FILE`. Two dump quirks are undone:
local paths come out absolute or rewritten as `azureml:` references, so they are made
relative to the file again.
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
from jobs.azure import specs
from jobs.azure.stack_outputs import StackOutputs
from jobs.backend import DeployOptions
from jobs.errors import JobsError
from jobs.lineage import MODEL_NAME, training_tags
from jobs.monitoring import azure as monitoring
from jobs.training import TrainingSettings

ROOT = Path(__file__).resolve().parents[2]
PLACEHOLDER_JOB = "automl-job-name"
PLACEHOLDER_CHILD = f"{PLACEHOLDER_JOB}_best-child"


class DryRunBackend:
    def __init__(self, outputs: StackOutputs, out: Path, say: Callable[[str], None] = print) -> None:
        self.outputs = outputs
        self.out = out
        self.say = say
        self.written: dict[str, Path] = {}

    def _write(self, filename: str, entity: Any, loader: Callable[[str], Any], local_paths: dict[str, Path],
               fix: Callable[[dict[str, Any]], None] | None = None) -> Path:
        self.out.mkdir(parents=True, exist_ok=True)
        target = self.out / filename
        entity.dump(str(target))
        spec = yaml.safe_load(target.read_text())
        for dotted, path in local_paths.items():
            _set(spec, dotted, os.path.relpath(path, self.out.resolve()))
        if fix is not None:
            fix(spec)
        target.write_text(yaml.safe_dump(spec, sort_keys=False))
        try:
            loader(str(target))
        except Exception as error:
            raise JobsError(f"{target} does not load back with azure-ai-ml: {error}") from None
        self.written[filename] = target
        self.say(f"wrote {target}")
        return target

    def train(self, settings: TrainingSettings, data: Path, wait: bool) -> str:
        settings.check_data(data, max_nodes=self.outputs.compute_max_nodes)
        compute = self.outputs.compute_name or "<compute_name from the stack>"
        folder = specs.data_folder(data, settings.drop_columns, self.out / "staging")
        asset = specs.data_asset(data, settings.drop_columns, folder)
        self._write("data.yml", asset, load_data, {"path": folder.resolve()})
        tags = training_tags(asset.version, settings.as_tags())
        job = specs.automl_job(settings, f"azureml:{asset.name}:{asset.version}", compute, tags)
        self._write("automl-job.yml", job, load_job, {})
        return PLACEHOLDER_JOB

    def pipeline(self, settings: TrainingSettings, data: Path, min_auc: float, deploy: DeployOptions | None,
                 wait: bool) -> str:
        if deploy is not None and deploy.collect:
            raise JobsError("--collect is not carried by the pipeline's deploy step; run the pipeline without it, "
                            "then `python -m jobs deploy --target azure --collect`")
        settings.check_data(data, max_nodes=self.outputs.compute_max_nodes)
        compute = self.outputs.compute_name or "<compute_name from the stack>"
        endpoint = self.outputs.endpoint_name or "<endpoint_name from the stack>"
        version = dataset.content_version(data, settings.drop_columns)
        tags = training_tags(version, settings.as_tags())
        job = specs.pipeline_job(settings, f"azureml:{dataset.ASSET_NAME}:{version}", compute, min_auc, version,
                                 tags["git_commit"], tags, (endpoint, deploy) if deploy else None)
        relative_root = os.path.relpath(ROOT, self.out.resolve())

        def fix(spec: dict[str, Any]) -> None:
            # dump() writes the AutoML node's output as `job_output_type`, which load_job rejects,
            # and each component's code folder as an absolute path.
            spec["jobs"]["train"]["outputs"]["best_model"] = {"type": "mlflow_model"}
            for node in spec["jobs"].values():
                if isinstance(node.get("component"), dict) and "code" in node["component"]:
                    node["component"]["code"] = relative_root

        self._write("pipeline-job.yml", job, load_job, {}, fix=fix)
        return "pipeline-job-name"

    def register(self, run: str | None, min_auc: float) -> str:
        job = run or PLACEHOLDER_JOB
        child = PLACEHOLDER_CHILD if job == PLACEHOLDER_JOB else f"{job}_best-child"
        tags = {"training_run": job, "best_child_run": child, "quality_gate.min_auc": f"{min_auc:.4f}"}
        model = specs.model_from_run(child, tags, f"Best model of AutoML job {job}")
        self._write("model.yml", model, load_model, {})
        return "1"

    def deploy(self, version: str | None, options: DeployOptions) -> str:
        endpoint = self.outputs.endpoint_name or "<endpoint_name from the stack>"
        model_ref = f"azureml:{MODEL_NAME}:{version or '1'}"
        conda = monitoring.with_collection(specs.scoring_conda(), options.collect)
        spec = specs.deployment("blue", endpoint, model_ref, specs.environment(conda), options)
        self._write("deployment.yml", spec, load_online_deployment,
                    {"code_configuration.code": specs.SCORING_DIR.resolve()})
        return "blue"

    def monitor(self, version: str | None, thresholds: Any, window_hours: float, reference: Path | None,
                emails: list[str]) -> str:
        """monitor.yml: the schedule for deployment blue, with the shipped CSV's data version as reference."""
        from azure.ai.ml.entities._load_functions import load_schedule

        endpoint = self.outputs.endpoint_name or "<endpoint_name from the stack>"
        data_ref = f"azureml:{dataset.ASSET_NAME}:{dataset.content_version(dataset.DEFAULT_CSV)}"
        spec = monitoring.schedule(endpoint, "blue", data_ref, thresholds, emails, window_hours)
        self._write("monitor.yml", spec, load_schedule, {})
        return monitoring.MONITOR_NAME

    def invoke(self, payload: dict[str, Any]) -> Any:
        target = self.out / "request.json"
        target.write_text(json.dumps(payload, indent=2))
        self.say(f"wrote {target} (send it with `az ml online-endpoint invoke --name "
                 f"{self.outputs.endpoint_name or '<endpoint>'} --request-file {target}`)")
        return {"dry_run": sorted(str(p) for p in [*self.written.values(), target])}


def _set(spec: dict[str, Any], dotted: str, value: str) -> None:
    keys = dotted.split(".")
    node = spec
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = value
