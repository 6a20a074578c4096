"""The stack-output contract between `infra/` and `jobs/`, declared once.

Every output a stack exports is one `StackOutput` in `OUTPUTS`: its key, its JSON type, what it is for,
which kinds of stack export it (infra/environments.py: workspace stacks dev and prod, the shared stack),
whether the job scripts read it and the shape they accept. From it:

- infra/platform.py exports exactly `keys_of(kind)` (`exports` refuses a missing or an extra key, so the
  program cannot drift from the contract) and infra/builders/shared_registry.py reads `SHARED_FOR_WORKSPACES`;
- jobs/azure/stack_outputs.py builds `StackOutputs` from `READ_BY_JOBS`, checks each value against its
  `Shape`, names the AZUREML_* variable that overrides it and the keys a workspace needs.

Plain Python on purpose: the job scripts import it without Pulumi, and the Pulumi program without azure-ai-ml.
No output is a secret (docs/infrastructure.md): keys and tokens are fetched at call time by the SDK.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from infra.environments import SHARED, STACK_KINDS, WORKSPACE
from infra.naming import ML_REGISTRY_NAME

_V = TypeVar("_V")

# Subscription and tenant ids are GUIDs in their 8-4-4-4-12 hex form. Source: Az PowerShell reference,
# "Your Azure subscription ID. This is a GUID-formatted string (e.g. 00000000-0000-0000-0000-000000000000)"
# (learn.microsoft.com/dotnet/api/microsoft.azure.powershell.cmdlets.websites.models.iwebsitesidentity.subscriptionid);
# tenant ids "in GUID format" (learn.microsoft.com/dotnet/api/azure.storage.sas.queuesasqueryparameters.keytenantid).
_GUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
# An Azure ML registry's name, as Azure takes it (infra/naming.py ML_REGISTRY_NAME: the REST spec's registryName
# pattern and the docs' 2-32 characters, both).
_REGISTRY_NAME = re.compile(ML_REGISTRY_NAME)


def _whole(value: object) -> bool:
    """A whole number as JSON or a flag gives it: 3, 3.0 or "3" (Pulumi prints an int output as a number)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    if isinstance(value, float):
        return value.is_integer()
    return isinstance(value, str) and value.strip().isdigit()


@dataclass(frozen=True)
class Shape:
    """What the job scripts accept for an output they read: `accepts(value)` on the raw JSON value (never
    None: a null output is "not exported"), `allowed` finishes "it must be ...", `parse` turns an accepted
    value into what StackOutputs holds."""

    allowed: str
    accepts: Callable[[object], bool]
    parse: Callable[[Any], object] = lambda value: value.strip() if isinstance(value, str) else value


GUID = Shape(
    "a GUID such as 00000000-0000-0000-0000-000000000000",
    lambda value: isinstance(value, str) and _GUID.fullmatch(value.strip()) is not None,
)
NAME = Shape("a non-empty string: a name", lambda value: isinstance(value, str) and bool(value.strip()))
REGISTRY_NAME = Shape(
    "an Azure ML registry name: 3 to 32 letters, digits, '-' or '_', starting with a letter or digit",
    lambda value: isinstance(value, str) and _REGISTRY_NAME.fullmatch(value.strip()) is not None,
)
NODES = Shape(
    "a whole number of nodes, 1 or more",
    lambda value: _whole(value) and int(float(str(value))) >= 1,
    lambda value: int(float(str(value))),
)


@dataclass(frozen=True)
class StackOutput:
    """One exported output.

    key: the `pulumi stack output` name; type: its JSON type once resolved (str, int, list, dict);
    purpose: what it is for; kinds: the kinds of stack that export it; nullable: exported as null on some
    stacks of those kinds (the registry outputs of a workspace stack without `sharedStack`, a shared stack's
    CI principal when none is configured). jobs: the Shape the job scripts accept, None when they do not read
    it; required: the job scripts cannot locate the workspace without it; env: the AZUREML_* variable that
    overrides it; hint: where the user finds a right value, said after "it must be ..."; referenced: a
    workspace stack reads it from the shared stack's outputs through its `sharedStack` StackReference.
    """

    key: str
    type: type
    purpose: str
    kinds: frozenset[str]
    nullable: bool = False
    jobs: Shape | None = None
    required: bool = False
    env: str | None = None
    hint: str = ""
    referenced: bool = False


BOTH = frozenset(STACK_KINDS)
WORKSPACES = frozenset({WORKSPACE})
SHARED_ONLY = frozenset({SHARED})

