"""The interface both targets implement; the command line only talks to this."""

from __future__ import annotations

import tempfile
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from jobs.errors import JobsError
from jobs.training import TrainingSettings


@dataclass(frozen=True)
class DeployOptions:
    instance_type: str = "Standard_DS3_v2"
    instance_count: int = 1
    port: int = 5001  # local only
    collect: bool = False  # deploy --collect: opt-in production data collection (README, Monitoring)


class Backend(Protocol):
    def train(self, settings: TrainingSettings, data: Path, wait: bool) -> str:
        """Train; return the run (local) or job (Azure) name."""

    def register(self, run: str | None, min_auc: float | None) -> str:
        """Register the best model of a finished run, if it passes the gate (jobs/lineage.py quality_gate;
        min_auc: the optional absolute floor); return its version."""

    def deploy(self, version: str | None, options: DeployOptions) -> str:
        """Deploy a registered version (the latest when None); return a description of what runs."""

    def invoke(self, payload: dict[str, Any]) -> Any:
        """Send a request to the endpoint and return its answer."""

    def pipeline(self, settings: TrainingSettings, data: Path, min_auc: float | None, deploy: DeployOptions | None,
                 wait: bool) -> str:
        """Train and register (and deploy, when asked) as one unit: one pipeline job in Azure."""

    def monitor(self, version: str | None, thresholds: Any, window_hours: float, reference: Path | None,
                emails: list[str]) -> Any:
        """Compare collected records with the model's training data (jobs/monitoring/check.py Thresholds):
        locally a report, raising DriftDetected (exit 1) on drift; in Azure a monitoring schedule."""


@contextmanager
def training_failure(target: str) -> Iterator[None]:
    """Around a backend's train or pipeline call: a failure nobody foresaw ends in two lines that say why.

    JobsError (already a message) and Ctrl-C pass through. Anything else (a learner's ValueError,
    MemoryError, an SDK error) becomes a JobsError whose last line is the exception's own first
    line; the full traceback goes to a file named in the message, for a bug report, not to the
    terminal.
    """
    try:
        yield
    except (JobsError, KeyboardInterrupt):
        raise
    except Exception as error:
        with tempfile.NamedTemporaryFile("w", prefix="jobs-train-failure-", suffix=".log", delete=False) as log:
            log.write("".join(traceback.format_exception(error)))
        text = str(error).strip()
        why = f"{type(error).__name__}: {text.splitlines()[0][:300]}" if text else type(error).__name__
        hint = ("not enough memory for this data and settings; fewer concurrent trials or a smaller file help"
                if isinstance(error, MemoryError) else "the data or the settings are the usual cause")
        raise JobsError(f"training on the {target} target failed ({hint}); the full traceback is in {log.name}.\n"
                        f"why: {why}") from None
