"""The live acceptance run without Azure: its order, its teardown, its record, its refusals and its
secrecy, against a fake runner that answers as the Pulumi and Azure CLIs would."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from acceptance import run as acc

STACK = "accept-test"
EMAIL = "alice.budget@example.com"
WORKSPACE_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-heart-accept-abc123"
    "/providers/Microsoft.MachineLearningServices/workspaces/mlw-heart-accept-abc123"
)
URN = "urn:pulumi:accept-test::azureml-heart-failure::heartfailure:platform:MlPlatform$"
PASSPHRASE = "correct horse battery staple"
CLIENT_SECRET = "Xq8~client-secret-value-0123456789"
ACCESS_TOKEN = "pul-0123456789abcdef0123456789abcdef"
SECRETS_ENV = {
    "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
    "ARM_CLIENT_SECRET": CLIENT_SECRET,
    "PULUMI_ACCESS_TOKEN": ACCESS_TOKEN,
    "HOME": "/home/runner",
    "TOKENIZERS_PARALLELISM": "false",
}

Answer = acc.Result | Callable[[acc.Command], acc.Result]


def ok(stdout: str = "", *lines: str) -> acc.Result:
    return acc.Result(0, stdout, lines)


def failed(*lines: str, code: int = 1) -> acc.Result:
    return acc.Result(code, "", lines)


@dataclass
class FakeRunner:
    """Answers like the CLIs: each rule is an argv prefix (after the program, `python` for the
    interpreter) and its Result; the first matching rule wins, the rest answer success. It keeps the
    stack's maxNodes as `pulumi config set` leaves it, so the read-back sees what was applied."""

    on_path: set[str] = field(default_factory=lambda: {"pulumi", "az", "git"})
    rules: list[tuple[tuple[str, ...], Answer]] = field(default_factory=list)
    calls: list[acc.Command] = field(default_factory=list)
    max_nodes: int = 3
    stacks: list[str] = field(default_factory=lambda: ["dev"])

    def which(self, program: str) -> str | None:
        return f"/usr/bin/{program}" if program in self.on_path else None

    def on(self, *prefix: str, answer: Answer) -> FakeRunner:
        self.rules.insert(0, (prefix, answer))
        return self

    def run(self, command: acc.Command) -> acc.Result:
        self.calls.append(command)
        argv = ("python", *command.argv[1:]) if command.argv[0] == sys.executable else command.argv
        for prefix, answer in self.rules:
            if argv[: len(prefix)] == prefix:
                return answer(command) if callable(answer) else answer
        return self.default(argv)

    def default(self, argv: tuple[str, ...]) -> acc.Result:
        if argv[:3] == ("pulumi", "config", "set") and argv[3] == "maxNodes":
            self.max_nodes = int(argv[4])
        answers = {
            ("az", "account", "show"): json.dumps({"name": "Pay-As-You-Go", "user": {"name": "alice@example.com"}}),
            ("pulumi", "stack", "ls"): json.dumps([{"name": name} for name in self.stacks]),
            ("pulumi", "version"): "v3.150.0\n",
            ("az", "version"): json.dumps({"azure-cli": "2.70.0"}),
            ("git", "rev-parse"): "0123456789abcdef0123456789abcdef01234567\n",
            ("python", "policy/config_for_stack.py"): json.dumps(
                {"public-network-access-as-configured": {"publicNetworkAccess": "Enabled"}}
            ),
            ("pulumi", "stack", "output"): json.dumps(
                {
                    "subscription_id": "00000000-0000-0000-0000-000000000001",
                    "workspace_name": "mlw-heart-accept-abc123",
                    "resource_group": "rg-heart-accept-abc123",
                    "compute_name": "cluster-abc",
                    "compute_max_nodes": self.max_nodes,
                }
            ),
            ("pulumi", "preview", "--json"): json.dumps(
                {
                    "steps": [
                        {"op": "same", "urn": URN + "azure-native:resources:ResourceGroup::group"},
                        {"op": "update", "urn": URN + "azure-native:machinelearningservices:Compute::cluster"},
                    ],
                    "changeSummary": {"same": 12, "update": 1},
                }
            ),
            ("pulumi", "stack", "export"): json.dumps(
                {
                    "deployment": {
                        "resources": [
                            {"type": "azure-native:machinelearningservices:Workspace", "id": WORKSPACE_ID},
                            {
                                "type": "azure-native:keyvault:Vault",
                                "id": "/subscriptions/x/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv1",
                                "outputs": {"name": "kv-heart-accept-abc123", "location": "westeurope"},
                            },
                        ]
                    }
                }
            ),
        }
        for prefix, stdout in answers.items():
            if argv[: len(prefix)] == prefix:
                return ok(stdout)
        return ok()

    def argvs(self) -> list[tuple[str, ...]]:
        return [c.argv for c in self.calls]

    def index(self, *prefix: str) -> int:
        """Position of the first call starting with `prefix` (the program's path as `python`)."""
        for i, command in enumerate(self.calls):
            argv = ("python", *command.argv[1:]) if command.argv[0] == sys.executable else command.argv
            if argv[: len(prefix)] == prefix:
                return i
        raise AssertionError(f"no call {prefix}; calls: {self.argvs()}")

    def ran(self, *prefix: str) -> bool:
        try:
            self.index(*prefix)
        except AssertionError:
            return False
        return True


