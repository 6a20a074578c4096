"""The contract of a target: what the command line may call, what each call returns and raises.

Modelled on mlflow's deployment plugin contract (`mlflow/deployments/base.py`, `BaseDeploymentClient`):
one documented method per operation, with its return value, its errors and whether repeating it is
safe. Three classes implement `Backend`: `jobs.local.backend.LocalBackend`, `jobs.azure.backend.AzureBackend`
and `jobs.azure.dry_run.DryRunBackend` (it writes specs instead of calling Azure);
tests/jobs/test_backend_contract.py checks their signatures against this Protocol, and the type checker
checks `make_backend`'s return type.

Errors, for every method: a problem the user can fix is a `JobsError` (the command line prints its message
and exits non-zero); Ctrl-C while Azure still works is `jobs.errors.Interrupted` (a JobsError saying what
still runs); anything else is a bug or an unforeseen service error (train and pipeline wrap those with
`training_failure`).

The local endpoint's process control (`status`, `stop`, `preflight_deploy`) exists on this machine only;
it is the separate `LocalEndpointControl` Protocol, not part of `Backend`.
"""

from __future__ import annotations

import json
import tempfile
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from jobs.errors import JobsError, first_line
from jobs.monitoring.check import Thresholds
from jobs.options import OPTIONS
from jobs.options import problems as bound_problems
from jobs.training import TrainingSettings

# A refusal lists at most this many of the endpoint's problems in the error message; the printed
# body has them all (scoring/schema.py caps the body itself).
LISTED_PROBLEMS = 10


@dataclass(frozen=True)
class DeployOptions:
    """How to deploy: the Azure VM size and instance count, the local port, and opt-in collection."""

    instance_type: str = "Standard_DS3_v2"
    instance_count: int = 1
    port: int = OPTIONS["port"].default  # local only
    collect: bool = False  # deploy --collect: opt-in production data collection (docs/monitoring.md)
    # The operating point (scoring/contract.py): --threshold T, or --min-sensitivity S applied to the model's
    # out-of-fold accuracy table; neither: the point the model recorded at training (local models).
    threshold: float | None = None
    min_sensitivity: float | None = None
    # Azure: the CSV the model was trained on (its schema and ranges go into the contract staged with the code);
    # None: the shipped data.
    data: Path | None = None

    def problems(self) -> list[str]:
        """Every reason these options cannot be used ([] when they can): a value out of its declared bounds
        (jobs/options.py: an instance count below 1, a port outside 1024-65535, ...), a value of the wrong type,
        or an instance type that is not an Azure VM size name."""
        from infra.settings import canonical_vm_size

        problems = bound_problems(
            {
                "instance_count": self.instance_count,
                "port": self.port,
                "threshold": self.threshold,
                "min_sensitivity": self.min_sensitivity,
            }
        )
        if not isinstance(self.instance_type, str) or canonical_vm_size(self.instance_type) is None:
            problems.append(
                f"--instance-type {self.instance_type!r} is not an Azure VM size name; expected one such "
                "as Standard_DS3_v2 or Standard_D4s_v5 (any case)"
            )
        return problems

    def validated(self) -> DeployOptions:
        """These options with `instance_type` in its canonical spelling (Standard_DS3_v2 for STANDARD_DS3_V2).

        Azure compares VM size names without regard to case; infra/settings.py canonical_vm_size (the one
        owner of that rule, with its source) gives the canonical spelling, as for the cluster's vmSize.
        Raises JobsError listing every problem (problems()).
        """
        from infra.settings import canonical_vm_size

        problems = self.problems()
        if problems:
            raise JobsError("; ".join(problems))
        return replace(self, instance_type=canonical_vm_size(self.instance_type) or self.instance_type)


