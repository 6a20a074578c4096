"""The seam's own logic: where AutoML's run details are read from, and how; credentials that do not work."""

from __future__ import annotations

import pytest

from jobs.azure import stack_outputs
from jobs.azure.backend import AzureBackend
from jobs.azure.session import CREDENTIAL_VARIABLES, AzureSession, connect
from jobs.azure.stack_outputs import StackOutputs
from jobs.cli import main
from jobs.dataset import DEFAULT_CSV
from jobs.errors import JobsError
from jobs.training import TrainingSettings
from tests.fakes import FakeSession


class Token:
    token = "t0ken"


class Credential:
    def get_token(self, *scopes):
        assert scopes == ("https://management.azure.com/.default",)
        return Token()


class Workspaces:
    def get(self, name):
        assert name == "mlw-dev"
        uri = (
            "azureml://westeurope.api.azureml.ms/mlflow/v1.0/subscriptions/s/resourceGroups/r/providers/"
            "Microsoft.MachineLearningServices/workspaces/mlw-dev"
        )
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
        return Response(
            200,
            {
                "run": {
                    "data": {
                        "tags": [{"key": "automl_best_child_run_id", "value": "job_3"}],
                        "metrics": [{"key": "AUC_weighted", "value": 0.91}],
                    }
                }
            },
        )

    monkeypatch.setattr("requests.get", get)
    details = AzureSession(ML(), Credential()).run_details("job")
    assert seen["url"] == (
        "https://westeurope.api.azureml.ms/mlflow/v1.0/subscriptions/s/resourceGroups/r/providers/"
        "Microsoft.MachineLearningServices/workspaces/mlw-dev/api/2.0/mlflow/runs/get"
    )
    assert seen["params"] == {"run_id": "job"}
    assert seen["headers"] == {"Authorization": "Bearer t0ken"}
    assert details.tags == {"automl_best_child_run_id": "job_3"}
    assert details.metrics == {"AUC_weighted": 0.91}


def test_an_unknown_run_is_a_clear_error(monkeypatch):
    monkeypatch.setattr("requests.get", lambda *a, **k: Response(404, {}))
    with pytest.raises(JobsError, match="run nope was not found"):
        AzureSession(ML(), Credential()).run_details("nope")


# --- building and using the credential: a message that says what to set or run, never a traceback ----

OUTPUTS = StackOutputs(
    subscription_id="00000000-0000-0000-0000-000000000001",
    resource_group="rg",
    workspace_name="mlw",
    compute_name="cpu",
    compute_max_nodes=3,
    endpoint_name="hf-dev-abc123",
)
GUID = "11111111-2222-3333-4444-555555555555"


