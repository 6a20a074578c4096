"""Where the workspace's coordinates come from: the Pulumi stack's outputs, overridable.

Precedence, highest first: flags; environment variables (AZUREML_SUBSCRIPTION_ID,
AZUREML_RESOURCE_GROUP, AZUREML_WORKSPACE_NAME, AZUREML_COMPUTE_NAME, AZUREML_ENDPOINT_NAME);
`--outputs FILE` (what `pulumi stack output --json` prints) or, without it, `pulumi stack
output --json --stack NAME`; last, an Azure ML config.json (./config.json or .azureml/config.json),
which has the workspace but not the compute or the endpoint.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from infra.naming import ML_REGISTRY_NAME
from jobs.errors import JobsError
from jobs.paths import ROOT
from jobs.user_files import parse_json, read_json

REQUIRED = ("subscription_id", "resource_group", "workspace_name")
ENV = {
    "subscription_id": "AZUREML_SUBSCRIPTION_ID",
    "resource_group": "AZUREML_RESOURCE_GROUP",
    "workspace_name": "AZUREML_WORKSPACE_NAME",
    "compute_name": "AZUREML_COMPUTE_NAME",
    "endpoint_name": "AZUREML_ENDPOINT_NAME",
}
# Subscription and tenant ids are GUIDs in their 8-4-4-4-12 hex form. Source: Az PowerShell reference,
# "Your Azure subscription ID. This is a GUID-formatted string (e.g. 00000000-0000-0000-0000-000000000000)"
# (learn.microsoft.com/dotnet/api/microsoft.azure.powershell.cmdlets.websites.models.iwebsitesidentity.subscriptionid);
# tenant ids "in GUID format" (learn.microsoft.com/dotnet/api/azure.storage.sas.queuesasqueryparameters.keytenantid).
_GUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_GUIDS = ("subscription_id", "tenant_id")
_NAMES = ("resource_group", "workspace_name", "compute_name", "endpoint_name", "location", "studio_url")
# An Azure ML registry's name, as Azure takes it (infra/naming.py ML_REGISTRY_NAME: the REST spec's registryName
# pattern and the docs' 2-32 characters, both); the stack exports null for a stack without a registry.
_REGISTRY_NAME = re.compile(ML_REGISTRY_NAME)


@dataclass(frozen=True)
class StackOutputs:
    subscription_id: str
    resource_group: str
    workspace_name: str
    compute_name: str | None = None
    compute_max_nodes: int | None = None
    endpoint_name: str | None = None
    location: str | None = None
    studio_url: str | None = None
    tenant_id: str | None = None
    # The shared Azure ML registry the stack shares models to and deploys from (docs/environments.md).
    registry_name: str | None = None

    def need(self, key: str, for_what: str, stack: str) -> str:
        value = getattr(self, key)
        if not value:
            raise JobsError(
                f"{for_what} needs the stack output '{key}', which is missing. Run `pulumi up --stack {stack}` "
                f"so the stack exports it, or pass it with {ENV.get(key, key)}=..."
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
    JobsError when a value is invalid, or when the workspace's coordinates are missing, unless `allow_missing`
    (a dry run, which connects to nothing: its specs then name placeholders)."""
    environ = {} if only_stack else dict(os.environ if environ is None else environ)
    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}  # where each value came from, for messages
    for found, label in (
        ({} if only_stack else from_config_json(cwd or Path.cwd()), "config.json"),
        (
            from_file(outputs_file) if outputs_file else from_pulumi(stack),
            f"--outputs {outputs_file}" if outputs_file else f"the Pulumi stack '{stack}'",
        ),
        ({key: environ[var] for key, var in ENV.items() if environ.get(var)}, "the environment"),
        ({key: value for key, value in (overrides or {}).items() if value and not only_stack}, "a flag"),
    ):
        merged.update(found)
        origin.update(dict.fromkeys(found, label))
    missing = [key for key in REQUIRED if not merged.get(key)]
    if missing and allow_missing:
        merged.update({key: "" for key in missing})
    elif missing:
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
        )
    known = {f.name for f in fields(StackOutputs)}
    values = {key: value for key, value in merged.items() if key in known}
    problems = [
        f"{problem} (from {origin[key]})"
        for key, value in values.items()
        if key in origin and (problem := _problem(key, value))
    ]
    if problems:
        source = (
            f"--outputs {outputs_file}"
            if outputs_file
            else f"the outputs of the Pulumi stack '{stack}' (or the environment, or config.json)"
        )
        how = (
            f"correct it in the file, or save it again with `pulumi stack output --json > {outputs_file}`"
            if outputs_file
            else f"check `pulumi stack output --json --stack {stack}`, the AZUREML_* variables and config.json"
        )
        raise JobsError(
            f"{source} has values the job scripts cannot use:\n  - "
            + "\n  - ".join(problems)
            + f"\n{how[0].upper()}{how[1:]}; --subscription-id, --resource-group and --workspace "
            "override single values."
        )
    values = {key: value.strip() if isinstance(value, str) else value for key, value in values.items()}
    if values.get("compute_max_nodes") is not None:
        values["compute_max_nodes"] = int(float(values["compute_max_nodes"]))
    return StackOutputs(**values)


def _shown(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return f"a JSON {'object' if isinstance(value, dict) else 'array'}"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    return repr(value) if isinstance(value, str) else f"the number {value}"


def _problem(key: str, value: Any) -> str | None:
    """What is wrong with one stack output's value (key, value, what is allowed); None when it is usable."""
    if value is None:
        return None
    if key in _GUIDS:
        if not (isinstance(value, str) and _GUID.fullmatch(value.strip())):
            return (
                f"'{key}' is {_shown(value)}; it must be a GUID such as 00000000-0000-0000-0000-000000000000 "
                "(`az account show` prints yours)"
            )
        return None
    if key in _NAMES:
        if not (isinstance(value, str) and value.strip()):
            return f"'{key}' is {_shown(value)}; it must be a non-empty string: a name"
        return None
    if key == "registry_name":
        if not (isinstance(value, str) and _REGISTRY_NAME.fullmatch(value.strip())):
            return (
                f"'{key}' is {_shown(value)}; it must be an Azure ML registry name: 3 to 32 letters, digits, '-' "
                "or '_', starting with a letter or digit (`pulumi stack output registry_name --stack shared`)"
            )
        return None
    if key == "compute_max_nodes":
        whole = (
            (isinstance(value, int) and not isinstance(value, bool))
            or (isinstance(value, float) and value.is_integer())
            or (isinstance(value, str) and value.strip().isdigit())
        )
        if not whole or int(float(value)) < 1:
            return f"'{key}' is {_shown(value)}; it must be a whole number of nodes, 1 or more"
    return None
