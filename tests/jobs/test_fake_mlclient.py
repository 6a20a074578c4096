"""The fake MLClient must not accept a call the real azure-ai-ml would refuse."""

from __future__ import annotations

import inspect

import pytest

from jobs.azure import specs
from jobs.backend import DeployOptions
from jobs.training import TrainingSettings
from tests.fakes import REAL_OPERATIONS, FakeMLClient


def fake_methods():
    ml = FakeMLClient()
    for group in REAL_OPERATIONS:
        operations = getattr(ml, group)
        for name, _ in inspect.getmembers(type(operations), inspect.isfunction):
            if not name.startswith("_"):
                yield group, name


@pytest.mark.parametrize(("group", "name"), list(fake_methods()))
def test_every_fake_operation_exists_on_the_real_client(group, name):
    assert callable(getattr(REAL_OPERATIONS[group], name, None)), f"azure-ai-ml has no {group}.{name}"


@pytest.mark.parametrize(
    ("call", "why"),
    [
        (lambda ml: ml.online_endpoints.invoke("hf-dev-abc123", "request.json"), "request_file is keyword-only"),
        (lambda ml: ml.data.create_or_update(asset=None), "the parameter is `data`"),
        (lambda ml: ml.models.get("m", "1", "latest", "extra"), "three parameters at most"),
        (lambda ml: ml.online_deployments.get_logs("blue", "hf-dev-abc123"), "lines is required"),
        (lambda ml: ml.online_deployments.begin_delete("blue", "hf-dev-abc123", True), "local is keyword-only"),
        (lambda ml: ml.jobs.get(name="j", version="1"), "jobs.get takes a name only"),
    ],
)
def test_a_form_the_real_signature_refuses_is_refused(call, why):
    with pytest.raises(TypeError):
        call(FakeMLClient())


def test_the_sdks_submit_time_conversion_runs(tmp_path):
    from azure.ai.ml.exceptions import ValidationException

    ml = FakeMLClient()
    # JobOperations.create_or_update validates a pipeline before sending it: one without compute fails.
    job = specs.pipeline_job(TrainingSettings(), "azureml:d:1", "cpu", 0.8, {})
    job.settings.default_compute = None
    with pytest.raises(ValidationException):
        ml.jobs.create_or_update(job)
    assert ml.submitted == {}
    # The endpoint's own name rules (3 to 32 characters) are checked on update, as the SDK does.

    ml.endpoints["hf"] = ml.endpoints.pop("hf-dev-abc123")
    ml.endpoints["hf"].name = "hf"
    with pytest.raises(ValidationException, match="at least 3"):
        ml.online_endpoints.begin_create_or_update(ml.online_endpoints.get("hf"))
    # A deployment's scoring script must exist where code_configuration says.
    env = specs.environment(specs.scoring_conda())
    deployment = specs.deployment("blue", "hf", "azureml:heart-failure-automl:1", env, DeployOptions())
    from azure.ai.ml.entities import CodeConfiguration

    deployment.code_configuration = CodeConfiguration(code=str(specs.SCORING_DIR), scoring_script="missing.py")
    with pytest.raises(Exception, match=r"missing\.py"):
        ml.online_deployments.begin_create_or_update(deployment)


def test_traffic_to_a_deployment_that_does_not_exist_is_refused():
    from azure.core.exceptions import HttpResponseError

    ml = FakeMLClient()
    endpoint = ml.online_endpoints.get("hf-dev-abc123")
    endpoint.traffic = {"green": 100}
    with pytest.raises(HttpResponseError):
        ml.online_endpoints.begin_create_or_update(endpoint)
