"""The stack-output contract (infra/outputs.py) end to end: the Pulumi program under mocks exports it, and the
job scripts' reader (jobs/azure/stack_outputs.py) takes those exports as `pulumi stack output --json` would
print them, for each kind of stack.
"""

from __future__ import annotations

import json

import pytest

from infra import outputs as contract
from infra.environments import SHARED, WORKSPACE
from jobs.azure import stack_outputs
from jobs.errors import JobsError
from tests.fakes import SUBSCRIPTION_ID, TENANT_ID, run_program, run_shared


@pytest.fixture(scope="module")
def exported():
    """Each kind of stack's exports, JSON round-tripped as `pulumi stack output --json > FILE` saves them: the
    shared stack, a workspace stack reading it (prod) and one without a registry (dev)."""
    shared = run_shared()
    prod = run_program({"sharedStack": "shared"}, stack="prod", stacks={"shared": shared.exports})
    dev = run_program({}, stack="dev")
    runs = {"shared": shared, "prod": prod, "dev": dev}
    return {name: json.loads(json.dumps(run.exports)) for name, run in runs.items()}


@pytest.mark.parametrize(("stack", "kind"), [("shared", SHARED), ("prod", WORKSPACE), ("dev", WORKSPACE)])
def test_each_stack_exports_its_kinds_keys_with_their_declared_types(exported, stack, kind):
    out = exported[stack]
    assert list(out) == list(contract.keys_of(kind))
    for key, value in out.items():
        declared = contract.BY_KEY[key]
        if value is None:
            assert declared.nullable, f"{stack} exports {key} as null, which the contract does not allow"
        else:
            assert isinstance(value, declared.type), (stack, key, value)


def test_a_workspace_stack_exports_every_output_the_jobs_read():
    assert {output.key for output in contract.READ_BY_JOBS} <= set(contract.keys_of(WORKSPACE))


@pytest.mark.parametrize("stack", ["prod", "dev"])
def test_the_jobs_read_a_workspace_stacks_exports_as_exported(exported, stack, tmp_path):
    saved = tmp_path / "outputs.json"
    saved.write_text(json.dumps(exported[stack]))
    read = stack_outputs.resolve(stack, saved, environ={}, cwd=tmp_path)
    for output in contract.READ_BY_JOBS:
        assert getattr(read, output.key) == exported[stack][output.key], output.key
    assert (read.subscription_id, read.tenant_id) == (SUBSCRIPTION_ID, TENANT_ID)
    assert read.compute_max_nodes == 3 and isinstance(read.compute_max_nodes, int)
    # prod reads the shared registry; dev has none and the jobs read None.
    assert (read.registry_name is None) == (stack == "dev")


def test_the_jobs_read_the_exports_through_the_pulumi_cli_too(exported, monkeypatch, tmp_path):
    """Without --outputs, the reader runs `pulumi stack output --json --stack NAME`: the same JSON."""

    class Printed:
        returncode = 0
        stdout = json.dumps(exported["prod"])
        stderr = ""

    ran = []
    monkeypatch.setattr(stack_outputs.shutil, "which", lambda _: "/usr/bin/pulumi")
    monkeypatch.setattr(stack_outputs.subprocess, "run", lambda argv, **_: ran.append(argv) or Printed())
    read = stack_outputs.resolve("prod", environ={}, cwd=tmp_path)
    assert ran == [["pulumi", "stack", "output", "--json", "--stack", "prod"]]
    assert read.workspace_name == exported["prod"]["workspace_name"]
    assert read.registry_name == exported["shared"]["registry_name"]


def test_the_shared_stacks_exports_are_refused_by_the_jobs_with_what_to_use_instead(exported, tmp_path):
    saved = tmp_path / "shared.json"
    saved.write_text(json.dumps(exported["shared"]))
    with pytest.raises(JobsError) as caught:
        stack_outputs.resolve("shared", saved, environ={}, cwd=tmp_path)
    message = str(caught.value)
    assert f"--outputs {saved} holds the outputs of a shared stack" in message
    assert "--stack dev" in message
    # Even with the workspace named by flags: the shared stack has no compute or endpoint to go with it.
    with pytest.raises(JobsError, match="holds the outputs of a shared stack"):
        stack_outputs.resolve("shared", saved, {"workspace_name": "mlw-x"}, environ={}, cwd=tmp_path)


def test_every_bad_output_the_jobs_read_is_listed_at_once_with_its_shape(exported, tmp_path):
    bad = {**exported["prod"], "tenant_id": "contoso", "compute_max_nodes": 0, "registry_name": "_x", "location": ""}
    saved = tmp_path / "outputs.json"
    saved.write_text(json.dumps(bad))
    with pytest.raises(JobsError) as caught:
        stack_outputs.resolve("prod", saved, environ={}, cwd=tmp_path)
    lines = [line for line in str(caught.value).splitlines() if line.startswith("  - ")]
    assert len(lines) == 4, lines
    for key in ("tenant_id", "compute_max_nodes", "registry_name", "location"):
        (line,) = [line for line in lines if f"'{key}'" in line]
        assert contract.BY_KEY[key].jobs.allowed in line and f"(from --outputs {saved})" in line


def test_the_program_cannot_export_outside_the_contract():
    values = dict.fromkeys(contract.keys_of(SHARED), 1)
    assert list(contract.exports(SHARED, values)) == list(contract.keys_of(SHARED))
    with pytest.raises(ValueError, match="missing ci_principal_id; not declared token"):
        contract.exports(SHARED, {**{k: 1 for k in values if k != "ci_principal_id"}, "token": 1})


def test_the_registry_a_workspace_stack_references_is_what_the_shared_stack_exports():
    referenced = contract.SHARED_FOR_WORKSPACES
    assert set(referenced) <= set(contract.keys_of(SHARED))
    assert "registry_name" in referenced and "registry_consumers" in referenced