class RequestRefused(JobsError):
    """The endpoint refused a request (HTTP 4xx), on either target: the client's mistake, not the server's.

    `status` is the HTTP status; `body` the endpoint's answer as a JSON object, with `status` added
    (scoring/schema.py's 400: `{"message": ..., "errors": [{"record", "field", "problem", "kind"}, ...]}`; a
    body that is not a JSON object is kept as `{"message": <its first 1000 characters>}`); `problems`
    the body's `errors`. The message is the endpoint's message (or, for Azure ML's own refusals, the
    ARM-style `error.message`) and its first LISTED_PROBLEMS problems.
    """

    def __init__(self, status: int, body: Mapping[str, Any] | str | None) -> None:
        fields: dict[str, Any] = dict(body) if isinstance(body, Mapping) else {"message": (body or "").strip()[:1000]}
        fields.pop("status", None)
        self.status = status
        self.body: dict[str, Any] = {"status": status, **fields}
        errors = fields.get("errors")
        self.problems: list[Any] = list(errors) if isinstance(errors, list) else []
        # Azure ML's own refusals carry {"error": {"message"}}: the shape azure-ai-ml 1.35.2 reads for them
        # (_utils/_endpoint_utils.py validate_response).
        error = fields.get("error")
        message = str(
            fields.get("message")
            or (error.get("message") if isinstance(error, Mapping) else error)
            or "no reason given"
        )
        lines = [f"the endpoint refused the request with {status}: {message}"]
        for problem in self.problems[:LISTED_PROBLEMS]:
            lines.append("  - " + _problem_line(problem))
        if len(self.problems) > LISTED_PROBLEMS:
            lines.append(f"  - and {len(self.problems) - LISTED_PROBLEMS} more (all in the body above)")
        super().__init__("\n".join(lines))

    def body_json(self) -> str:
        """The refusal's body as one line of JSON, as the command line prints it on stdout."""
        return json.dumps(self.body)


def _problem_line(problem: Any) -> str:
    """One listed problem as a line: `record 0, field age: <problem>`, or the problem alone for one about the
    whole request (scoring/schema.py writes its record and field as null then)."""
    if isinstance(problem, Mapping) and "problem" in problem:
        where = ", ".join(f"{key} {problem[key]}" for key in ("record", "field") if problem.get(key) is not None)
        return f"{where}: {problem['problem']}" if where else str(problem["problem"])
    return json.dumps(problem) if not isinstance(problem, str) else problem