OUTPUTS: tuple[StackOutput, ...] = (
    StackOutput(
        "subscription_id",
        str,
        "the subscription the stack is in",
        BOTH,
        jobs=GUID,
        required=True,
        env="AZUREML_SUBSCRIPTION_ID",
        hint="`az account show` prints yours",
    ),
    StackOutput(
        "tenant_id",
        str,
        "the Microsoft Entra tenant the credential signs in to",
        BOTH,
        jobs=GUID,
        hint="`az account show` prints yours",
    ),
    StackOutput(
        "resource_group",
        str,
        "the stack's resource group",
        BOTH,
        jobs=NAME,
        required=True,
        env="AZUREML_RESOURCE_GROUP",
    ),
    StackOutput(
        "workspace_name",
        str,
        "the Azure ML workspace",
        WORKSPACES,
        jobs=NAME,
        required=True,
        env="AZUREML_WORKSPACE_NAME",
    ),
    StackOutput("compute_name", str, "the training cluster", WORKSPACES, jobs=NAME, env="AZUREML_COMPUTE_NAME"),
    # What the cluster reports, not what config asks for.
    StackOutput(
        "compute_max_nodes", int, "the cluster's node limit (bounds concurrent trials)", WORKSPACES, jobs=NODES
    ),
    StackOutput(
        "endpoint_name", str, "the managed online endpoint", WORKSPACES, jobs=NAME, env="AZUREML_ENDPOINT_NAME"
    ),
    StackOutput("endpoint_auth_mode", str, "the endpoint's auth mode as Azure reports it (Key, AADToken)", WORKSPACES),
    StackOutput("scoring_uri", str, "the endpoint's scoring URL", WORKSPACES),
    StackOutput("location", str, "the stack's region", BOTH, jobs=NAME),
    StackOutput("studio_url", str, "the workspace in Azure ML studio", WORKSPACES, jobs=NAME),
    # The shared registry the stack deploys from and shares to: its name (what `MLClient(registry_name=...)` and
    # azureml://registries/<name>/... take), ARM id and regions. Null on a workspace stack without `sharedStack`.
    StackOutput(
        "registry_name",
        str,
        "the shared Azure ML registry models are promoted through",
        BOTH,
        nullable=True,
        jobs=REGISTRY_NAME,
        hint="`pulumi stack output registry_name --stack shared`",
        referenced=True,
    ),
    StackOutput("registry_id", str, "the registry's ARM id", BOTH, nullable=True, referenced=True),
    StackOutput(
        "registry_regions",
        list,
        "the registry's regions, as the registry reports them",
        BOTH,
        nullable=True,
        referenced=True,
    ),
    StackOutput(
        "registry_consumers",
        dict,
        "the workspace stacks the registry serves: stack -> region",
        SHARED_ONLY,
        referenced=True,
    ),
    StackOutput(
        "ci_principal_id",
        str,
        "whom the registry's CI grant went to (null: no CI identity configured)",
        SHARED_ONLY,
        nullable=True,
    ),
)
BY_KEY: Mapping[str, StackOutput] = {output.key: output for output in OUTPUTS}
READ_BY_JOBS: tuple[StackOutput, ...] = tuple(output for output in OUTPUTS if output.jobs is not None)
# What a workspace stack reads of the shared stack's outputs through its StackReference: the registry.
SHARED_FOR_WORKSPACES = tuple(output.key for output in OUTPUTS if output.referenced and SHARED in output.kinds)


def keys_of(kind: str) -> tuple[str, ...]:
    """The keys a stack of `kind` exports, in declaration order."""
    return tuple(output.key for output in OUTPUTS if kind in output.kinds)


def exports(kind: str, values: Mapping[str, _V]) -> dict[str, _V]:
    """`values` in declaration order, when they are exactly the keys a stack of `kind` exports.

    Raises ValueError naming the keys missing or not declared: a program change that exports something the
    contract does not say (or forgets something it does) fails every test run, not a job script later."""
    declared = keys_of(kind)
    missing = [key for key in declared if key not in values]
    extra = sorted(set(values) - set(declared))
    if missing or extra:
        raise ValueError(
            f"the {kind} stack's outputs differ from infra/outputs.py: "
            + "; ".join(
                part
                for part in (
                    f"missing {', '.join(missing)}" if missing else "",
                    f"not declared {', '.join(extra)}" if extra else "",
                )
                if part
            )
        )
    return {key: values[key] for key in declared}


def kind_of(found: Mapping[str, object]) -> str | None:
    """The kind of stack a set of outputs comes from, by the keys only one kind exports; None when unclear."""
    for kind in STACK_KINDS:
        own = [output.key for output in OUTPUTS if output.kinds == {kind}]
        if any(found.get(key) is not None for key in own):
            return kind
    return None
