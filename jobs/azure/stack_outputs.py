"""Where the workspace's coordinates come from: the Pulumi stack's outputs, overridable.

Precedence, highest first: flags; environment variables (AZUREML_SUBSCRIPTION_ID,
AZUREML_RESOURCE_GROUP, AZUREML_WORKSPACE_NAME, AZUREML_COMPUTE_NAME, AZUREML_ENDPOINT_NAME);
`--outputs FILE` (what `pulumi stack output --json` prints) or, without it, `pulumi stack
output --json --stack NAME`; last, an Azure ML config.json (./config.json or .azureml/config.json),
which has the workspace but not the compute or the endpoint.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from infra.environments import SHARED, WORKSPACE
from infra.outputs import BY_KEY, READ_BY_JOBS, kind_of
from jobs.errors import JobsError
from jobs.paths import ROOT
from jobs.user_files import parse_json, read_json

# Which outputs the workspace cannot be located without, and the variables that override single ones: from the
# contract (infra/outputs.py), which also says what each is and the shape it must have.
REQUIRED = tuple(output.key for output in READ_BY_JOBS if output.required)
ENV = {output.key: output.env for output in READ_BY_JOBS if output.env}


@dataclass(frozen=True)
class StackOutputs:
    """The outputs the job scripts read (infra/outputs.py READ_BY_JOBS), typed: the REQUIRED ones first. Checked
    at import against the contract (`_matches_contract`), so a key added there without a field here fails every
    run and test at once instead of being dropped silently."""

    subscription_id: str
    resource_group: str
    workspace_name: str
    tenant_id: str | None = None
    compute_name: str | None = None
    compute_max_nodes: int | None = None
    endpoint_name: str | None = None
    location: str | None = None
    studio_url: str | None = None
    # The shared Azure ML registry the stack shares models to and deploys from (docs/environments.md).
    registry_name: str | None = None

    def need(self, key: str, for_what: str, stack: str) -> str:
        value = getattr(self, key)
        if not value:
            raise JobsError(
                f"{for_what} needs the stack output '{key}', which is missing. Run `pulumi up --stack {stack}` "
                f"so the stack exports it, or pass it with {ENV.get(key) or key}=..."
            )
        return str(value)


def from_pulumi(stack: str) -> dict[str, Any]:
    if shutil.which("pulumi") is None:
        return {}
    # In the repository root, where Pulumi.yaml is: the Pulumi CLI finds the project from its working directory
    # ("-C, --cwd: run pulumi as if it had been started in another directory", pulumi.com/docs/cli/commands/
    # pulumi_stack_output), and the installed command may run from anywhere (cron, CI).
    result = subprocess.run(
        ["pulumi", "stack", "output", "--json", "--stack", stack],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise JobsError(
            f"`pulumi stack output --json --stack {stack}` failed: {result.stderr.strip()[:300]}. "
            f"Check the stack name (`pulumi stack ls`), log in to the backend (`pulumi login`), "
            f"or pass --outputs FILE."
        )
    data = parse_json(result.stdout or "{}", f"the output of `pulumi stack output --json --stack {stack}`")
    if not isinstance(data, dict):
        raise JobsError(
            f"`pulumi stack output --json --stack {stack}` did not print a JSON object; "
            "run it yourself to see what it prints, or pass --outputs FILE"
        )
    return data


def from_file(path: Path) -> dict[str, Any]:
    # Read like every file a user hands us: `pulumi stack output --json > FILE` in PowerShell
    # writes a BOM (Windows PowerShell 5.1 even UTF-16, which says "not UTF-8 text").
    try:
        data = read_json(path, f"--outputs {path}")
    except JobsError as error:
        raise JobsError(
            f"{error}. It should hold what `pulumi stack output --json` prints (`pulumi stack output --json > {path}`)."
        ) from None
    if not isinstance(data, dict):
        raise JobsError(f"--outputs {path} should hold a JSON object, as `pulumi stack output --json` prints")
    return data


def from_config_json(cwd: Path) -> dict[str, Any]:
    for candidate in (cwd / "config.json", cwd / ".azureml" / "config.json"):
        if candidate.is_file():
            data = read_json(candidate, f"the Azure ML config file {candidate}")
            if not isinstance(data, dict):
                raise JobsError(
                    f"{candidate} should hold a JSON object with subscription_id, resource_group and "
                    "workspace_name, as the studio's 'Download config.json' writes"
                )
            return {key: data.get(key) for key in REQUIRED if data.get(key)}
    return {}


def resolve(
    stack: str,
    outputs_file: Path | None = None,
    overrides: dict[str, str | None] | None = None,
    environ: dict[str, str] | None = None,
    cwd: Path | None = None,
    allow_missing: bool = False,
    only_stack: bool = False,
) -> StackOutputs:
    """The stack's outputs from config.json, the stack (or --outputs), the environment and flags, in that order.

    `only_stack`: the stack's (or the file's) outputs alone, for a second stack beside the one the command runs
    on (a promotion's prod): config.json, the AZUREML_* variables and the flags locate the command's own
    workspace, and would otherwise point prod's coordinates at dev's.
    JobsError when the outputs are a shared stack's (no workspace: infra/outputs.py says which kind exports
    what), when a value is invalid (every one listed), or when the workspace's coordinates are missing, unless
    `allow_missing` (a dry run, which connects to nothing: its specs then name placeholders)."""
    environ = {} if only_stack else dict(os.environ if environ is None else environ)
    stack_label = f"--outputs {outputs_file}" if outputs_file else f"the Pulumi stack '{stack}'"
    own = from_file(outputs_file) if outputs_file else from_pulumi(stack)
    if kind_of(own) == SHARED:
        raise JobsError(
            f"{stack_label} holds the outputs of a {SHARED} stack (the Azure ML registry, no workspace); the job "
            f"scripts run against a {WORKSPACE} stack such as dev or prod (docs/environments.md): pass --stack dev, "
            f"or save that stack's outputs with `pulumi stack output --json --stack dev > FILE`"
        )
    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}  # where each value came from, for messages
    for found, label in (
        ({} if only_stack else from_config_json(cwd or Path.cwd()), "config.json"),
        (own, stack_label),
        ({key: environ[var] for key, var in ENV.items() if environ.get(var)}, "the environment"),
        ({key: value for key, value in (overrides or {}).items() if value and not only_stack}, "a flag"),
    ):
        merged.update(found)
        origin.update(dict.fromkeys(found, label))
    # Missing: absent, null or empty. A 0, {} or false is there, and wrong: it is listed as a bad value.
    missing = [key for key in REQUIRED if merged.get(key) in (None, "")]
    if missing and allow_missing:
        merged.update({key: "" for key in missing})
    values = {output.key: merged[output.key] for output in READ_BY_JOBS if output.key in merged}
    problems = [
        f"{problem} (from {origin[key]})"
        for key, value in values.items()
        if key in origin and (problem := _problem(key, value))
    ]
    if missing and not allow_missing:
        _refuse_missing(stack, outputs_file, missing, problems)
    if problems:
        _refuse_values(stack, outputs_file, problems, only_from=stack_label)
    return StackOutputs(**{key: _parsed(key, value) for key, value in values.items()})


def _refuse_missing(stack: str, outputs_file: Path | None, missing: list[str], problems: list[str]) -> None:
    how = (
        f"--outputs {outputs_file} has no {', '.join(missing)}"
        if outputs_file
        else f"the Pulumi stack '{stack}' gave no {', '.join(missing)}"
        + ("" if shutil.which("pulumi") else " (the Pulumi CLI is not installed)")
    )
    raise JobsError(
        f"cannot locate the Azure ML workspace: {how}. Create the platform with `pulumi up --stack {stack}`, "
        f"choose the right stack with --stack, or point at saved outputs with `--outputs FILE` "
        f"(from `pulumi stack output --json`); --subscription-id, --resource-group and --workspace "
        f"override single values."
        + ("\nIt also has values the job scripts cannot use:\n  - " + "\n  - ".join(problems) if problems else "")
    )


def _refuse_values(stack: str, outputs_file: Path | None, problems: list[str], only_from: str) -> None:
    # The file (or stack) is blamed only when every bad value came from it; else each item names its own source.
    if not all(problem.endswith(f"(from {only_from})") for problem in problems):
        source, how = "the workspace's coordinates", "correct each where it came from (named beside it)"
    elif outputs_file:
        source = f"--outputs {outputs_file}"
        how = f"correct it in the file, or save it again with `pulumi stack output --json > {outputs_file}`"
    else:
        source = f"the outputs of the Pulumi stack '{stack}'"
        how = f"check `pulumi stack output --json --stack {stack}`"
    raise JobsError(
        f"{source} has values the job scripts cannot use:\n  - "
        + "\n  - ".join(problems)
        + f"\n{how[0].upper()}{how[1:]}; --subscription-id, --resource-group and --workspace "
        "override single values."
    )


def _shown(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return f"a JSON {'object' if isinstance(value, dict) else 'array'}"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    return repr(value) if isinstance(value, str) else f"the number {value}"


def _problem(key: str, value: Any) -> str | None:
    """What is wrong with one stack output's value (key, value, what its Shape allows); None when it is usable.

    A null is an output the stack does not export (the registry of a stack without `sharedStack`)."""
    output = BY_KEY[key]
    if value is None or output.jobs is None or output.jobs.accepts(value):
        return None
    hint = f" ({output.hint})" if output.hint else ""
    return f"'{key}' is {_shown(value)}; it must be {output.jobs.allowed}{hint}"


def _parsed(key: str, value: Any) -> Any:
    shape = BY_KEY[key].jobs
    return value if value is None or shape is None else shape.parse(value)


def _matches_contract() -> None:
    """StackOutputs has a field for each output the contract says the job scripts read, and no other."""
    declared = {output.key for output in READ_BY_JOBS}
    typed = {f.name for f in fields(StackOutputs)}
    if declared != typed:
        raise ImportError(
            f"jobs/azure/stack_outputs.py StackOutputs differs from infra/outputs.py READ_BY_JOBS: "
            f"{sorted(declared ^ typed)}"
        )


_matches_contract()
