"""The seam's own logic: where AutoML's run details are read from, and how."""

from __future__ import annotations

import pytest

from jobs.azure.session import AzureSession
from jobs.errors import JobsError


class Token:
    token = "t0ken"


class Credential:
    def get_token(self, *scopes):
        assert scopes == ("https://management.azure.com/.default",)
        return Token()


class Workspaces:
    def get(self, name):
        assert name == "mlw-dev"
        uri = "azureml://westeurope.api.azureml.ms/mlflow/v1.0/subscriptions/s/resourceGroups/r/providers/" \
              "Microsoft.MachineLearningServices/workspaces/mlw-dev"
        return type("Workspace", (), {"mlflow_tracking_uri": uri})()


class ML:
    workspace_name = "mlw-dev"
    workspaces = Workspaces()


class Response:
    def __init__(self, status, body):
        self.status_code, self._body = status, body

    def json(self):
        return self._body

    def raise_for_status(self):
        if self.status_code >= 400:
            raise RuntimeError(self.status_code)


def test_run_details_read_tags_and_metrics_from_the_workspaces_mlflow_api(monkeypatch):
    seen = {}

    def get(url, params, headers, timeout):
        seen.update(url=url, params=params, headers=headers)
        return Response(200, {"run": {"data": {"tags": [{"key": "automl_best_child_run_id", "value": "job_3"}],
                                               "metrics": [{"key": "AUC_weighted", "value": 0.91}]}}})

    monkeypatch.setattr("requests.get", get)
    details = AzureSession(ML(), Credential()).run_details("job")
    assert seen["url"] == ("https://westeurope.api.azureml.ms/mlflow/v1.0/subscriptions/s/resourceGroups/r/providers/"
                           "Microsoft.MachineLearningServices/workspaces/mlw-dev/api/2.0/mlflow/runs/get")
    assert seen["params"] == {"run_id": "job"}
    assert seen["headers"] == {"Authorization": "Bearer t0ken"}
    assert details.tags == {"automl_best_child_run_id": "job_3"}
    assert details.metrics == {"AUC_weighted": 0.91}


def test_an_unknown_run_is_a_clear_error(monkeypatch):
    monkeypatch.setattr("requests.get", lambda *a, **k: Response(404, {}))
    with pytest.raises(JobsError, match="run nope was not found"):
        AzureSession(ML(), Credential()).run_details("nope")
