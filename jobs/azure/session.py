"""The one seam to Azure ML: an MLClient plus the MLflow run lookups AutoML needs.

Tests replace the whole session with a fake (tests/fakes.py); nothing else in jobs/ opens a
connection to Azure.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobs.azure.stack_outputs import StackOutputs
from jobs.errors import JobsError, first_line

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

    def workspace_client(self, outputs: StackOutputs) -> Any:
        """An MLClient on another stack's workspace (prod, for a promotion), with this session's credential."""
        from azure.ai.ml import MLClient

        return MLClient(self._credential, outputs.subscription_id, outputs.resource_group, outputs.workspace_name)

    def registry_client(self, registry_name: str) -> Any:
        """An MLClient on an Azure ML registry, with this session's credential. azure-ai-ml finds the registry's
        subscription, resource group and region through its discovery service (1.35.2 _ml_client.py: "the
        subscription, resource group, if provided, will be ignored and replaced by whatever is received from the
        registry discovery service"); the docs build it as MLClient(credential, registry_name=...)."""
        from azure.ai.ml import MLClient

        return MLClient(self._credential, registry_name=registry_name)

    def run_details(self, run_id: str) -> RunDetails:
        """Tags and latest metrics of a run, from the workspace's MLflow tracking API.

        AutoML records its best child (`automl_best_child_run_id`) and the metrics only there.
        """
        import requests

        if self._tracking_base is None:
            workspace = self.ml.workspaces.get(self.ml.workspace_name)
            self._tracking_base = workspace.mlflow_tracking_uri.replace("azureml://", "https://", 1)
        token = self._credential.get_token(ARM_SCOPE).token
        response = requests.get(
            f"{self._tracking_base}/api/2.0/mlflow/runs/get",
            params={"run_id": run_id},
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
        if response.status_code == 404:
            raise JobsError(f"run {run_id} was not found in the workspace's tracking store")
        response.raise_for_status()
        data = response.json()["run"]["data"]
        return RunDetails(
            tags={t["key"]: t["value"] for t in data.get("tags", [])},
            metrics={m["key"]: float(m["value"]) for m in data.get("metrics", [])},
        )


# The variables azure-identity's EnvironmentCredential and WorkloadIdentityCredential read
# (learn.microsoft.com/python/api/azure-identity/azure.identity.environmentcredential).
CREDENTIAL_VARIABLES = (
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_CLIENT_CERTIFICATE_PASSWORD",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_USERNAME",
    "AZURE_PASSWORD",
)
# A tenant is a GUID or a domain name (contoso.onmicrosoft.com); azure-identity refuses anything else.
_TENANT = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$|^[A-Za-z0-9.-]+$")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_HOW = (
    "run `az login` (and `az account set --subscription {subscription}`), or set AZURE_TENANT_ID, "
    "AZURE_CLIENT_ID and AZURE_FEDERATED_TOKEN_FILE (CI with OpenID Connect) or AZURE_CLIENT_SECRET"
)


def environment_problems(environ: Mapping[str, str]) -> list[str]:
    """What is wrong with the AZURE_* credential variables that are set; [] when nothing visible is.

    Checked before azure-identity reads them, because it reports these cases as a bare
    ValueError or FileNotFoundError (or skips to the next credential without saying why).
    Values are never echoed for the secret ones.
    """
    problems = []
    empty = [name for name in CREDENTIAL_VARIABLES if name in environ and not environ[name].strip()]
    if empty:
        problems.append(
            f"{', '.join(empty)} {'is' if len(empty) == 1 else 'are'} set but empty; set a value or "
            f"unset {'it' if len(empty) == 1 else 'them'} (`unset {' '.join(empty)}`)"
        )
    tenant = environ.get("AZURE_TENANT_ID", "").strip()
    if tenant and not _TENANT.match(tenant):
        problems.append(
            f"AZURE_TENANT_ID {tenant!r} is neither a tenant id (a GUID) nor a domain name; "
            "`az account show --query tenantId -o tsv` prints yours"
        )
    client = environ.get("AZURE_CLIENT_ID", "").strip()
    if client and not _GUID.match(client):
        problems.append(
            f"AZURE_CLIENT_ID {client!r} is not an application (client) id, which is a GUID; "
            "`az ad app list --display-name NAME --query [].appId -o tsv` prints it"
        )
    padded = [
        name
        for name in ("AZURE_TENANT_ID", "AZURE_CLIENT_ID")
        if environ.get(name, "").strip() and environ[name] != environ[name].strip()
    ]
    if padded:
        problems.append(
            f"{', '.join(padded)} {'has' if len(padded) == 1 else 'have'} spaces or a line break around "
            "the value, which azure-identity sends as it is; set it without them"
        )
    for name in ("AZURE_FEDERATED_TOKEN_FILE", "AZURE_CLIENT_CERTIFICATE_PATH"):
        path = environ.get(name, "").strip()
        if not path:
            continue
        if not Path(path).exists():
            problems.append(f"{name} points to {path}, which does not exist")
        elif not Path(path).is_file():
            problems.append(f"{name} points to {path}, which is not a file")
        elif Path(path).stat().st_size == 0:
            problems.append(f"{name} points to {path}, which is empty")
    # EnvironmentCredential / WorkloadIdentityCredential need the tenant and the client beside a
    # secret, certificate or token file (azure-identity's EnvironmentCredential docstring).
    kinds = [
        name
        for name in ("AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_FEDERATED_TOKEN_FILE")
        if environ.get(name, "").strip()
    ]
    lacking = [name for name in ("AZURE_TENANT_ID", "AZURE_CLIENT_ID") if not environ.get(name, "").strip()]
    if kinds and lacking:
        problems.append(
            f"{kinds[0]} is set without {' and '.join(lacking)}; a service principal or OpenID Connect "
            "login needs AZURE_TENANT_ID and AZURE_CLIENT_ID beside it"
        )
    authority = environ.get("AZURE_AUTHORITY_HOST", "").strip()
    if authority and not re.match(r"^https://[A-Za-z0-9.-]+(:\d+)?/?$", authority):
        problems.append(
            f"AZURE_AUTHORITY_HOST {authority!r} is not an https URL of a login host, e.g. "
            "https://login.microsoftonline.com; unset it for the public cloud"
        )
    return problems


def connect(outputs: StackOutputs, environ: Mapping[str, str] | None = None) -> AzureSession:
    """MLClient with DefaultAzureCredential; fails fast, in one paragraph, when no credential works.

    Every way of failing to build or use a credential (variables set but empty or malformed, no
    `az login`, an expired login) ends in a JobsError that names what to set or run; nothing is
    sent to Azure ML before a token was obtained. Inside an Azure ML job that runs as its
    submitter (a pipeline step), the on-behalf-of credential is the one that works.
    """
    from azure.ai.ml import MLClient
    from azure.core.exceptions import ClientAuthenticationError
    from azure.identity import CredentialUnavailableError, DefaultAzureCredential

    environ = os.environ if environ is None else environ
    how = _HOW.format(subscription=outputs.subscription_id)
    # Inside a pipeline step the on-behalf-of credential is used, which reads none of these.
    problems = [] if environ.get("OBO_ENDPOINT") else environment_problems(environ)
    if problems:
        raise JobsError(
            "cannot build Azure credentials: " + "; ".join(problems) + f". Or {how}. Nothing was sent to Azure."
        )
    # azure-identity logs every credential it tried as a warning; the message below says what to do.
    identity_log = logging.getLogger("azure.identity")
    level = identity_log.level
    identity_log.setLevel(logging.CRITICAL)
    try:
        if environ.get("OBO_ENDPOINT"):
            from azure.ai.ml.identity import AzureMLOnBehalfOfCredential

            credential: Any = AzureMLOnBehalfOfCredential()
        else:
            credential = DefaultAzureCredential(exclude_interactive_browser_credential=True)
        credential.get_token(ARM_SCOPE)
    except (ClientAuthenticationError, CredentialUnavailableError, ValueError, OSError) as error:
        raise JobsError(
            f"could not get an Azure token ({_reason(error)}): {how}, then run the command again. "
            "Nothing was sent to Azure ML."
        ) from None
    finally:
        identity_log.setLevel(level)
    ml = MLClient(credential, outputs.subscription_id, outputs.resource_group, outputs.workspace_name)
    return AzureSession(ml, credential)


def _reason(error: BaseException) -> str:
    """One line about why a credential failed: an expired login says so, the rest in short."""
    text = str(getattr(error, "message", None) or error)
    if "AADSTS700082" in text or "AADSTS50173" in text or "expired" in text.lower():
        return "the Azure login has expired"
    if "DefaultAzureCredential failed to retrieve a token" in text:
        # Its message lists each credential it tried, one per line ("\tEnvironmentCredential: ...").
        # Only the ways of logging in that this project documents (az login, AZURE_* variables, OpenID
        # Connect, a managed identity) are reported, and of those only the ones configured here that failed:
        # the others (VS Code, azd, PowerShell, a broker) say only that they are not set up, in wording
        # that changes between azure-identity releases.
        documented = (
            "EnvironmentCredential",
            "WorkloadIdentityCredential",
            "ManagedIdentityCredential",
            "AzureCliCredential",
        )
        attempts = [line.strip() for line in text.splitlines() if re.match(r"^\s+(\w+Credential): ", line)]
        # azure-identity's own wording for "not set up here" (its _credentials modules, 1.x).
        not_set_up = (
            "unavailable",
            "not found on path",
            "could not be found",
            "to be installed",
            "not installed",
            "please run 'az login'",
            "please run 'azd auth login'",
        )
        failed = [
            line
            for line in attempts
            if line.split(":", 1)[0] in documented and not any(phrase in line.lower() for phrase in not_set_up)
        ]
        if failed:
            return "; ".join(line[:240] for line in failed[:3])
        return "no login found: no az login, no AZURE_* variables, no managed identity"
    return first_line(error, limit=200)


def authentication_error(error: BaseException, what: str) -> JobsError | None:
    """The message for an authentication or authorization failure of an Azure ML call; None for others.

    ClientAuthenticationError comes from azure-identity when a token cannot be had (the login
    expired during a long wait, for one); 401 and 403 come back from Azure ML itself.
    """
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

    if isinstance(error, ClientAuthenticationError):
        return JobsError(
            f"{what} failed: Azure refused the credentials ({_reason(error)}). Run `az login` "
            "again (in CI: check the federated credential and AZURE_CLIENT_ID), then run the command "
            "again."
        )
    status = getattr(error, "status_code", None) if isinstance(error, HttpResponseError) else None
    if status == 401:
        return JobsError(
            f"{what} failed: Azure ML answered 401 (not authenticated). Run `az login` again, then run "
            "the command again."
        )
    if status == 403:
        return JobsError(
            f"{what} failed: Azure ML answered 403: your identity has no role that allows it on the "
            "workspace. Ask for `AzureML Data Scientist` on it (`az role assignment create --role "
            '"AzureML Data Scientist" --assignee <you> --scope <workspace id>`).'
        )
    return None
