"""The one seam to Azure ML: an MLClient plus the MLflow run lookups AutoML needs.

Tests replace the whole session with a fake (tests/fakes.py); nothing else in jobs/ opens a
connection to Azure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jobs.azure.stack_outputs import StackOutputs
from jobs.errors import JobsError

ARM_SCOPE = "https://management.azure.com/.default"


@dataclass(frozen=True)
class RunDetails:
    tags: dict[str, str]
    metrics: dict[str, float]


class AzureSession:
    def __init__(self, ml: Any, credential: Any) -> None:
        self.ml = ml
        self._credential = credential
        self._tracking_base: str | None = None

    def run_details(self, run_id: str) -> RunDetails:
        """Tags and latest metrics of a run, from the workspace's MLflow tracking API.

        AutoML records its best child (`automl_best_child_run_id`) and the metrics only there.
        """
        import requests

        if self._tracking_base is None:
            workspace = self.ml.workspaces.get(self.ml.workspace_name)
            self._tracking_base = workspace.mlflow_tracking_uri.replace("azureml://", "https://", 1)
        token = self._credential.get_token(ARM_SCOPE).token
        response = requests.get(f"{self._tracking_base}/api/2.0/mlflow/runs/get", params={"run_id": run_id},
                                headers={"Authorization": f"Bearer {token}"}, timeout=60)
        if response.status_code == 404:
            raise JobsError(f"run {run_id} was not found in the workspace's tracking store")
        response.raise_for_status()
        data = response.json()["run"]["data"]
        return RunDetails(
            tags={t["key"]: t["value"] for t in data.get("tags", [])},
            metrics={m["key"]: float(m["value"]) for m in data.get("metrics", [])},
        )


def connect(outputs: StackOutputs) -> AzureSession:
    """MLClient with DefaultAzureCredential; fails fast, in one paragraph, when no credential works.

    Inside an Azure ML job that runs as its submitter (a pipeline step), the on-behalf-of
    credential is the one that works.
    """
    import os

    from azure.ai.ml import MLClient
    from azure.core.exceptions import ClientAuthenticationError
    from azure.identity import CredentialUnavailableError, DefaultAzureCredential

    if os.environ.get("OBO_ENDPOINT"):
        from azure.ai.ml.identity import AzureMLOnBehalfOfCredential

        credential: Any = AzureMLOnBehalfOfCredential()
    else:
        credential = DefaultAzureCredential(exclude_interactive_browser_credential=True)
    try:
        credential.get_token(ARM_SCOPE)
    except (ClientAuthenticationError, CredentialUnavailableError):
        raise JobsError(
            "no Azure credentials: run `az login` (and `az account set --subscription "
            f"{outputs.subscription_id}`), or set AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_FEDERATED_TOKEN_FILE "
            "(CI with OpenID Connect), then run the command again. Nothing was sent to Azure."
        ) from None
    ml = MLClient(credential, outputs.subscription_id, outputs.resource_group, outputs.workspace_name)
    return AzureSession(ml, credential)