class Backend(Protocol):
    """One target (this machine, an Azure ML workspace, or a dry run that writes Azure ML specs)."""

    def train(self, settings: TrainingSettings, data: Path, wait: bool) -> str:
        """Start AutoML on `data` (a CSV) with `settings`; return the run (local) or AutoML job (Azure) name.

        Local training always runs to the end (`wait` is ignored); Azure returns once the job is submitted,
        or when it ends with `wait`. Raises JobsError for data or settings the target cannot use (checked
        before anything is sent) and for a job that ended other than Completed; Interrupted on Ctrl-C while
        waiting. Not idempotent: every call is a new run.
        """
        ...

    def register(self, run: str | None, min_auc: float | None) -> str:
        """Register the best model of a finished run (the latest when None) behind the quality gate; return
        its version ("1", "2", ...).

        The gate (jobs/lineage.py quality_gate) compares the model with a baseline, the registered
        champion and `min_auc` (an optional absolute floor on AUC_weighted, 0 to 1). Raises JobsError for an
        unknown or unfinished run and when the gate refuses the model. Idempotent: registering the same run
        again returns the version it already has and creates nothing.
        """
        ...

    def deploy(self, version: str | None, options: DeployOptions) -> str:
        """Deploy a registered version (the latest when None) to the endpoint; return the version (local) or
        the deployment slot (Azure) that now serves.

        The running deployment keeps serving until the new one answers a smoke test (blue/green in Azure);
        if that fails, JobsError says why and nothing was switched. Deploying the version that already
        serves replaces it with a fresh deployment of the same version: safe to repeat.
        """
        ...

    def promote(self, version: str, to: str) -> str:
        """Promote registered `version` to the environment `to` (jobs/environments.py; "prod"): the same artifact,
        not a retrained one, with its MLflow model, every lineage tag and its origin (promoted.from,
        promoted.from_version, promoted.by, promoted.at); then deploy it blue/green on `to`'s endpoint with the
        same smoke test, keeping what served before for `rollback`; return the lines shown to the user.

        Raises JobsError (nothing copied, nothing deployed) for an unknown version or environment and for a
        version the promotion rule refuses (jobs/promotion_rules.py: it did not pass the quality gate, or it uses a
        leaking column), and when `to` already holds another model under that name and version; the deploy's
        errors after it (a failed smoke test moves no traffic). Idempotent: promoting the same version again
        copies nothing and says so.
        """
        ...

    def rollback(self, to: str) -> str:
        """Put the endpoint of environment `to` back on what it served before the last promotion, in one call;
        return the lines shown to the user. Raises JobsError, changing nothing, when there is no previous version
        (or it no longer exists); JobsError for an unknown environment or a failed deploy (what serves stays)."""
        ...

    def sample_request(self) -> dict[str, Any]:
        """The request `invoke` sends by default (and `--set` edits): {"data": [the deployed model's example
        record]}, from its contract where the target can read it, else the shipped dataset's (the lesson's)."""
        ...

    def invoke(self, payload: dict[str, Any]) -> Any:
        """Send one scoring request (scoring/schema.py's shape) to the endpoint; return its decoded JSON answer.

        Raises RequestRefused (a JobsError) when the endpoint answers 4xx, with the endpoint's message and
        listed problems; JobsError when nothing is deployed or the answer is not JSON. Read-only.
        """
        ...

    def pipeline(
        self, settings: TrainingSettings, data: Path, min_auc: float | None, deploy: DeployOptions | None, wait: bool
    ) -> str:
        """Train and register (and deploy, when `deploy` is given) as one unit; return the registered version
        (local) or the pipeline job's name (Azure). The errors of train, register and deploy; not idempotent.
        """
        ...

    def monitor(
        self,
        version: str | None,
        thresholds: Thresholds,
        window_hours: float,
        reference: Path | None,
        emails: list[str],
    ) -> object:
        """Compare collected production records with the model's training data over the last `window_hours`.

        Local: writes a report, returns it, raises jobs.local.monitoring.DriftDetected (exit 1) on drift.
        Azure: creates or updates the monitoring schedule and returns its name (idempotent: the same
        schedule is updated). JobsError for a flag the target cannot use or nothing collected/deployed.
        """
        ...


class StatusText(str):
    """`status`'s lines for a person; `serving_properly` is False when the recorded deployment does not serve
    (its server exited, or only its workers are left): the command line then exits 1."""

    serving_properly: bool = True


@runtime_checkable
class LocalEndpointControl(Protocol):
    """The local endpoint's process control: a server on this machine that the command line starts and stops.

    Only the local target has it; Azure's endpoint is managed by Azure (its studio shows what runs).
    """

    def preflight_deploy(self, options: DeployOptions) -> None:
        """Before long work that ends in a deploy: raise JobsError if `options.port` is unusable or held by
        another program."""
        ...

    def status(self) -> StatusText:
        """What really runs of the local endpoint, as lines for a person (StatusText: with whether the
        recorded deployment serves properly). Read-only."""
        ...

    def stop(self) -> str:
        """Stop the local endpoint and any server an interrupted command left; say what was stopped.
        Idempotent: with nothing running it says so."""
        ...


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
        why = f"{type(error).__name__}: {first_line(error)}" if str(error).strip() else type(error).__name__
        hint = (
            "not enough memory for this data and settings; fewer concurrent trials or a smaller file help"
            if isinstance(error, MemoryError)
            else "the data or the settings are the usual cause"
        )
        raise JobsError(
            f"training on the {target} target failed ({hint}); the full traceback is in {log.name}.\nwhy: {why}"
        ) from None
