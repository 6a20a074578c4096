"""The interface both targets implement; the command line only talks to this."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from jobs.training import TrainingSettings


@dataclass(frozen=True)
class DeployOptions:
    instance_type: str = "Standard_DS3_v2"
    instance_count: int = 1
    port: int = 5001  # local only


class Backend(Protocol):
    def train(self, settings: TrainingSettings, data: Path, wait: bool) -> str:
        """Train; return the run (local) or job (Azure) name."""

    def register(self, run: str | None, min_auc: float) -> str:
        """Register the best model of a finished run, if it passes the gate; return its version."""

    def deploy(self, version: str | None, options: DeployOptions) -> str:
        """Deploy a registered version (the latest when None); return a description of what runs."""

    def invoke(self, payload: dict[str, Any]) -> Any:
        """Send a request to the endpoint and return its answer."""

    def pipeline(self, settings: TrainingSettings, data: Path, min_auc: float, deploy: DeployOptions | None,
                 wait: bool) -> str:
        """Train and register (and deploy, when asked) as one unit: one pipeline job in Azure."""
