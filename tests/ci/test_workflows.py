"""The GitHub Actions workflows: valid, audited, and with the properties users rely on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
BIN = Path(sys.executable).parent


def load(name: str) -> dict:
    # YAML 1.1 reads the key `on` as True.
    workflow = yaml.safe_load((WORKFLOWS / name).read_text())
    workflow["on"] = workflow.pop(True, workflow.get("on"))
    return workflow


def steps(workflow: dict) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def pulumi_step(job: dict) -> dict | None:
    return next((step for step in job["steps"] if step.get("uses", "").startswith("pulumi/actions@")), None)


# The stacks of one program (docs/environments.md), one Pulumi.<stack>.yaml each.
STACKS = sorted(path.name.split(".")[1] for path in ROOT.glob("Pulumi.*.yaml"))


def test_every_workflow_validates_against_githubs_schema():
    files = sorted(str(p) for p in WORKFLOWS.glob("*.yml"))
    assert len(files) == 6
    result = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *files],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_finds_nothing_at_medium_severity_or_above():
    result = subprocess.run(
        [
            str(BIN / "zizmor"),
            "--offline",
            "--min-severity",
            "medium",
            "--config",
            str(ROOT / ".github" / "zizmor.yml"),
            str(WORKFLOWS),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings" in result.stdout + result.stderr


def test_tests_run_the_readmes_test_command():
    workflow = load("tests.yml")
    assert {"push", "pull_request"} <= set(workflow["on"])
    assert any(step.get("run") == "make test" for step in steps(workflow))
    assert "make test" in (ROOT / "README.md").read_text()
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_pull_requests_get_a_preview_with_the_policy_pack():
    workflow = load("preview.yml")
    assert "pull_request" in workflow["on"]
    pulumi = next(step for step in steps(workflow) if step.get("uses", "").startswith("pulumi/actions@"))
    assert pulumi["with"]["command"] == "preview"
    assert pulumi["with"]["policyPacks"] == "policy"
    assert pulumi["with"]["comment-on-pr"] is True
    assert (ROOT / pulumi["with"]["policyPacks"] / "PulumiPolicy.yaml").is_file()


@pytest.mark.parametrize("name", ["preview.yml", "deploy.yml", "destroy.yml", "acceptance.yml", "promote.yml"])
def test_azure_access_is_oidc_only(name):
    workflow = load(name)
    assert workflow["permissions"] == {}
    for job in workflow["jobs"].values():
        assert job["permissions"]["id-token"] == "write"
        assert job["env"]["ARM_USE_OIDC"] == "true"
    text = (WORKFLOWS / name).read_text()
    for long_lived in ("ARM_CLIENT_SECRET", "AZURE_CLIENT_SECRET", "client-secret", "AZURE_CREDENTIALS"):
        assert long_lived not in text


@pytest.mark.parametrize("name", ["preview.yml", "deploy.yml", "destroy.yml"])
def test_runs_on_a_stack_never_overlap(name):
    # Each job that runs Pulumi on a stack is in that stack's group, whichever workflow it is in.
    workflow = load(name)
    for job in workflow["jobs"].values():
        concurrency = job.get("concurrency", workflow.get("concurrency"))
        stack = pulumi_step(job)["with"]["stack-name"] if pulumi_step(job) else "dev"
        group = "pulumi-${{ matrix.stack }}" if stack == "${{ matrix.stack }}" else f"pulumi-{stack}"
        assert concurrency == {"group": group, "cancel-in-progress": False}, job["name"]


def test_every_stack_is_previewed_on_pull_requests():
    assert STACKS == ["dev", "prod", "shared"]
    (job,) = load("preview.yml")["jobs"].values()
    assert sorted(job["strategy"]["matrix"]["stack"]) == STACKS
    assert job["strategy"]["fail-fast"] is False  # every stack's preview is shown
    assert pulumi_step(job)["with"]["stack-name"] == "${{ matrix.stack }}"
    policy = next(step for step in job["steps"] if "config_for_stack.py" in step.get("run", ""))
    assert policy["env"]["STACK"] == "${{ matrix.stack }}" and '"$STACK"' in policy["run"]


def test_deploy_brings_the_shared_stack_up_before_dev_and_prod_and_prod_behind_its_environment():
    jobs = load("deploy.yml")["jobs"]
    by_stack = {pulumi_step(job)["with"]["stack-name"]: job for job in jobs.values()}
    assert sorted(by_stack) == STACKS
    shared_key = next(key for key, job in jobs.items() if job is by_stack["shared"])
    assert "needs" not in by_stack["shared"]
    for stack in ("dev", "prod"):
        assert by_stack[stack]["needs"] == shared_key, stack
        assert pulumi_step(by_stack[stack])["with"]["command"] == "up"
    assert {stack: job["environment"] for stack, job in by_stack.items()} == {s: s for s in STACKS}
    # prod gets its platform only: what it serves arrives by promotion, never by training there.
    assert not any("python -m jobs" in step.get("run", "") for step in by_stack["prod"]["steps"])
    for stack, job in by_stack.items():
        policy = next(step for step in job["steps"] if "config_for_stack.py" in step.get("run", ""))
        assert f"config_for_stack.py {stack} " in policy["run"], stack


def test_every_action_is_pinned_to_a_version():
    for path in WORKFLOWS.glob("*.yml"):
        for step in steps(load(path.name)):
            if "uses" in step:
                assert "@" in step["uses"] and not step["uses"].endswith(("@main", "@master")), step["uses"]


def dev_deploy() -> dict:
    return next(job for job in load("deploy.yml")["jobs"].values() if pulumi_step(job)["with"]["stack-name"] == "dev")


def test_deploy_runs_up_then_the_job_scripts_behind_an_environment():
    workflow = load("deploy.yml")
    assert workflow["on"]["push"]["branches"] == ["main"]
    job = dev_deploy()
    assert job["environment"] == "dev"
    runs = [step.get("run", "") + step.get("with", {}).get("command", "") for step in job["steps"]]
    up = runs.index("up")
    assert any("python -m jobs all --target azure" in run for run in runs[up:])


def test_destroy_is_manual_and_needs_its_confirmation():
    workflow = load("destroy.yml")
    assert set(workflow["on"]) == {"workflow_dispatch"}
    assert workflow["on"]["workflow_dispatch"]["inputs"]["confirm"]["required"] is True
    (job,) = workflow["jobs"].values()
    assert job["if"] == "inputs.confirm == 'dev'"
    assert job["environment"] == "dev"


# Azure resource provider namespace of each pulumi-azure-native module the program uses
# (learn.microsoft.com/azure/azure-resource-manager/management/azure-services-resource-providers).
# Microsoft.Resources and Microsoft.Authorization are registered in every subscription.
NAMESPACES = {
    "machinelearningservices": "Microsoft.MachineLearningServices",
    "storage": "Microsoft.Storage",
    "keyvault": "Microsoft.KeyVault",
    "containerregistry": "Microsoft.ContainerRegistry",
    "operationalinsights": "Microsoft.OperationalInsights",
    "applicationinsights": "Microsoft.Insights",
    "consumption": "Microsoft.Consumption",
    "resources": None,
    "authorization": None,
}


def test_deploy_registers_every_resource_provider_the_stack_uses_before_up():
    from tests.fakes import run_program, run_shared, shared_stacks

    runs_ = [run_program({"budgetEmails": '["ml-team@example.com"]', "sharedStack": "shared"}, stacks=shared_stacks())]
    runs_.append(run_shared())
    modules = {r.typ.split(":")[1] for run in runs_ for r in run.mocks.resources if r.typ.startswith("azure-native:")}
    assert modules <= set(NAMESPACES), f"add the namespace of {modules - set(NAMESPACES)} to NAMESPACES"
    needed = {NAMESPACES[m] for m in modules} - {None}
    registers = []
    checklist = (ROOT / "docs" / "azure.md").read_text()
    for job in load("deploy.yml")["jobs"].values():
        runs = [step.get("run", "") + step.get("with", {}).get("command", "") for step in job["steps"]]
        register = next(i for i, run_ in enumerate(runs) if "az provider register" in run_)
        assert register < runs.index("up")
        assert "--wait" in runs[register]
        registers.append(runs[register])
        for namespace in needed:
            assert namespace in runs[register], namespace
            assert namespace in checklist, f"docs/azure.md's first-deployment checklist lacks {namespace}"
    assert len(set(registers)) == 1  # one list, which the acceptance run also reads


def test_the_deploy_workflow_outlasts_the_worst_case_of_the_waits_it_contains():
    import inspect

    from jobs.azure.backend import AzureBackend, _wait_limit_s
    from jobs.training import TrainingSettings

    job = dev_deploy()
    steps_ = job["steps"]
    jobs_step = next(s for s in steps_ if "python -m jobs all" in s.get("run", ""))
    assert "--timeout-minutes" not in jobs_step["run"], "then compute the wait from that value"
    deploy_wait_s = inspect.signature(AzureBackend.__init__).parameters["deploy_timeout_s"].default
    # train --wait, then deploy: create the deployment, move traffic, delete the old one.
    worst_s = _wait_limit_s(TrainingSettings()) + 3 * deploy_wait_s
    assert jobs_step["timeout-minutes"] * 60 > worst_s
    up = next(s for s in steps_ if s.get("with", {}).get("command") == "up")
    assert up["timeout-minutes"] >= 30
    register = next(s for s in steps_ if "az provider register" in s.get("run", ""))
    setup = next(s for s in steps_ if s.get("run") == "make setup")
    assert all("timeout-minutes" in s for s in (jobs_step, up, register, setup))
    limited = sum(s.get("timeout-minutes", 0) for s in steps_)
    assert limited < job["timeout-minutes"] <= 360  # GitHub's cap for a hosted runner


@pytest.mark.parametrize("name", ["preview.yml", "deploy.yml", "destroy.yml", "promote.yml"])
def test_missing_credentials_are_named_before_azure_login_tries_them(name, tmp_path):
    workflow = load(name)
    check_name = "Check that the credentials reach this job"
    for job in workflow["jobs"].values():
        login = next(i for i, step in enumerate(job["steps"]) if step.get("uses", "").startswith("azure/login@"))
        check = next(i for i, step in enumerate(job["steps"]) if step.get("name") == check_name)
        assert check < login, job["name"]
        _check_names_what_is_missing(job["steps"][check], tmp_path)


def _check_names_what_is_missing(step: dict, tmp_path: Path) -> None:
    script = tmp_path / "check.sh"
    script.write_text(step["run"])

    def run(**env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", "-e", str(script)], env=env, capture_output=True, text=True, check=False)

    # What a job that names no environment gets when the values live on the `dev` environment only.
    empty = run(AZURE_CLIENT_ID="", AZURE_TENANT_ID="", AZURE_SUBSCRIPTION_ID="", HAS_PULUMI_TOKEN="false")
    assert empty.returncode == 1
    assert "vars.AZURE_CLIENT_ID vars.AZURE_TENANT_ID vars.AZURE_SUBSCRIPTION_ID" in empty.stdout
    assert "secrets.PULUMI_ACCESS_TOKEN" in empty.stdout and "repository level" in empty.stdout
    ids = {"AZURE_CLIENT_ID": "c", "AZURE_TENANT_ID": "t", "AZURE_SUBSCRIPTION_ID": "s"}
    assert run(**ids, HAS_PULUMI_TOKEN="true").returncode == 0
    assert run(**ids, HAS_PULUMI_TOKEN="false", PULUMI_BACKEND_URL="azblob://state").returncode == 0
    # The secret's value never enters the script, only whether it is set.
    assert "secrets.PULUMI_ACCESS_TOKEN != ''" in str(step["env"]["HAS_PULUMI_TOKEN"])


def test_previews_skip_forks_which_get_no_secrets_and_name_no_environment():
    (job,) = load("preview.yml")["jobs"].values()
    assert "environment" not in job  # its OIDC subject stays repo:OWNER/REPO:pull_request (README)
    assert job["if"] == "github.event.pull_request.head.repo.full_name == github.repository"


def test_the_acceptance_run_is_manual_approved_and_always_tears_down():
    workflow = load("acceptance.yml")
    assert set(workflow["on"]) == {"workflow_dispatch"}
    inputs = workflow["on"]["workflow_dispatch"]["inputs"]
    assert inputs["budget_email"]["required"] is True
    (job,) = workflow["jobs"].values()
    assert job["permissions"] == {"contents": "read", "id-token": "write"}
    assert job["environment"] == "dev"  # its reviewers approve the spending
    # Its own stack, so not the dev stack's group; one acceptance run at a time.
    assert workflow["concurrency"] == {"group": "acceptance", "cancel-in-progress": False}
    runs = [step.get("run", "") for step in job["steps"]]
    main = next(i for i, run in enumerate(runs) if "-m acceptance.run" in run and "--teardown-only" not in run)
    teardown = next(i for i, run in enumerate(runs) if "-m acceptance.run --teardown-only" in run)
    assert main < teardown
    assert job["steps"][teardown]["if"] == "always()"
    # Both name the same stack, and the inputs reach the run through env, never spliced into the script.
    stack = '--stack "accept-${GITHUB_RUN_ID}"'
    assert stack in runs[main] and stack in runs[teardown]
    assert "${{" not in runs[main] + runs[teardown]
    upload = next(step for step in job["steps"] if step.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["if"] == "always()" and upload["with"]["path"] == "acceptance/records/"
    # The steps' limits leave the teardown its time inside GitHub's cap for a hosted runner.
    limited = sum(step.get("timeout-minutes", 0) for step in job["steps"])
    assert limited < job["timeout-minutes"] <= 360
    assert job["steps"][teardown]["timeout-minutes"] >= 60


def test_the_acceptance_run_registers_the_providers_the_deploy_workflow_lists():
    from acceptance.run import provider_namespaces

    deploy = next(iter(load("deploy.yml")["jobs"].values()))
    register = next(step["run"] for step in deploy["steps"] if "az provider register" in step.get("run", ""))
    namespaces = provider_namespaces(WORKFLOWS / "deploy.yml")
    assert namespaces and all(namespace in register for namespace in namespaces)
    assert set(NAMESPACES.values()) - {None} <= set(namespaces)


# -- promote.yml: one version from dev to prod, reviewed, approved (docs/environments.md, Promotion) ----------


def test_promotion_is_manual_for_one_version_and_starts_from_main_only():
    workflow = load("promote.yml")
    assert set(workflow["on"]) == {"workflow_dispatch"}
    assert workflow["on"]["workflow_dispatch"]["inputs"]["version"]["required"] is True
    review = workflow["jobs"]["review"]
    assert review["if"] == "github.ref == 'refs/heads/main'"
    # The input reaches every script through env, never spliced into one (a template injection otherwise).
    for job in workflow["jobs"].values():
        assert job["env"]["VERSION"] == "${{ inputs.version }}"
        assert all("${{" not in step.get("run", "") for step in job["steps"])


def test_the_reviewer_page_is_written_before_the_approval_by_a_job_without_an_environment():
    jobs = load("promote.yml")["jobs"]
    review, promote = jobs["review"], jobs["promote"]
    assert "environment" not in review  # nobody approves reading the tags
    summary = next(step for step in review["steps"] if "GITHUB_STEP_SUMMARY" in step.get("run", ""))
    assert "python -m jobs.azure.review --stack dev" in summary["run"] and '--version "$VERSION"' in summary["run"]
    assert "set -o pipefail" in summary["run"]  # a refused version fails the job, so promote never starts
    assert promote["needs"] == "review" and promote["environment"] == "prod"


def test_the_promotion_runs_the_cli_in_the_prod_environment_apart_from_prods_pulumi_runs():
    promote = load("promote.yml")["jobs"]["promote"]
    assert promote["concurrency"] == {"group": "pulumi-prod", "cancel-in-progress": False}
    step = next(step for step in promote["steps"] if "python -m jobs promote" in step.get("run", ""))
    assert "--target azure" in step["run"] and "--to prod" in step["run"] and '--version "$VERSION"' in step["run"]
    login = next(i for i, s in enumerate(promote["steps"]) if s.get("uses", "").startswith("azure/login@"))
    assert promote["steps"].index(step) > login


def test_the_promotion_outlasts_the_rollouts_waits():
    from jobs.azure.rollout import DEPLOY_TIMEOUT_S

    promote = load("promote.yml")["jobs"]["promote"]
    step = next(step for step in promote["steps"] if "python -m jobs promote" in step.get("run", ""))
    assert step["timeout-minutes"] * 60 > 3 * DEPLOY_TIMEOUT_S  # create, move traffic, (delete) per rollout
    assert sum(s.get("timeout-minutes", 0) for s in promote["steps"]) < promote["timeout-minutes"] <= 360


@pytest.mark.parametrize(
    ("version", "ok"), [("3", True), ("12", True), ("", False), ("3; rm -rf /", False), ("v3", False)]
)
def test_a_version_that_is_not_a_whole_number_stops_the_run_first(version, ok, tmp_path):
    review = load("promote.yml")["jobs"]["review"]
    assert review["steps"][0]["name"] == "Check the version"
    script = tmp_path / "check.sh"
    script.write_text(review["steps"][0]["run"])
    result = subprocess.run(["bash", "-e", str(script)], env={"VERSION": version}, capture_output=True, text=True)
    assert (result.returncode == 0) is ok
    if not ok:
        assert "is not a whole number" in result.stdout


def test_the_ci_page_says_prods_reviewers_are_a_repository_setting():
    text = (ROOT / "docs" / "ci.md").read_text()
    assert "promote.yml" in text and "required reviewers" in text
    assert "repo:OWNER/REPO:ref:refs/heads/main" in text  # the review job's OIDC subject
