"""The local target: the same commands as Azure, on this machine."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from jobs.backend import DeployOptions
from jobs.errors import JobsError, read_json
from jobs.lineage import MODEL_NAME, check_quality_gate, lineage_tags
from jobs.local.endpoint import LocalEndpoint
from jobs.local.registry import LocalRegistry
from jobs.training import DEFAULT_LOCAL_BUDGET_S, TrainingSettings

ROOT = Path(__file__).resolve().parents[2]


class LocalBackend:
    def __init__(self, home: Path = ROOT / ".local", runs_dir: Path = ROOT / "runs",
                 budget_s: float = DEFAULT_LOCAL_BUDGET_S, say: Callable[[str], None] = print) -> None:
        self.home = home
        self.runs_dir = runs_dir
        self.budget_s = budget_s
        self.say = say
        self.registry = LocalRegistry(home / "registry")
        self.endpoint = LocalEndpoint(home, say=say)

    def train(self, settings: TrainingSettings, data: Path, wait: bool = True) -> str:
        from jobs.local.automl import train  # heavy (FLAML, pandas): only when training

        result = train(settings, data, self.runs_dir, self.budget_s, progress=self.say)
        self.say(f"best model: {result.best_learner}, AUC_weighted {result.metrics['AUC_weighted']:.4f} "
                 f"(out-of-fold), accuracy {result.metrics['accuracy']:.4f}")
        self.say(f"report: {result.report}")
        return result.run_id

    def _run_info(self, run: str | None) -> dict[str, Any]:
        if run is None:
            runs = sorted(p for p in self.runs_dir.glob("*/run.json")) if self.runs_dir.is_dir() else []
            if not runs:
                raise JobsError("there is no local training run to register; run `python -m jobs train --target "
                                "local` first")
            path = runs[-1]
        else:
            path = self.runs_dir / run / "run.json"
            if not path.is_file():
                known = sorted(p.parent.name for p in self.runs_dir.glob("*/run.json"))
                raise JobsError(f"no finished local run named {run!r} under {self.runs_dir}; runs: "
                                + (", ".join(known[-5:]) or "none"))
        return read_json(path)

    def register(self, run: str | None, min_auc: float) -> str:
        info = self._run_info(run)
        check_quality_gate(info["metrics"], min_auc)
        tags = lineage_tags(metrics=info["metrics"], data_version=info["data_version"],
                            training_run=info["run_id"], best_child=info["best_learner"],
                            settings_tags=info["settings"])
        version, created = self.registry.register(MODEL_NAME, self.runs_dir / info["run_id"] / "model", tags)
        self.say(f"{'registered' if created else 'already registered'}: {MODEL_NAME} version {version.version} "
                 f"(run {info['run_id']}, AUC_weighted {info['metrics']['AUC_weighted']:.4f})")
        return str(version.version)

    def deploy(self, version: str | None, options: DeployOptions) -> str:
        if version is not None and not version.isdigit():
            raise JobsError(f"--version {version!r} is not a version number; local versions are 1, 2, 3, ...")
        model = self.registry.get(MODEL_NAME, int(version) if version else None)
        state = self.endpoint.deploy(model, options.port, collect=options.collect)
        self.say(f"deployed {MODEL_NAME} version {state.model_version} at {state.url}/score (pid {state.pid})"
                 + (f"; collecting scored records in {state.collect_dir}" if state.collect_dir else ""))
        return str(state.model_version)

    def invoke(self, payload: dict[str, Any]) -> Any:
        return self.endpoint.invoke(payload)

    def pipeline(self, settings: TrainingSettings, data: Path, min_auc: float, deploy: DeployOptions | None,
                 wait: bool = True) -> str:
        """The pipeline's steps, in order, on this machine: train, register (gate and tags), then deploy."""
        version = self.register(self.train(settings, data), min_auc)
        if deploy is not None:
            self.deploy(version, deploy)
        return version

    def monitor(self, version: str | None, thresholds: Any, window_hours: float, reference: Path | None,
                emails: list[str]) -> Any:
        """Drift of the collected records against the training data (jobs/monitoring/local.py)."""
        from jobs.monitoring.local import monitor

        if emails:
            raise JobsError("--email is for the Azure target's alerts; locally, act on the exit code (1 on drift)")
        state = self.endpoint.state()
        return monitor(self.home, self.runs_dir, state.model_version if state else None, version, thresholds,
                       window_hours, reference, say=self.say)

    def status(self) -> str:
        state = self.endpoint.state()
        if state is None:
            return "nothing is deployed locally"
        return (f"{state.model_name} version {state.model_version} is serving at {state.url}/score "
                f"(pid {state.pid}, since {state.started_at}, log {state.log})"
                + (f"; collecting scored records in {state.collect_dir}" if state.collect_dir else ""))

    def stop(self) -> str:
        state = self.endpoint.stop()
        if state is None:
            return "nothing was running"
        return f"stopped {state.model_name} version {state.model_version} (pid {state.pid})"