class Clock:
    """Each reading is 1.5 s after the one before, so every step lasts a known time."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        self.t += 1.5
        return self.t


def options(tmp_path: Path, **changes: object) -> acc.Options:
    values: dict[str, object] = {
        "stack": STACK,
        "location": "westeurope",
        "budget_amount": 20,
        "budget_emails": (EMAIL,),
        "record": tmp_path / "records" / f"2025-01-02-{STACK}.json",
        "project_dir": acc.ROOT,
    }
    values.update(changes)
    return acc.Options(**values)  # type: ignore[arg-type]


@dataclass
class Outcome:
    code: int
    lines: list[str]
    record: dict
    record_text: str


def perform(
    tmp_path: Path,
    runner: FakeRunner,
    env: dict[str, str] | None = None,
    lines: list[str] | None = None,
    **changes: object,
) -> Outcome:
    opts = options(tmp_path, **changes)
    lines = [] if lines is None else lines
    redact = acc.Redactor(env or SECRETS_ENV, opts.budget_emails)
    acceptance = acc.Acceptance(
        opts, runner, redact, lines.append, clock=Clock(), now=lambda: dt.datetime(2025, 1, 2, 12, 0, tzinfo=dt.UTC)
    )
    code = acceptance.execute()
    text = opts.record.read_text()
    return Outcome(code, lines, json.loads(text), text)


def statuses(record: dict) -> dict[str, str]:
    return {step["name"]: step["status"] for step in record["steps"]}


def test_a_passing_run_takes_every_step_in_order_and_records_each_duration(tmp_path):
    runner = FakeRunner()
    outcome = perform(tmp_path, runner)

    assert outcome.code == 0
    assert outcome.record["result"] == "passed"
    names = [step["name"] for step in outcome.record["steps"]]
    assert names == [step.name for step in acc.RUN_STEPS + acc.TEARDOWN_STEPS]
    assert set(statuses(outcome.record).values()) == {"passed"}
    # Two clock readings per step, 1.5 s apart.
    assert all(step["seconds"] == 1.5 for step in outcome.record["steps"])

    order = [
        runner.index("pulumi", "stack", "init", STACK),
        runner.index("pulumi", "config", "set", "budgetAmount", "20"),
        runner.index("az", "provider", "register"),
        runner.index("pulumi", "up"),
        runner.index("pulumi", "stack", "output", "--json"),
        runner.index("python", "-m", "jobs", "all", "--target", "azure", "--outputs"),
        runner.index("pulumi", "preview", "--refresh", "--expect-no-changes"),
        runner.index("pulumi", "config", "set", "maxNodes", "2"),
        runner.index("pulumi", "preview", "--json"),
        runner.index("az", "ml", "workspace", "delete"),
        runner.index("pulumi", "destroy"),
        runner.index("az", "keyvault", "purge"),
        runner.index("pulumi", "stack", "rm"),
    ]
    assert order == sorted(order)
    ups = [c for c in runner.argvs() if c[:2] == ("pulumi", "up")]
    assert len(ups) == 2 and all("--policy-pack" in c and "--skip-preview" in c for c in ups)
    workspace_delete = runner.argvs()[runner.index("az", "ml", "workspace", "delete")]
    assert "--permanently-delete" in workspace_delete
    assert workspace_delete[workspace_delete.index("--name") + 1] == "mlw-heart-accept-abc123"
    assert workspace_delete[workspace_delete.index("--resource-group") + 1] == "rg-heart-accept-abc123"
    purge = runner.argvs()[runner.index("az", "keyvault", "purge")]
    assert purge[purge.index("--name") + 1] == "kv-heart-accept-abc123"
    # Every Pulumi command but `stack init` names the stack: nothing lands on another selected stack.
    for argv in runner.argvs():
        if (
            argv[0] == "pulumi"
            and argv[1:3] not in (("stack", "init"), ("stack", "ls"))
            and argv[1]
            not in (
                "whoami",
                "version",
            )
        ):
            assert argv[argv.index("--stack") + 1] == STACK, argv


def test_the_job_scripts_read_the_outputs_the_run_saved(tmp_path):
    seen: dict[str, object] = {}

    def jobs(command: acc.Command) -> acc.Result:
        seen.update(json.loads(Path(command.argv[command.argv.index("--outputs") + 1]).read_text()))
        return ok()

    perform(tmp_path, FakeRunner().on("python", "-m", "jobs", answer=jobs))
    assert seen["workspace_name"] == "mlw-heart-accept-abc123"


def test_the_record_is_on_disk_while_a_step_runs(tmp_path):
    # A run killed during the two hours of `jobs all` still leaves what it measured.
    during: dict[str, str] = {}

    def jobs(command: acc.Command) -> acc.Result:
        record = json.loads((tmp_path / "records" / f"2025-01-02-{STACK}.json").read_text())
        during.update(statuses(record))
        return ok()

    perform(tmp_path, FakeRunner().on("python", "-m", "jobs", answer=jobs))
    assert during["pulumi up"] == "passed"
    assert "pulumi destroy" not in during


def test_providers_come_from_the_deploy_workflow_and_cover_what_the_program_declares(tmp_path):
    from tests.ci.test_workflows import NAMESPACES
    from tests.fakes import run_program

    runner = FakeRunner()
    perform(tmp_path, runner)
    registered = [c[c.index("--namespace") + 1] for c in runner.argvs() if c[:3] == ("az", "provider", "register")]
    assert tuple(registered) == acc.provider_namespaces()
    assert all("--wait" in c for c in runner.argvs() if c[:3] == ("az", "provider", "register"))
    # The run sets a budget, so the budget's provider is among the needed ones.
    program = run_program({"budgetEmails": '["ml-team@example.com"]'})
    modules = {r.typ.split(":")[1] for r in program.mocks.resources if r.typ.startswith("azure-native:")}
    needed = {NAMESPACES[m] for m in modules} - {None}
    assert needed <= set(registered)


def test_a_workflow_without_the_register_step_is_refused_clearly(tmp_path):
    workflow = tmp_path / "deploy.yml"
    workflow.write_text("jobs:\n  deploy:\n    steps:\n      - run: echo hello\n")
    with pytest.raises(acc.Refused, match="no `az provider register` step"):
        acc.provider_namespaces(workflow)


@pytest.mark.parametrize("step", [s.name for s in acc.RUN_STEPS[1:]])
def test_whatever_step_fails_the_stack_is_destroyed_and_the_failure_recorded(tmp_path, step):
    index = [s.name for s in acc.RUN_STEPS].index(step)
    lines: list[str] = []
    runner = FakeRunner()
    real_run = runner.run

    def run(command: acc.Command) -> acc.Result:
        # The chosen step's first command fails, as its program would; the run announces each
        # step with a line `== <name>` before its first command.
        headers = [line for line in lines if line.startswith("== ") and ": " not in line]
        if headers and headers[-1] == f"== {step}" and not any(line.startswith(f"== {step}: ") for line in lines):
            real_run(command)
            lines.append(f"== {step}: (failing)")
            return failed("Updating (accept-test)", "error: update failed", f'    error: Code="Boom" in {step}')
        return real_run(command)

    runner.run = run  # type: ignore[method-assign]
    outcome = perform(tmp_path, runner, lines=lines)

    assert outcome.code == 1
    assert outcome.record["result"] == "failed"
    got = statuses(outcome.record)
    assert got[step] == "failed"
    entry = next(s for s in outcome.record["steps"] if s["name"] == step)
    assert entry["error"] == f'exit 1: error: Code="Boom" in {step}'
    assert entry["seconds"] == 1.5
    for later in acc.RUN_STEPS[index + 1 :]:
        assert got[later.name] == "skipped"
    assert got["pulumi destroy"] == "passed"
    assert got["remove stack"] == "passed"
    assert runner.ran("pulumi", "destroy")
    assert any(f"failed: {step}" in line for line in outcome.lines)


def test_when_the_stack_cannot_be_created_nothing_is_destroyed(tmp_path):
    runner = FakeRunner().on("pulumi", "stack", "init", answer=failed("error: stack 'accept-test' already exists"))
    outcome = perform(tmp_path, runner)
    assert outcome.code == 1
    assert not runner.ran("pulumi", "destroy")
    assert statuses(outcome.record)["pulumi destroy"] == "skipped"


def test_an_interrupt_during_the_job_scripts_still_tears_down(tmp_path):
    def interrupted(command: acc.Command) -> acc.Result:
        raise KeyboardInterrupt

    runner = FakeRunner().on("python", "-m", "jobs", answer=interrupted)
    outcome = perform(tmp_path, runner)
    assert outcome.code == 1
    assert outcome.record["result"] == "interrupted"
    got = statuses(outcome.record)
    assert got["jobs all --target azure"] == "failed"
    assert got["pulumi destroy"] == "passed"
    assert "preview shows no changes" not in got  # never reached, never claimed


def test_a_failed_destroy_keeps_the_stack_and_says_how_to_finish(tmp_path):
    runner = FakeRunner().on("pulumi", "destroy", answer=failed("error: deleting urn: Conflict"))
    outcome = perform(tmp_path, runner)
    got = statuses(outcome.record)
    assert outcome.code == 1
    assert got["pulumi destroy"] == "failed"
    assert got["purge key vault"] == "skipped" and got["remove stack"] == "skipped"
    assert not runner.ran("pulumi", "stack", "rm")


def test_a_preview_that_is_not_empty_fails_the_step(tmp_path):
    runner = FakeRunner().on(
        "pulumi",
        "preview",
        "--refresh",
        answer=failed("error: no changes were expected but changes were proposed"),
    )
    outcome = perform(tmp_path, runner)
    entry = next(s for s in outcome.record["steps"] if s["name"] == "preview shows no changes")
    assert entry["error"] == "exit 1: error: no changes were expected but changes were proposed"
    assert outcome.code == 1


def test_a_change_that_replaces_the_cluster_is_not_taken_for_an_in_place_one(tmp_path):
    digest = {
        "steps": [
            {"op": "create-replacement", "urn": URN + "azure-native:machinelearningservices:Compute::cluster"},
            {"op": "replace", "urn": URN + "azure-native:machinelearningservices:Compute::cluster"},
        ]
    }
    runner = FakeRunner().on("pulumi", "preview", "--json", answer=ok(json.dumps(digest)))
    outcome = perform(tmp_path, runner)
    entry = next(s for s in outcome.record["steps"] if s["name"] == "in-place change previewed")
    assert entry["status"] == "failed"
    assert (
        "not an in-place change" in entry["error"]
        and "replace azure-native:machinelearningservices:Compute" in entry["error"]
    )
    # Not applied: the second up is skipped, and the stack is still destroyed.
    assert len([c for c in runner.argvs() if c[:2] == ("pulumi", "up")]) == 1
    assert runner.ran("pulumi", "destroy")


def test_a_change_azure_did_not_apply_fails_the_read_back(tmp_path):
    runner = FakeRunner()
    real_default = runner.default

    def stale(argv: tuple[str, ...]) -> acc.Result:
        result = real_default(argv)
        runner.max_nodes = 3  # the cluster still reports the old scale settings
        return result

    runner.default = stale  # type: ignore[method-assign]
    outcome = perform(tmp_path, runner)
    entry = next(s for s in outcome.record["steps"] if s["name"] == "change read back")
    assert entry == {**entry, "status": "failed", "error": "the cluster reports maxNodes 3, not 2"}


def test_secrets_and_the_budget_address_reach_neither_the_output_nor_the_record(tmp_path):
    leak = failed(
        f"PULUMI_CONFIG_PASSPHRASE={PASSPHRASE}",
        f"error: AuthenticationFailed: client secret {CLIENT_SECRET} rejected for {EMAIL}",
        "DefaultEndpointsProtocol=https;AccountName=st1;AccountKey=abc123def456==;",
        "Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.payload.signature",
        f"token {ACCESS_TOKEN}",
    )
    runner = FakeRunner().on("pulumi", "up", answer=leak)
    outcome = perform(tmp_path, runner)

    shown = "\n".join(outcome.lines)
    for secret in (PASSPHRASE, CLIENT_SECRET, ACCESS_TOKEN, EMAIL, "abc123def456", "eyJhbGciOiJSUzI1NiJ9"):
        assert secret not in outcome.record_text, secret
        assert secret not in shown, secret
    entry = next(s for s in outcome.record["steps"] if s["name"] == "pulumi up")
    assert entry["error"] == "exit 1: error: AuthenticationFailed: client secret <redacted> rejected for <redacted>"
    # The e-mail is set on the stack all the same, and shown redacted.
    assert runner.ran("pulumi", "config", "set", "--path", "budgetEmails[0]", EMAIL)
    assert "$ pulumi config set --path 'budgetEmails[0]' <redacted> --stack accept-test" in shown
    # A flag such as TOKENIZERS_PARALLELISM=false is no secret: "false" stays readable.
    assert acc.Redactor(SECRETS_ENV)("enabled: false") == "enabled: false"


def test_the_real_runner_redacts_a_childs_output_and_stops_it_at_its_timeout(tmp_path):
    lines: list[str] = []
    runner = acc.SubprocessRunner(acc.Redactor(SECRETS_ENV), lines.append, cwd=tmp_path)
    shown = runner.run(acc.Command((sys.executable, "-c", f"print('passphrase is {PASSPHRASE}'); print('done')")))
    assert shown.returncode == 0
    assert lines == ["passphrase is <redacted>", "done"]

    captured = runner.run(
        acc.Command((sys.executable, "-c", "import sys; print('{}'); print('warn: x', file=sys.stderr)"), capture=True)
    )
    assert captured.stdout.strip() == "{}" and lines[-1] == "warn: x"

    slow = acc.Command((sys.executable, "-c", "import time; print('started', flush=True); time.sleep(60)"), 0.5)
    result = runner.run(slow)
    assert result.timed_out and result.returncode != 0
    assert acc.error_line(result, slow).endswith("time.sleep(60)'` did not finish within 0.5 s")
    assert "started" in lines


def test_the_first_specific_error_line_is_recorded_not_pulumis_summary():
    result = failed(
        "Updating (accept-test):",
        "Diagnostics:",
        "  pulumi:pulumi:Stack (azureml-heart-failure-accept-test):",
        "    error: update failed",
        "  azure-native:machinelearningservices:Compute (cluster):",
        '    error: Code="QuotaExceeded" Message="Operation could not be completed as it results in exceeding quota"',
    )
    line = acc.error_line(result, acc.Command(("pulumi", "up")))
    assert line.startswith('exit 1: error: Code="QuotaExceeded"')
    assert len(acc.error_line(failed("error: " + "x" * 1000), acc.Command(("az",)))) == acc.MAX_ERROR
    assert acc.error_line(failed(), acc.Command(("az",))) == "exit 1"
    assert acc.error_line(failed("ERROR: (AuthorizationFailed) no access"), acc.Command(("az",))) == (
        "exit 1: ERROR: (AuthorizationFailed) no access"
    )


# Preconditions: refused before the first change, with what to do, exit 2, no record.
MUTATING = ("init", "up", "register", "destroy", "set", "delete", "purge", "rm")


@pytest.mark.parametrize(
    ("runner", "message"),
    [
        (FakeRunner(on_path={"az", "git"}), "`pulumi` is not on PATH: install the Pulumi CLI"),
        (FakeRunner(on_path={"pulumi"}), "`az` is not on PATH: install the Azure CLI"),
        (FakeRunner().on("az", "account", "show", answer=failed("ERROR: Please run 'az login'")), "run `az login`"),
        (FakeRunner().on("az", "extension", "show", answer=failed()), "run `az extension add --name ml`"),
        (FakeRunner().on("pulumi", "whoami", answer=failed()), "run `pulumi login`"),
        (FakeRunner(stacks=["dev", STACK]), f"stack '{STACK}' already exists"),
        (FakeRunner(stacks=["dev", f"acme/azureml-heart-failure/{STACK}"]), f"stack '{STACK}' already exists"),
        (FakeRunner().on("pulumi", "stack", "ls", answer=ok("not json")), "did not print a list of stacks"),
    ],
)
def test_a_refused_precondition_changes_nothing_and_exits_2(tmp_path, capsys, runner, message):
    record = tmp_path / "record.json"
    code = acc.main(["--stack", STACK, "--budget-email", EMAIL, "--record", str(record)], runner=runner)
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and message in err
    assert "Traceback" not in err
    assert not record.exists()
    assert not [c for c in runner.argvs() if set(c) & set(MUTATING)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "--budget-email is required"),
        (["--budget-email", "not-an-address"], "--budget-email 'not-an-address' is not an e-mail address"),
        (["--budget-email", EMAIL, "--budget-amount", "0"], "--budget-amount 0 must be from 1 to 1000000"),
        (["--budget-email", EMAIL, "--stack", "has space"], "--stack 'has space' is not a Pulumi stack name"),
    ],
)
def test_bad_arguments_are_refused_before_any_program_runs(tmp_path, capsys, args, message):
    runner = FakeRunner()
    code = acc.main([*args, "--record", str(tmp_path / "r.json")], runner=runner)
    assert code == 2
    assert message in capsys.readouterr().err
    assert runner.calls == []


def test_a_leftover_stack_config_file_is_refused(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / f"Pulumi.{STACK}.yaml").write_text("config: {}\n")
    with pytest.raises(acc.Refused, match=f"Pulumi.{STACK}.yaml exists"):
        perform(tmp_path, FakeRunner(), project_dir=project)


def test_an_existing_record_is_never_overwritten(tmp_path):
    record = tmp_path / "records" / f"2025-01-02-{STACK}.json"
    record.parent.mkdir(parents=True)
    record.write_text("{}")
    runner = FakeRunner()
    with pytest.raises(acc.Refused, match="a record is never overwritten"):
        perform(tmp_path, runner)
    assert record.read_text() == "{}"
    assert not runner.ran("pulumi", "stack", "init")


def test_teardown_only_finishes_an_existing_stack_into_its_record(tmp_path):
    record = tmp_path / "records" / f"2025-01-02-{STACK}.json"
    record.parent.mkdir(parents=True)
    earlier = {"stack": STACK, "result": "incomplete", "steps": [{"name": "pulumi up", "status": "passed"}]}
    record.write_text(json.dumps(earlier))
    runner = FakeRunner(stacks=[STACK])
    outcome = perform(tmp_path, runner, teardown_only=True, budget_emails=())

    assert outcome.code == 0
    assert [s["name"] for s in outcome.record["steps"]] == ["pulumi up"] + [s.name for s in acc.TEARDOWN_STEPS]
    assert not runner.ran("pulumi", "up") and runner.ran("pulumi", "destroy")


def test_teardown_only_of_a_missing_stack_is_nothing_to_do(tmp_path, capsys):
    runner = FakeRunner(stacks=["dev"])
    code = acc.main(["--teardown-only", "--stack", STACK, "--record", str(tmp_path / "r.json")], runner=runner)
    assert code == 0
    assert "nothing to tear down" in capsys.readouterr().out
    assert not runner.ran("pulumi", "destroy")


def test_the_readmes_say_no_live_record_exists_exactly_while_none_does():
    # Whoever commits the first record also updates the claim (and the section's wording).
    records = sorted(acc.RECORDS.glob("*.json"))
    for readme in (acc.ROOT / "README.md", acc.ROOT / "acceptance" / "README.md"):
        claims_none = "No live record exists yet" in readme.read_text()
        assert claims_none == (not records), f"{readme.name}: records {[r.name for r in records]}"