@pytest.fixture
def clean_environment(monkeypatch):
    for name in (*CREDENTIAL_VARIABLES, "OBO_ENDPOINT", "AZURE_AUTHORITY_HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(stack_outputs.shutil, "which", lambda _: None)
    for var in stack_outputs.ENV.values():
        monkeypatch.delenv(var, raising=False)


@pytest.mark.parametrize(
    ("environ", "fragments"),
    [
        (
            {"AZURE_CLIENT_ID": "", "AZURE_TENANT_ID": "", "AZURE_CLIENT_SECRET": ""},
            ["AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET are set but empty", "unset"],
        ),
        (
            {"AZURE_TENANT_ID": "my tenant", "AZURE_CLIENT_ID": GUID, "AZURE_CLIENT_SECRET": "s3cret"},
            ["AZURE_TENANT_ID 'my tenant' is neither a tenant id", "az account show --query tenantId"],
        ),
        (
            {"AZURE_TENANT_ID": GUID, "AZURE_CLIENT_ID": "heart-failure-ci", "AZURE_CLIENT_SECRET": "s3cret"},
            ["AZURE_CLIENT_ID 'heart-failure-ci' is not an application (client) id"],
        ),
        (
            {"AZURE_TENANT_ID": GUID, "AZURE_CLIENT_ID": GUID, "AZURE_FEDERATED_TOKEN_FILE": "/no/such/token"},
            ["AZURE_FEDERATED_TOKEN_FILE points to /no/such/token, which does not exist"],
        ),
        (
            {"AZURE_TENANT_ID": GUID, "AZURE_CLIENT_ID": GUID, "AZURE_CLIENT_CERTIFICATE_PATH": "/no/cert.pem"},
            ["AZURE_CLIENT_CERTIFICATE_PATH points to /no/cert.pem"],
        ),
        (
            {"AZURE_TENANT_ID": GUID, "AZURE_CLIENT_ID": GUID + "\n", "AZURE_CLIENT_SECRET": "s3cret"},
            ["AZURE_CLIENT_ID has spaces or a line break around the value"],
        ),
        (
            {"AZURE_TENANT_ID": GUID, "AZURE_CLIENT_ID": GUID, "AZURE_FEDERATED_TOKEN_FILE": "{folder}"},
            ["AZURE_FEDERATED_TOKEN_FILE points to", "which is not a file"],
        ),
        (
            {"AZURE_TENANT_ID": GUID, "AZURE_CLIENT_ID": GUID, "AZURE_FEDERATED_TOKEN_FILE": "{empty file}"},
            ["AZURE_FEDERATED_TOKEN_FILE points to", "which is empty"],
        ),
        ({"AZURE_CLIENT_SECRET": "s3cret"}, ["AZURE_CLIENT_SECRET is set without AZURE_TENANT_ID and AZURE_CLIENT_ID"]),
        ({"AZURE_AUTHORITY_HOST": "notaurl"}, ["AZURE_AUTHORITY_HOST 'notaurl' is not an https URL"]),
    ],
    ids=[
        "empty",
        "tenant",
        "client-id",
        "token-file",
        "certificate",
        "line-break",
        "token-folder",
        "empty-token",
        "secret-alone",
        "authority",
    ],
)
def test_credential_variables_set_but_unusable_are_named(
    environ, fragments, clean_environment, monkeypatch, tmp_path, capsys
):
    (tmp_path / "empty-token").write_text("")
    for name, value in environ.items():
        monkeypatch.setenv(
            name, value.replace("{folder}", str(tmp_path)).replace("{empty file}", str(tmp_path / "empty-token"))
        )
    outputs = tmp_path / "outputs.json"
    outputs.write_text(
        '{"subscription_id": "00000000-0000-0000-0000-0000000000aa", "resource_group": "r", "workspace_name": "w"}'
    )
    code = main(["register", "--target", "azure", "--outputs", str(outputs), "--job", "x"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: cannot build Azure credentials: ")
    for fragment in fragments:
        assert fragment in err
    assert "az login" in err and "Traceback" not in err and "s3cret" not in err


@pytest.mark.parametrize(
    ("raised", "fragment"),
    [
        (ValueError("Invalid tenant ID provided. You can locate your tenant ID ..."), "Invalid tenant ID provided"),
        (FileNotFoundError(2, "No such file or directory"), "No such file or directory"),
        ("expired", "the Azure login has expired"),
    ],
)
def test_any_failure_to_get_the_first_token_says_what_to_run(raised, fragment, clean_environment, monkeypatch):
    from azure.core.exceptions import ClientAuthenticationError

    if raised == "expired":
        raised = ClientAuthenticationError(
            "AzureCliCredential: AADSTS700082: The refresh token has expired due to "
            "inactivity. Run az login to set up account."
        )

    class Credential:
        def __init__(self, **kwargs):
            pass

        def get_token(self, *scopes):
            raise raised

    monkeypatch.setattr("azure.identity.DefaultAzureCredential", Credential)
    with pytest.raises(JobsError) as caught:
        connect(OUTPUTS, environ={})
    message = str(caught.value)
    assert message.startswith("could not get an Azure token (") and "): run `az login`" in message
    assert fragment in message
    assert f"az account set --subscription {OUTPUTS.subscription_id}" in message


def test_a_login_that_expires_during_a_long_wait_is_a_message(tmp_path):
    from azure.core.exceptions import ClientAuthenticationError

    session = FakeSession()
    backend = AzureBackend(session, OUTPUTS, "dev", say=lambda _: None, sleep=lambda _: None, state_dir=tmp_path)
    session.ml.failures["jobs.get"] = [
        ClientAuthenticationError("AzureCliCredential: AADSTS700082: The refresh token has expired due to inactivity.")
    ]
    backend.train(TrainingSettings(), DEFAULT_CSV, wait=False)
    with pytest.raises(
        JobsError,
        match=r"reading the job failed: Azure refused the credentials \(the Azure login "
        r"has expired\)\. Run `az login` again",
    ):
        backend.register("automl_job_1", 0.8)


def test_a_403_names_the_role_to_ask_for(tmp_path):
    from azure.core.exceptions import HttpResponseError

    session = FakeSession()
    backend = AzureBackend(session, OUTPUTS, "dev", say=lambda _: None, sleep=lambda _: None, state_dir=tmp_path)
    error = HttpResponseError(message="AuthorizationFailed")
    error.status_code = 403
    session.ml.failures["data.get"] = [error]
    with pytest.raises(JobsError, match=r"answered 403.*AzureML Data Scientist"):
        backend.train(TrainingSettings(), DEFAULT_CSV, wait=False)


def test_a_configured_credential_that_fails_says_why_not_no_login(clean_environment, monkeypatch):
    from azure.core.exceptions import ClientAuthenticationError

    # The shape of DefaultAzureCredential's message (azure-identity 1.x) with a service principal and no network.
    text = (
        "DefaultAzureCredential failed to retrieve a token from the included credentials.\nAttempted credentials:"
        "\n\tEnvironmentCredential: Authentication failed: HTTPSConnection(host='login.microsoftonline.com', "
        "port=443): Failed to resolve 'login.microsoftonline.com'\n\tAzureCliCredential: Azure CLI not found on "
        "path\nTo mitigate this issue, please refer to the troubleshooting guidelines here at "
        "https://aka.ms/azsdk/python/identity/defaultazurecredential/troubleshoot."
    )

    class Credential:
        def __init__(self, **kwargs):
            pass

        def get_token(self, *scopes):
            raise ClientAuthenticationError(text)

    monkeypatch.setattr("azure.identity.DefaultAzureCredential", Credential)
    with pytest.raises(JobsError) as caught:
        connect(OUTPUTS, environ={"AZURE_TENANT_ID": GUID, "AZURE_CLIENT_ID": GUID, "AZURE_CLIENT_SECRET": "x"})
    message = str(caught.value)
    assert "EnvironmentCredential: Authentication failed" in message and "Failed to resolve" in message
    assert "no login found" not in message and "AzureCliCredential" not in message


def test_credentials_nobody_configured_are_no_login_found_whatever_they_say():
    from jobs.azure.session import _reason

    # azure-identity 1.27's message with no login at all: the VS Code and azd credentials say how to
    # install them, which is not what a user of this project should do.
    text = (
        "DefaultAzureCredential failed to retrieve a token from the included credentials.\nAttempted credentials:"
        "\n\tEnvironmentCredential: EnvironmentCredential authentication unavailable. Environment variables are not "
        "fully configured.\n\tVisualStudioCodeCredential: VisualStudioCodeCredential requires the "
        "'azure-identity-broker' package to be installed.\n\tAzureDeveloperCliCredential: Azure Developer CLI could "
        "not be found. Please visit https://aka.ms/azure-dev for installation instructions\n\tAzureCliCredential: "
        "Azure CLI not found on path\n\tManagedIdentityCredential: ManagedIdentityCredential authentication "
        "unavailable, no response from the IMDS endpoint."
    )
    assert _reason(RuntimeError(text)) == "no login found: no az login, no AZURE_* variables, no managed identity"
