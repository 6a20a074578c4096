"""The live acceptance run: one fresh Pulumi stack from nothing to nothing, every step timed.

    .venv/bin/python -m acceptance.run --budget-email you@example.com [--budget-amount 20]
        [--location westeurope] [--stack accept-20250101-1200] [--record FILE]
    .venv/bin/python -m acceptance.run --teardown-only --stack NAME   # finish a run that was killed

The steps, in order (RUN_STEPS, then TEARDOWN_STEPS): create the stack with a budget, register the
resource providers (the list in .github/workflows/deploy.yml, which tests/ci derives from the program),
`pulumi up`, `python -m jobs all --target azure --outputs outputs.json`, `pulumi preview --refresh
--expect-no-changes`, one in-place change (maxNodes) previewed, applied and read back, then always,
whatever failed before: the ML workspace deleted permanently, `pulumi destroy`, the soft-deleted key
vault purged and the stack removed. Each step's duration and first error line go into a JSON record
(acceptance/records/<date>-<stack>.json), rewritten after every step, so a killed run leaves one too.

Everything that runs a program goes through one `Runner` (`SubprocessRunner` here, a fake in
tests/acceptance). Output and record pass through a `Redactor`: the values of secret-looking
environment variables (PULUMI_CONFIG_PASSPHRASE, ARM_CLIENT_SECRET, PULUMI_ACCESS_TOKEN, ...) and the
budget e-mail addresses never reach the terminal or the record.

Exit status: 0 when every step passed; 1 when a step failed (the record says which); 2 when a
precondition refused the run before any change (no `pulumi`/`az`, not logged in, the stack exists).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

import yaml

from infra.outputs import READ_BY_JOBS
from infra.settings import DEFAULTS as INFRA_DEFAULTS
from infra.settings import EMAIL_PATTERN

DEFAULT_LOCATION = INFRA_DEFAULTS["location"]  # Pulumi.yaml declares none (infra/settings.py resolves it)

ROOT = Path(__file__).resolve().parent.parent
DEPLOY_WORKFLOW = ROOT / ".github" / "workflows" / "deploy.yml"
RECORDS = ROOT / "acceptance" / "records"

CLUSTER_TYPE = "azure-native:machinelearningservices:Compute"
WORKSPACE_TYPE = "azure-native:machinelearningservices:Workspace"
VAULT_TYPE = "azure-native:keyvault:Vault"

MINUTE = 60.0
# Pulumi's rule for a stack name (`pulumi stack init`: letters, digits, '-', '_', '.').
STACK_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
# The same range infra/settings.py accepts for budgetAmount.
BUDGET_RANGE = (1, 1_000_000)


class Refused(Exception):
    """A precondition failed before anything changed; the message says what and how to fix it."""


class NothingToDo(Exception):
    """--teardown-only for a stack that does not exist: the wanted end state already holds."""


class StepFailed(Exception):
    """A step's command exited non-zero or its check did not hold; the message is the record's error."""


@dataclass(frozen=True)
class Command:
    """One program run. `capture`: its standard output is returned, not shown (JSON the run reads)."""

    argv: tuple[str, ...]
    timeout_s: float = 10 * MINUTE
    capture: bool = False

    def shown(self) -> str:
        return shlex.join(self.argv)


@dataclass(frozen=True)
class Result:
    """`stdout`: the captured output (capture only). `lines`: what the program printed otherwise, for
    the error line. `timed_out`: stopped by the runner after `timeout_s`."""

    returncode: int
    stdout: str = ""
    lines: tuple[str, ...] = ()
    timed_out: bool = False


class Runner(Protocol):
    """The one seam to the outside world: which programs exist, and running them."""

    def which(self, program: str) -> str | None: ...

    def run(self, command: Command) -> Result: ...


# An environment variable whose value is a credential (ARM_CLIENT_SECRET, PULUMI_CONFIG_PASSPHRASE,
# PULUMI_ACCESS_TOKEN, ACTIONS_ID_TOKEN_REQUEST_TOKEN, AZURE_STORAGE_KEY, ...).
SECRET_NAME = re.compile(r"SECRET|TOKEN|PASSWORD|PASSPHRASE|CREDENTIAL|(^|_)KEY($|_)|SAS", re.IGNORECASE)
# Credential shapes printed by programs themselves: `password=...`, `AccountKey=...`, `Bearer ...`.
SECRET_TEXT = re.compile(
    r"(?i)\b(password|passphrase|secret|client[_-]?secret|access[_-]?token|account[_-]?key|sig)(\s*[=:]\s*)"
    r"(\"[^\"]*\"|'[^']*'|[^\s;&,\"']+)"
)
BEARER = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{8,}")
REDACTED = "<redacted>"
# Flags and counts in variables such as TOKENIZERS_PARALLELISM=false: no secret, and blanking them
# would blank every "false" in the output.
PLAIN_VALUE = re.compile(r"^(true|false|yes|no|on|off|\d+)$", re.IGNORECASE)


class Redactor:
    """Removes secrets from text before it is shown or written.

    Redacts the values of environment variables named like credentials (SECRET_NAME; values of fewer
    than 4 characters and plain flags or numbers are left, they would blank out ordinary text), the
    extra strings given (the
    budget e-mail addresses: personal data the record does not need), and credential shapes
    (SECRET_TEXT, BEARER) whatever their origin.
    """

    def __init__(self, env: Mapping[str, str], extra: Iterable[str] = ()) -> None:
        values = {
            value
            for name, value in env.items()
            if SECRET_NAME.search(name) and len(value) >= 4 and not PLAIN_VALUE.match(value)
        }
        values |= {value for value in extra if value}
        # Longest first, so a secret that contains another is removed whole.
        self._values = sorted(values, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for value in self._values:
            text = text.replace(value, REDACTED)
        text = SECRET_TEXT.sub(lambda m: m.group(1) + m.group(2) + REDACTED, text)
        return BEARER.sub(lambda m: m.group(1) + REDACTED, text)


class SubprocessRunner:
    """Runs commands in the repository root with this process's environment.

    A shown command's output is streamed line by line through `redact`; a captured one's stdout is
    returned and its stderr shown afterwards, redacted. A command still running after its
    `timeout_s` gets SIGINT (Pulumi then cancels cleanly), and SIGKILL two minutes later.
    """

    def __init__(self, redact: Callable[[str], str], out: Callable[[str], None], cwd: Path = ROOT) -> None:
        self._redact = redact
        self._out = out
        self._cwd = cwd

    def which(self, program: str) -> str | None:
        return shutil.which(program)

    def run(self, command: Command) -> Result:
        env = {**os.environ, "PULUMI_SKIP_UPDATE_CHECK": "true"}
        proc = subprocess.Popen(
            command.argv,
            cwd=self._cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE if command.capture else subprocess.STDOUT,
            text=True,
            errors="replace",
        )
        timed_out = threading.Event()
        # A program that ignores SIGINT is killed two minutes later (the same grace as on Ctrl-C).
        killer = threading.Timer(2 * MINUTE, proc.kill)

        def stop() -> None:
            timed_out.set()
            proc.send_signal(signal.SIGINT)
            killer.start()

        timer = threading.Timer(command.timeout_s, stop)
        timer.start()
        lines: list[str] = []
        try:
            if command.capture:
                stdout, stderr = proc.communicate()
                lines = stderr.splitlines()
                for line in lines:
                    self._out(self._redact(line))
            else:
                stdout = ""
                assert proc.stdout is not None  # stdout=PIPE above
                for raw in proc.stdout:
                    line = raw.rstrip("\n")
                    lines.append(line)
                    self._out(self._redact(line))
                proc.wait()
        except KeyboardInterrupt:
            # The terminal's Ctrl-C reached the child too; give Pulumi time to cancel its operation.
            proc.send_signal(signal.SIGINT)
            self._finish(proc)
            raise
        finally:
            timer.cancel()
        proc.wait()
        killer.cancel()
        return Result(proc.returncode, stdout, tuple(lines), timed_out.is_set())

    @staticmethod
    def _finish(proc: subprocess.Popen[str]) -> None:
        try:
            proc.wait(timeout=2 * MINUTE)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass(frozen=True)
class Options:
    """What the user chose. `python`: the interpreter for the job scripts and the policy config;
    `project_dir`: the Pulumi project (Pulumi.yaml, the stack's config file, the deploy workflow)."""

    stack: str
    location: str
    budget_amount: int
    budget_emails: tuple[str, ...]
    record: Path
    python: str = sys.executable
    teardown_only: bool = False
    project_dir: Path = ROOT
    # The deployment's operating point: an acceptance run checks the platform, not a clinical choice, but the
    # Azure deploy refuses to guess one (jobs/azure/rollout.py).
    threshold: float = 0.3


@dataclass
class Run:
    """What the steps learn as they go, read by later steps."""

    options: Options
    workdir: Path
    namespaces: tuple[str, ...] = ()
    changed_max_nodes: int = 2
    stack_created: bool = False
    destroyed: bool = False
    outputs: dict[str, Any] = field(default_factory=dict)
    workspace: tuple[str, str] | None = None  # (resource group, name)
    vault: tuple[str, str] | None = None  # (name, location)

    @property
    def policy_config(self) -> Path:
        return self.workdir / "policy-config.json"

    @property
    def outputs_file(self) -> Path:
        return self.workdir / "outputs.json"


@dataclass(frozen=True)
class Step:
    """One timed step. `commands` builds its commands from what earlier steps learned; `after` reads
    their results and raises StepFailed when a check does not hold; `skip` returns why the step
    cannot run (it is then recorded as skipped) or None."""

    name: str
    commands: Callable[[Run], Sequence[Command]]
    after: Callable[[Run, Sequence[Result]], None] | None = None
    skip: Callable[[Run], str | None] = lambda run: None


def pulumi(run: Run, *args: str, timeout_s: float = 10 * MINUTE, capture: bool = False) -> Command:
    return Command(("pulumi", *args, "--stack", run.options.stack, "--non-interactive"), timeout_s, capture)


def policy_flags(run: Run) -> tuple[str, ...]:
    # The deploy workflow enforces the policy pack on `up`; the acceptance run does the same.
    return ("--policy-pack", "policy", "--policy-pack-config", str(run.policy_config))


def provider_namespaces(workflow: Path = DEPLOY_WORKFLOW) -> tuple[str, ...]:
    """The resource provider namespaces the deploy workflow registers (`Microsoft.X` names in its
    `az provider register` step), in their order. tests/ci checks that list against the program's
    resource types, so the acceptance run reads it instead of keeping a copy.

    Raises Refused when the workflow has no such step or it names no namespace."""
    try:
        document = yaml.safe_load(workflow.read_text())
        steps = [step for job in document["jobs"].values() for step in job.get("steps", [])]
    except (OSError, yaml.YAMLError, KeyError, AttributeError, TypeError) as exc:
        raise Refused(f"cannot read the resource providers from {workflow}: {exc}") from None
    for step in steps:
        script = step.get("run", "") if isinstance(step, dict) else ""
        if "az provider register" in script:
            names = re.findall(r"\bMicrosoft\.[A-Za-z]+\b", script)
            if names:
                return tuple(dict.fromkeys(names))
    raise Refused(f"{workflow} has no `az provider register` step naming Microsoft.* namespaces")


def changed_max_nodes(project: Path = ROOT / "Pulumi.yaml") -> int:
    """A maxNodes other than the project's default: 2, or 3 when the default is 2. The cluster's
    scale settings are the properties Azure applies in place (docs/infrastructure.md, Changing a live stack)."""
    default = yaml.safe_load(project.read_text())["config"]["maxNodes"]["default"]
    return 3 if default == 2 else 2


def _json(results: Sequence[Result], what: str) -> Any:
    try:
        return json.loads(results[-1].stdout)
    except (json.JSONDecodeError, IndexError):
        raise StepFailed(f"{what} is not JSON") from None


def _created(run: Run, results: Sequence[Result]) -> None:
    run.stack_created = True


def _write_policy_config(run: Run, results: Sequence[Result]) -> None:
    _json(results, "the policy pack's config")
    run.policy_config.write_text(results[-1].stdout)


def _read_outputs(run: Run, results: Sequence[Result]) -> None:
    outputs = _json(results, "`pulumi stack output --json`")
    if not isinstance(outputs, dict):
        raise StepFailed("`pulumi stack output --json` is not an object of outputs")
    # The workspace's coordinates (infra/outputs.py: what the job scripts require) and the cluster the run trains on.
    needed = [output.key for output in READ_BY_JOBS if output.required] + ["compute_name"]
    missing = [key for key in needed if key not in outputs]
    if missing:
        raise StepFailed(f"the stack's outputs lack {', '.join(missing)}")
    run.outputs = outputs
    run.outputs_file.write_text(json.dumps(outputs, indent=2))


def _resource_type(step: dict[str, Any]) -> str:
    state = step.get("newState") or step.get("oldState") or {}
    if isinstance(state, dict) and state.get("type"):
        return str(state["type"])
    # A URN is `urn:pulumi:<stack>::<project>::<parent types>$<type>::<name>`.
    return str(step.get("urn", "")).rsplit("::", 1)[0].rsplit("::", 1)[-1].rsplit("$", 1)[-1]


def check_in_place(run: Run, results: Sequence[Result]) -> None:
    """The preview of the maxNodes change updates the cluster and nothing is created, replaced or
    deleted. The JSON is Pulumi's PreviewDigest (pulumi/pulumi sdk/go/common/display/json.go:
    `steps[].op`, `steps[].urn`, `changeSummary` counting each op)."""
    digest = _json(results, "`pulumi preview --json`")
    steps = digest.get("steps") or [] if isinstance(digest, dict) else []
    changes = [step for step in steps if step.get("op") not in ("same", "read")]
    kinds = {(step.get("op"), _resource_type(step)) for step in changes}
    others = sorted(f"{op} {typ}" for op, typ in kinds if op != "update")
    if others:
        raise StepFailed(f"maxNodes {run.changed_max_nodes} is not an in-place change: {', '.join(others)}")
    if ("update", CLUSTER_TYPE) not in kinds:
        raise StepFailed(f"the preview of maxNodes {run.changed_max_nodes} does not update the cluster")


def _check_applied(run: Run, results: Sequence[Result]) -> None:
    outputs = _json(results, "`pulumi stack output --json`")
    # compute_max_nodes is read from the cluster's own response (infra/platform.py), not from config.
    got = outputs.get("compute_max_nodes") if isinstance(outputs, dict) else None
    if got != run.changed_max_nodes:
        raise StepFailed(f"the cluster reports maxNodes {got}, not {run.changed_max_nodes}")


def _arm_parts(resource_id: str) -> tuple[str, str] | None:
    match = re.search(r"/resourceGroups/([^/]+)/providers/[^/]+/[^/]+/([^/]+)$", resource_id, re.IGNORECASE)
    return (match.group(1), match.group(2)) if match else None


def _read_names(run: Run, results: Sequence[Result]) -> None:
    """The workspace and key vault from the stack's state (`pulumi stack export`), which holds what
    exists even after an `up` that failed before the stack's outputs were written."""
    state = _json(results, "`pulumi stack export`")
    resources = (state.get("deployment") or {}).get("resources") or [] if isinstance(state, dict) else []
    for resource in resources:
        outputs = resource.get("outputs") or {}
        if resource.get("type") == WORKSPACE_TYPE:
            run.workspace = _arm_parts(str(resource.get("id", "")))
        elif resource.get("type") == VAULT_TYPE and outputs.get("name") and outputs.get("location"):
            run.vault = (str(outputs["name"]), str(outputs["location"]))


def _destroyed(run: Run, results: Sequence[Result]) -> None:
    run.destroyed = True


def _config_commands(run: Run) -> list[Command]:
    options = run.options
    commands = [
        pulumi(run, "config", "set", "location", options.location),
        pulumi(run, "config", "set", "budgetAmount", str(options.budget_amount)),
    ]
    commands += [
        pulumi(run, "config", "set", "--path", f"budgetEmails[{i}]", email)
        for i, email in enumerate(options.budget_emails)
    ]
    return commands


def _up(run: Run) -> list[Command]:
    # --skip-preview: what the deploy workflow's pulumi/actions `up` runs (Automation API), so a
    # refusal that fires mid-update shows here as it would in CI.
    return [pulumi(run, "up", "--yes", "--skip-preview", *policy_flags(run), timeout_s=60 * MINUTE)]


def _delete_workspace(run: Run) -> list[Command]:
    # Only a delete can skip the workspace's 14-day soft delete; a soft-deleted workspace is purged
    # from the portal alone (Azure ML docs, concept-soft-delete). Pulumi's delete of the workspace then
    # meets 204 "Resource does not exist" (REST API, Workspaces - Delete), and pulumi-azure-native
    # ignores 404s on delete (pulumi-azure-native pull request 293) for the cluster and endpoint the
    # workspace took with it.
    if run.workspace is None:
        return []
    group, name = run.workspace
    argv = ("az", "ml", "workspace", "delete", "--resource-group", group, "--name", name, "--permanently-delete")
    return [Command((*argv, "--yes"), 30 * MINUTE)]


def _purge_vault(run: Run) -> list[Command]:
    # A destroyed vault stays soft-deleted for its 90-day retention unless purged (docs/azure.md, Soft delete).
    if run.vault is None:
        return []
    name, location = run.vault
    return [Command(("az", "keyvault", "purge", "--name", name, "--location", location), 30 * MINUTE)]


def _no_workspace(run: Run) -> str | None:
    return None if run.workspace else "no ML workspace in the stack's state"


def _not_destroyed(run: Run) -> str | None:
    return None if run.destroyed else "pulumi destroy did not finish"


def _no_stack(run: Run) -> str | None:
    return None if run.stack_created else "the stack was not created"


RUN_STEPS: tuple[Step, ...] = (
    Step(
        "create stack",
        lambda run: [Command(("pulumi", "stack", "init", run.options.stack, "--non-interactive"))],
        _created,
    ),
    Step("configure location and budget", _config_commands),
    Step(
        "register resource providers",
        lambda run: [
            Command(("az", "provider", "register", "--namespace", namespace, "--wait"), 20 * MINUTE)
            for namespace in run.namespaces
        ],
    ),
    Step(
        "policy pack config",
        lambda run: [Command((run.options.python, "policy/config_for_stack.py", run.options.stack), capture=True)],
        _write_policy_config,
    ),
    Step("pulumi up", _up),
    Step("stack outputs", lambda run: [pulumi(run, "stack", "output", "--json", capture=True)], _read_outputs),
    Step(
        "jobs all --target azure",
        # The deploy workflow's limit for the same step (tests/ci derives it from the waits in jobs/).
        lambda run: [
            Command(
                (
                    run.options.python,
                    "-m",
                    "jobs",
                    "all",
                    "--target",
                    "azure",
                    "--outputs",
                    str(run.outputs_file),
                    "--threshold",
                    f"{run.options.threshold:g}",
                ),
                220 * MINUTE,
            )
        ],
    ),
    Step(
        "preview shows no changes",
        # --refresh reads every resource back from Azure first, so what the job scripts did to the
        # endpoint and whatever Azure filled in must not turn into a diff either.
        lambda run: [
            pulumi(run, "preview", "--refresh", "--expect-no-changes", *policy_flags(run), timeout_s=30 * MINUTE)
        ],
    ),
    Step(
        "in-place change previewed",
        lambda run: [
            pulumi(run, "config", "set", "maxNodes", str(run.changed_max_nodes)),
            pulumi(run, "preview", "--json", *policy_flags(run), timeout_s=30 * MINUTE, capture=True),
        ],
        check_in_place,
    ),
    Step("pulumi up with the change", _up),
    Step("change read back", lambda run: [pulumi(run, "stack", "output", "--json", capture=True)], _check_applied),
)

TEARDOWN_STEPS: tuple[Step, ...] = (
    Step("names to purge", lambda run: [pulumi(run, "stack", "export", capture=True)], _read_names, _no_stack),
    Step("delete ML workspace permanently", _delete_workspace, skip=_no_workspace),
    Step(
        "pulumi destroy",
        lambda run: [pulumi(run, "destroy", "--yes", "--skip-preview", timeout_s=60 * MINUTE)],
        _destroyed,
        _no_stack,
    ),
    Step(
        "purge key vault",
        _purge_vault,
        skip=lambda run: _not_destroyed(run) or (None if run.vault else "no key vault in the stack's state"),
    ),
    Step("remove stack", lambda run: [pulumi(run, "stack", "rm", "--yes")], skip=_not_destroyed),
)

# pulumi prints `error: update failed` after the resource's own error; the specific one is wanted.
ERROR_LINE = re.compile(r"^(error|ERROR|Error)\b\s*[:(]")
GENERIC_ERROR = re.compile(r"^error: (update|preview|destroy|refresh) failed$|^error: one or more errors occurred")
MAX_ERROR = 300


def error_line(result: Result, command: Command) -> str:
    """The first specific error line a failed command printed, with its exit status, at most
    MAX_ERROR characters (not yet redacted)."""
    if result.timed_out:
        limit = command.timeout_s
        within = f"{limit / MINUTE:.0f} minutes" if limit >= MINUTE else f"{limit:g} s"
        return f"`{command.shown()}` did not finish within {within}"
    lines = [line.strip() for line in result.lines if line.strip()]
    errors = [line for line in lines if ERROR_LINE.match(line)]
    specific = [line for line in errors if not GENERIC_ERROR.match(line)]
    line = (specific or errors or lines[-1:] or [""])[0]
    text = f"exit {result.returncode}" + (f": {line}" if line else "")
    return text if len(text) <= MAX_ERROR else text[: MAX_ERROR - 3] + "..."


def _utc(now: dt.datetime) -> str:
    return now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Acceptance:
    """One run: preconditions, RUN_STEPS until one fails, TEARDOWN_STEPS always, the record."""

    def __init__(
        self,
        options: Options,
        runner: Runner,
        redact: Redactor,
        out: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.options = options
        self.runner = runner
        self.redact = redact
        self.out = out
        self.clock = clock
        self.now = now
        self.record: dict[str, Any] = {}

    # Preconditions: read-only, before the first change.
    def _capture(self, argv: tuple[str, ...], timeout_s: float = 2 * MINUTE) -> Result:
        return self.runner.run(Command(argv, timeout_s, capture=True))

    def check_preconditions(self) -> dict[str, Any]:
        """Raises Refused with what to do; returns the tools' versions and the commit for the record."""
        options = self.options
        if not STACK_PATTERN.match(options.stack):
            raise Refused(
                f"--stack {options.stack!r} is not a Pulumi stack name: letters, digits, '-', '_' and '.', "
                "at most 100 characters, starting with a letter or digit"
            )
        if not options.teardown_only:
            if not options.budget_emails:
                raise Refused("--budget-email is required: the stack's budget alerts need someone to tell")
            bad = [email for email in options.budget_emails if not EMAIL_PATTERN.match(email)]
            if bad:
                raise Refused(f"--budget-email {bad[0]!r} is not an e-mail address")
            low, high = BUDGET_RANGE
            if not low <= options.budget_amount <= high:
                raise Refused(f"--budget-amount {options.budget_amount} must be from {low} to {high}")
        for program, how in (
            ("pulumi", "install the Pulumi CLI (https://www.pulumi.com/docs/install/)"),
            ("az", "install the Azure CLI (https://learn.microsoft.com/cli/azure/install-azure-cli)"),
        ):
            if self.runner.which(program) is None:
                raise Refused(f"`{program}` is not on PATH: {how}")
        if self._capture(("az", "account", "show", "--output", "json")).returncode != 0:
            raise Refused("the Azure CLI is not logged in: run `az login`, then `az account set --subscription ID`")
        if self._capture(("az", "extension", "show", "--name", "ml", "--output", "none")).returncode != 0:
            raise Refused(
                "the Azure CLI's ml extension is missing (the teardown deletes the workspace with "
                "`az ml workspace delete --permanently-delete`): run `az extension add --name ml`"
            )
        if self._capture(("pulumi", "whoami", "--non-interactive")).returncode != 0:
            raise Refused("the Pulumi CLI is not logged in to a backend: run `pulumi login` (see docs/azure.md)")
        listed = self._capture(("pulumi", "stack", "ls", "--json", "--non-interactive"))
        if listed.returncode != 0:
            raise Refused(self.redact(f"`pulumi stack ls` failed: {error_line(listed, Command(('pulumi',)))}"))
        try:
            names = {str(stack.get("name", "")) for stack in json.loads(listed.stdout)}
        except (json.JSONDecodeError, AttributeError, TypeError):
            raise Refused("`pulumi stack ls --json` did not print a list of stacks") from None
        # Pulumi Cloud lists `org/project/stack` for stacks of other organisations; the last part counts.
        exists = options.stack in {name.rsplit("/", 1)[-1] for name in names}
        config_file = options.project_dir / f"Pulumi.{options.stack}.yaml"
        if not options.teardown_only:
            if exists:
                raise Refused(
                    f"stack {options.stack!r} already exists: the acceptance run starts from a fresh stack. "
                    "Choose another --stack, or finish the old one with --teardown-only --stack " + options.stack
                )
            if config_file.exists():
                raise Refused(
                    f"{config_file.name} exists: a fresh stack starts without config; remove the file or "
                    "choose another --stack"
                )
            if options.record.exists():
                raise Refused(
                    f"{options.record} exists: choose another --stack or --record (a record is never overwritten)"
                )
        elif not exists:
            raise NothingToDo(f"stack {options.stack!r} does not exist: nothing to tear down")
        return self._versions()

    def _versions(self) -> dict[str, Any]:
        found: dict[str, Any] = {"commit": None, "commit_has_local_changes": None}
        pulumi_version = self._capture(("pulumi", "version"))
        found["pulumi_version"] = pulumi_version.stdout.strip() or None if pulumi_version.returncode == 0 else None
        az_version = self._capture(("az", "version", "--output", "json"))
        try:
            found["azure_cli_version"] = json.loads(az_version.stdout).get("azure-cli")
        except (json.JSONDecodeError, AttributeError):
            found["azure_cli_version"] = None
        if self.runner.which("git"):
            head = self._capture(("git", "rev-parse", "HEAD"))
            if head.returncode == 0:
                found["commit"] = head.stdout.strip()
                status = self._capture(("git", "status", "--porcelain", "--untracked-files=no"))
                found["commit_has_local_changes"] = bool(status.stdout.strip()) if status.returncode == 0 else None
        return found

    # The record.
    def _write_record(self) -> None:
        path = self.options.record
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self._redacted(self.record), indent=2) + "\n"
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(text)
        temporary.replace(path)

    def _redacted(self, value: Any) -> Any:
        # Value by value: redacting the JSON text could cut through its quotes.
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {key: self._redacted(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self._redacted(item) for item in value]
        return value

    def _start_record(self, found: dict[str, Any]) -> None:
        previous: dict[str, Any] = {}
        if self.options.teardown_only and self.options.record.is_file():
            try:
                previous = json.loads(self.options.record.read_text())
            except json.JSONDecodeError:
                previous = {}
        if previous.get("stack") == self.options.stack:
            self.record = previous
            self.record["result"] = "incomplete"
            return
        self.record = {
            "kind": "live acceptance run",
            "stack": self.options.stack,
            "location": self.options.location,
            "budget_amount": self.options.budget_amount,
            **found,
            "started_at": _utc(self.now()),
            "finished_at": None,
            "result": "incomplete",
            "steps": [],
        }

    # Steps.
    def _perform(self, step: Step, run: Run, phase: str, blocked: str | None = None) -> bool:
        entry: dict[str, Any] = {"name": step.name, "phase": phase}
        self.record["steps"].append(entry)
        reason = blocked or step.skip(run)
        if reason:
            entry.update(status="skipped", seconds=None, reason=reason)
            self.out(f"== {step.name}: skipped ({reason})")
            self._write_record()
            return True
        self.out(f"== {step.name}")
        start = self.clock()
        try:
            results: list[Result] = []
            for command in step.commands(run):
                self.out(self.redact(f"$ {command.shown()}"))
                result = self.runner.run(command)
                results.append(result)
                if result.returncode != 0 or result.timed_out:
                    raise StepFailed(error_line(result, command))
            if step.after is not None:
                step.after(run, results)
        except StepFailed as failure:
            entry.update(status="failed", error=self.redact(str(failure)))
        except OSError as exc:
            # A program that vanished from PATH mid-run, or a full disk for outputs.json.
            entry.update(status="failed", error=self.redact(f"{type(exc).__name__}: {exc}"))
        except KeyboardInterrupt:
            entry.update(status="failed", error="interrupted")
            raise
        else:
            entry.update(status="passed")
        finally:
            entry["seconds"] = round(self.clock() - start, 1)
            if "status" not in entry:  # an exception no step expects; it propagates after the teardown
                entry.update(status="failed", error="stopped by an unexpected error (traceback above)")
            self.out(
                f"== {step.name}: {entry['status']} in {entry['seconds']} s"
                + (f": {entry['error']}" if entry.get("error") else "")
            )
            self._write_record()
        return bool(entry["status"] == "passed")

    def execute(self) -> int:
        """Runs everything; returns the exit status. Refused propagates (nothing has changed then)."""
        found = self.check_preconditions()
        run = Run(self.options, Path(tempfile.mkdtemp(prefix="acceptance-")))
        if not self.options.teardown_only:
            run.namespaces = provider_namespaces(self.options.project_dir / DEPLOY_WORKFLOW.relative_to(ROOT))
            run.changed_max_nodes = changed_max_nodes(self.options.project_dir / "Pulumi.yaml")
        else:
            run.stack_created = True
        self._start_record(found)
        self._write_record()
        self.out(f"record: {self.options.record}")
        interrupted = False
        try:
            if not self.options.teardown_only:
                blocked: str | None = None
                for step in RUN_STEPS:
                    if not self._perform(step, run, "run", blocked) and blocked is None:
                        blocked = f"{step.name} failed"
        except KeyboardInterrupt:
            interrupted = True
            self.out("interrupted: tearing the stack down (Ctrl-C again stops that too)")
        finally:
            try:
                for step in TEARDOWN_STEPS:
                    self._perform(step, run, "teardown")
            except KeyboardInterrupt:
                interrupted = True
                self.out(
                    "teardown interrupted: finish it with "
                    f"`.venv/bin/python -m acceptance.run --teardown-only --stack {self.options.stack}`"
                )
            self._finish(interrupted)
            shutil.rmtree(run.workdir, ignore_errors=True)
        return 0 if self.record["result"] == "passed" else 1

    def _finish(self, interrupted: bool) -> None:
        statuses = [step["status"] for step in self.record["steps"]]
        teardown_done = any(s["name"] == "remove stack" and s["status"] == "passed" for s in self.record["steps"])
        if interrupted:
            self.record["result"] = "interrupted"
        elif "failed" in statuses or not teardown_done:
            self.record["result"] = "failed"
        else:
            self.record["result"] = "passed"
        self.record["finished_at"] = _utc(self.now())
        self._write_record()
        failed = [s for s in self.record["steps"] if s["status"] == "failed"]
        self.out(f"acceptance run {self.record['result']}; record written to {self.options.record}")
        for step in failed:
            self.out(f"  failed: {step['name']}: {step.get('error', '')}")


def default_record(stack: str, today: dt.date, teardown_only: bool) -> Path:
    if teardown_only:
        # The record of the run being finished, when it is here.
        existing = sorted(RECORDS.glob(f"*-{stack}.json"))
        if existing:
            return existing[-1]
    return RECORDS / f"{today.isoformat()}-{stack}.json"


def parse_args(argv: Sequence[str], now: dt.datetime) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m acceptance.run",
        description="Live acceptance run on a fresh stack: up, jobs all, a no-change preview, an in-place "
        "change, destroy and purges, each step timed into a record. Costs money: see acceptance/README.md.",
    )
    parser.add_argument(
        "--stack", default=f"accept-{now:%Y%m%d-%H%M}", help="a new stack's name (default: %(default)s)"
    )
    parser.add_argument("--location", default=DEFAULT_LOCATION, help="Azure region (default: %(default)s)")
    parser.add_argument(
        "--budget-email",
        action="append",
        default=[],
        metavar="ADDRESS",
        help="who gets the budget's alerts (repeatable; required for a run)",
    )
    parser.add_argument(
        "--budget-amount", type=int, default=20, help="the stack's monthly budget (default: %(default)s)"
    )
    parser.add_argument(
        "--record", type=Path, help="where the record goes (default: acceptance/records/<date>-<stack>.json)"
    )
    parser.add_argument(
        "--teardown-only",
        action="store_true",
        help="only the teardown steps, for an existing stack whose run was killed",
    )
    args = parser.parse_args(argv)
    return Options(
        stack=args.stack,
        location=args.location,
        budget_amount=args.budget_amount,
        budget_emails=tuple(args.budget_email),
        record=args.record or default_record(args.stack, now.date(), args.teardown_only),
        teardown_only=args.teardown_only,
    )


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None, runner: Runner | None = None) -> int:
    options = parse_args(sys.argv[1:] if argv is None else argv, dt.datetime.now(dt.UTC))
    redact = Redactor(os.environ, options.budget_emails)

    def out(line: str) -> None:
        print(line, flush=True)

    # GitHub Actions cancels a run with SIGINT, then SIGTERM: both start the teardown.
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    acceptance = Acceptance(options, runner or SubprocessRunner(redact, out), redact, out)
    try:
        return acceptance.execute()
    except Refused as refusal:
        # The user's own input is shown back (a mistyped address too); credentials never are.
        print(f"error: {Redactor(os.environ)(str(refusal))}", file=sys.stderr)
        return 2
    except NothingToDo as nothing:
        print(str(nothing))
        return 0
    except KeyboardInterrupt:
        # During the preconditions (the run and the teardown catch their own): nothing has changed.
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
