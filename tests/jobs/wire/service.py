"""A small Azure ML service for the real SDK: ARM resources, their long-running operations, blob storage,
the MLflow tracking API and the scoring URI, answering as Azure does.

Each answer's shape (status code, headers, body fields) follows a recording in Azure/azure-sdk-assets,
python/sdk/ml/azure-ai-ml/tests/recordings/ (named REC_* below and beside each answer), or, where no
recording has the case, the REST spec or ARM's own contract (named likewise). Values (names, ids) are this
project's. Nothing here opens a socket: `handle` gets what requests would have sent.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape

# The recordings the answers follow (Azure/azure-sdk-assets, python/sdk/ml/azure-ai-ml/tests/recordings/).
REC_DEPLOYMENT = (
    "online_services/e2etests/test_online_deployment.pyTestOnlineDeploymenttest_online_deployment_create.json"
)
REC_AUTOML = "automl_job/e2etests/test_remote_classification.pyTestAutoMLClassificationtest_classification.json"
REC_SCHEDULE = "schedule/e2etests/test_schedule.pyTestScheduletest_load_recurrence_schedule_with_pattern.json"
# begin_disable/begin_enable: a PUT of the schedule with isEnabled false (true), 201 Creating, polled to Succeeded;
# the next GET says isEnabled false.
REC_LIFETIME = "schedule/e2etests/test_schedule.pyTestScheduletest_schedule_lifetime.json"
# ARM's error body (ErrorResponse) and async-operation contract, where no recording has the case:
# Azure/azure-rest-api-specs specification/common-types/resource-management/v5/types.json (ErrorResponse),
# Azure/azure-resource-manager-rpc v1.0/async-api-reference.md (Azure-AsyncOperation, Retry-After, 409).
SPEC_ERROR = "azure-rest-api-specs common-types v5 types.json ErrorResponse"
SPEC_ASYNC = "azure-resource-manager-rpc v1.0/async-api-reference.md"

SUBSCRIPTION = "00000000-0000-0000-0000-000000000001"
RESOURCE_GROUP = "rg-hf-dev"
WORKSPACE = "mlw-hf-dev"
LOCATION = "westeurope"
WORKSPACE_ID = "5881e5dc-6e3e-408e-b99e-754026b4a07b"
STORAGE_ACCOUNT = "sthfdev"
BLOB_CONTAINER = f"azureml-blobstore-{WORKSPACE_ID}"
# workspaceartifactstore: where job outputs live (container `azureml`, paths ExperimentRun/dcid.<run>/...;
# azure-ai-ml 1.35.2 operations/_job_operations.py builds the same path for job downloads).
ARTIFACT_CONTAINER = "azureml"
ENDPOINT_KEY = "endpoint-primary-key-not-a-secret"
ARM = "management.azure.com"
PROVIDER = "Microsoft.MachineLearningServices"
WS_PATH = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/{PROVIDER}/workspaces/{WORKSPACE}"
TRACKING_HOST = f"{LOCATION}.api.azureml.ms"
# The shared registry (docs/environments.md): its discovery answer and its temporary data reference follow
# model/e2etests/test_model.pyTestModeltest_promote_model.json (GET .../registrymanagement/v1.0/registries/<name>/
# discovery, 200) and ...test_create_get_download_model_registry.json (PUT .../registries/<name>/tempdatarefs/...,
# 200 blobReferenceForConsumption); its MFE host is the one azure-ai-ml 1.35.2 derives for a workspace in the
# registry's region (_utils/_registry_utils.py RegistryDiscovery: https://cert-<region>.experiments.azureml.net/).
REC_PROMOTE = "model/e2etests/test_model.pyTestModeltest_promote_model.json"
REC_REGISTRY_MODEL = "model/e2etests/test_model.pyTestModeltest_create_get_download_model_registry.json"
REGISTRY = "mlr-hf-shared-abc123"
REGISTRY_RG = "rg-hf-shared"
REGISTRY_HOST = f"cert-{LOCATION}.experiments.azureml.net"
REGISTRY_STORAGE = "sthfregistry"
REGISTRY_PATH = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{REGISTRY_RG}/providers/{PROVIDER}/registries/{REGISTRY}"


@dataclass
class Request:
    method: str
    url: str
    host: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Answer:
    status: int
    body: Any = None  # dict/list -> JSON, bytes/str -> as is, None -> empty
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> tuple[int, dict[str, str], bytes]:
        headers = {"Date": formatdate(usegmt=True), **self.headers}
        if isinstance(self.body, (dict, list)):
            data = json.dumps(self.body).encode()
            headers.setdefault("Content-Type", "application/json; charset=utf-8")
        elif isinstance(self.body, str):
            data = self.body.encode()
        else:
            data = self.body or b""
        headers["Content-Length"] = str(len(data))
        return self.status, headers, data


@dataclass
class Fault:
    """A scripted answer for the next `times` requests matching method and path (a regex, searched)."""

    method: str
    path: str
    answer: Answer
    times: int = 1


def arm_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Answer:
    """ARM's error body, as the recordings carry it: error.code, error.message, details, additionalInfo.

    Shape: the listSecrets 400 in REC_DEPLOYMENT ({"error": {"code": "UserError", "message": "No secrets
    for credentials of type None.", "details": [], "additionalInfo": [...]}}); SPEC_ERROR.
    """
    body = {
        "error": {
            "code": code,
            "message": message,
            "details": [],
            "additionalInfo": [{"type": "ComponentName", "info": {"value": "managementfrontend"}}],
        }
    }
    return Answer(status, body, {"x-ms-response-type": "error", **(headers or {})})


def conflict(message: str) -> Answer:
    """409 Conflict: ARM's answer to a write while the resource has an operation running (SPEC_ASYNC:
    "the resource provider should return 409 Conflict"), in the ErrorResponse shape."""
    return arm_error(409, "Conflict", message)


def throttled(retry_after_s: int) -> Answer:
    """429 with Retry-After: ARM's throttling answer (learn.microsoft.com azure-resource-manager
    request-limits-and-throttling: "you receive an HTTP status code 429 ... with a Retry-After value");
    the error code is the one that page names, TooManyRequests."""
    return arm_error(
        429,
        "TooManyRequests",
        "The request is being throttled as the limit has been reached for operation type - Write.",
        {"Retry-After": str(retry_after_s)},
    )


def _system_data() -> dict[str, str]:
    # REC_DEPLOYMENT's systemData: createdAt, createdBy, lastModifiedAt (the SDK formats lastModifiedAt).
    return {
        "createdAt": "2026-11-29T10:35:40.9422688+00:00",
        "createdBy": "Sanitized",
        "createdByType": "User",
        "lastModifiedAt": "2026-11-29T10:35:40.9422688+00:00",
    }


class FakeAzureML:
    """The workspace's resources as stored JSON, keyed by lower-cased ARM path.

    Knobs for tests: `faults` (scripted errors), `operation_statuses` (what the next long-running
    operation reports before its end), `job_statuses[name]` (what successive GETs of a job say),
    `runs` (MLflow run tags and metrics), `scoring_answer`, `deployment_logs`.
    """

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.resources: dict[str, dict[str, Any]] = {}
        self.blobs: dict[tuple[str, str], tuple[bytes, dict[str, str]]] = {}
        self.faults: list[Fault] = []
        # REC_DEPLOYMENT: the deployment's and the endpoint's operations report "Updating" until "Succeeded".
        self.operation_statuses: list[str] = ["Updating", "Succeeded"]
        self.operation_error: dict[str, Any] | None = None
        self.operations: dict[str, dict[str, Any]] = {}
        self.job_statuses: dict[str, list[str]] = {}
        self.children: dict[str, list[dict[str, Any]]] = {}
        self.runs: dict[str, dict[str, Any]] = {}
        # score.py's answer to the lesson's one-record sample (scoring/sample-request.json).
        self.scoring_answer: Answer = Answer(
            200,
            {"result": [False], "probability": [0.1], "threshold": 0.3, "outside_training_range": [[]]},
            {"Content-Type": "application/json"},
        )
        self.deployment_logs = "2026-11-29 INFO azmlinfsrv started\n"
        self.unrouted: list[str] = []
        # The shared registry's versions by (kind, name, version), and whether an import copies the source's tags.
        self.registry: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.import_keeps_tags = True
        self._routes: list[tuple[str, re.Pattern[str], Callable[..., Answer]]] = []
        self._route()

    # -- what tests read ------------------------------------------------------------------

    def calls(self, method: str, pattern: str) -> list[Request]:
        return [r for r in self.requests if r.method == method and re.search(pattern, r.path, re.IGNORECASE)]

    def resource(self, relative: str) -> dict[str, Any] | None:
        return self.resources.get((WS_PATH + relative).lower())

    def fail(self, method: str, path: str, answer: Answer, times: int = 1) -> None:
        self.faults.append(Fault(method, path, answer, times))

    def add_endpoint(self, name: str, traffic: dict[str, int] | None = None) -> None:
        """The stack's endpoint as Pulumi created it (infra/builders/endpoint.py): key auth, no deployments.

        Shape: the endpoint GET after creation in REC_DEPLOYMENT.
        """
        path = f"{WS_PATH}/onlineEndpoints/{name}"
        self.resources[path.lower()] = {
            "id": path,
            "name": name,
            "type": f"{PROVIDER}/workspaces/onlineEndpoints",
            "properties": {
                "description": None,
                "properties": {"azureml.onlineendpointid": path.lower()},
                "scoringUri": f"https://{name}.{LOCATION}.inference.ml.azure.com/score",
                "swaggerUri": f"https://{name}.{LOCATION}.inference.ml.azure.com/swagger.json",
                "authMode": "Key",
                "provisioningState": "Succeeded",
                "compute": None,
                "traffic": dict(traffic or {}),
                "mirrorTraffic": {},
                "publicNetworkAccess": "Enabled",
            },
            "systemData": _system_data(),
            "tags": {},
            "location": LOCATION,
            "kind": "Managed",
            "identity": {"type": "SystemAssigned", "principalId": str(uuid.uuid4()), "tenantId": str(uuid.uuid4())},
        }

    def add_artifact(self, path: str, data: bytes) -> None:
        """A file a job wrote to its outputs (workspaceartifactstore)."""
        self.blobs[(ARTIFACT_CONTAINER, path)] = (data, {})

    # -- the wire -------------------------------------------------------------------------

    def handle(self, request: Request) -> Answer:
        self.requests.append(request)
        for fault in self.faults:
            if fault.times > 0 and fault.method == request.method and re.search(fault.path, request.path, re.I):
                fault.times -= 1
                return copy.deepcopy(fault.answer)
        for method, pattern, handler in self._routes:
            match = pattern.fullmatch(f"{request.host}{request.path}")
            if method == request.method and match:
                return handler(request, *match.groups())
        # An unrouted call is a call these tests do not know of: recorded (the fixture fails the test), and
        # answered in ARM's shape.
        self.unrouted.append(f"{request.method} {request.url}")
        return arm_error(404, "NoRoute", f"the fake Azure ML has no answer for {request.method} {request.url}")

    def _route(self) -> None:
        ws = (
            re.escape(ARM)
            + r"/subscriptions/[^/]+/resource[gG]roups/[^/]+/providers/"
            + PROVIDER
            + r"/workspaces/[^/]+"
        )
        blob = re.escape(f"{STORAGE_ACCOUNT}.blob.core.windows.net")
        add = self._routes.append
        add(("GET", re.compile(ws), self._workspace))
        add(("GET", re.compile(ws + r"/datastores/([^/]+)"), self._datastore))
        add(("POST", re.compile(ws + r"/datastores/([^/]+)/listSecrets"), self._list_secrets))
        for kind in ("data", "models", "environments", "codes"):
            add(("GET", re.compile(ws + rf"/({kind})/([^/]+)/versions/([^/]+)"), self._get_version))
            add(("PUT", re.compile(ws + rf"/({kind})/([^/]+)/versions/([^/]+)"), self._put_version))
            add(("GET", re.compile(ws + rf"/({kind})/([^/]+)/versions"), self._list_versions))
            add(("GET", re.compile(ws + rf"/({kind})/([^/]+)"), self._get_container))
        add(("POST", re.compile(ws + r"/codes/([^/]+)/versions/([^/]+)/startPendingUpload"), self._pending_upload))
        add(("PUT", re.compile(ws + r"/jobs/([^/]+)"), self._put_job))
        add(("GET", re.compile(ws + r"/jobs/([^/]+)"), self._get_job))
        add(("GET", re.compile(ws + r"/onlineEndpoints/([^/]+)"), self._get_plain))
        add(("PUT", re.compile(ws + r"/onlineEndpoints/([^/]+)"), self._put_endpoint))
        add(("POST", re.compile(ws + r"/onlineEndpoints/([^/]+)/listKeys"), self._list_keys))
        add(("GET", re.compile(ws + r"/onlineEndpoints/([^/]+)/deployments"), self._list_deployments))
        add(("GET", re.compile(ws + r"/onlineEndpoints/([^/]+)/deployments/([^/]+)"), self._get_plain))
        add(("PUT", re.compile(ws + r"/onlineEndpoints/([^/]+)/deployments/([^/]+)"), self._put_deployment))
        add(("DELETE", re.compile(ws + r"/onlineEndpoints/([^/]+)/deployments/([^/]+)"), self._delete_deployment))
        add(("POST", re.compile(ws + r"/onlineEndpoints/([^/]+)/deployments/([^/]+)/getLogs"), self._logs))
        add(("GET", re.compile(ws + r"/schedules/([^/]+)"), self._get_plain))
        add(("PUT", re.compile(ws + r"/schedules/([^/]+)"), self._put_schedule))
        ops = re.escape(ARM) + rf"/subscriptions/[^/]+/providers/{PROVIDER}/locations/[^/]+"
        add(("GET", re.compile(ops + r"/mfeOperationsStatus/([^/]+)"), self._operation_status))
        add(("GET", re.compile(ops + r"/mfeOperationResults/([^/]+)"), self._operation_result))
        add(("HEAD", re.compile(blob + r"/([^/]+)/(.+)"), self._blob_head))
        add(("GET", re.compile(blob + r"/([^/]+)/(.+)"), self._blob_get))
        add(("PUT", re.compile(blob + r"/([^/]+)/(.+)"), self._blob_put))
        add(("GET", re.compile(blob + r"/([^/]+)"), self._blob_list))
        add(("GET", re.compile(re.escape(TRACKING_HOST) + "/discovery"), self._discovery))
        add(("GET", re.compile(r"[^.]+\.api\.azureml\.ms/registrymanagement/v1\.0/registries/([^/]+)/discovery"),
             self._registry_discovery))  # fmt: skip
        reg = (
            re.escape(REGISTRY_HOST)
            + r"/mferp/managementfrontend/subscriptions/[^/]+/resource[gG]roups/[^/]+/providers/"
            + PROVIDER
            + r"/registries/([^/]+)"
        )
        add(("GET", re.compile(reg + r"/(models|environments)/([^/]+)/versions/([^/]+)"), self._registry_get))
        add(("PUT", re.compile(reg + r"/(models|environments)/([^/]+)/versions/([^/]+)"), self._registry_put))
        add(("GET", re.compile(reg + r"/(models|environments)/([^/]+)/versions"), self._registry_list))
        add(("PUT", re.compile(reg + r"/tempdatarefs/([^/]+)/versions/([^/]+)"), self._registry_tempdataref))
        add(("POST", re.compile(reg + r"/import"), self._registry_import))
        add(("GET", re.compile(reg + r"/operationResults/([^/]+)"), self._registry_operation))
        add(("GET", re.compile(re.escape(TRACKING_HOST) + r"/history/v1\.0/.*/runs/([^/]+)/children"), self._children))
        add(("GET", re.compile(re.escape(TRACKING_HOST) + r"/mlflow/v1\.0/.*/api/2\.0/mlflow/runs/get"), self._run))
        add(
            ("POST", re.compile(r"([^.]+)\." + re.escape(f"{LOCATION}.inference.ml.azure.com") + "/score"), self._score)
        )

    # -- workspace and datastores ---------------------------------------------------------

    def _workspace(self, request: Request) -> Answer:
        # REC_DEPLOYMENT, first entry (GET workspace, 200): only the fields the SDK reads are kept.
        return Answer(
            200,
            {
                "id": WS_PATH,
                "name": WORKSPACE,
                "type": f"{PROVIDER}/workspaces",
                "location": LOCATION,
                "tags": {},
                "properties": {
                    "friendlyName": WORKSPACE,
                    "storageAccount": f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/"
                    f"Microsoft.Storage/storageAccounts/{STORAGE_ACCOUNT}",
                    "provisioningState": "Succeeded",
                    "workspaceId": WORKSPACE_ID,
                    "publicNetworkAccess": "Enabled",
                    "discoveryUrl": f"https://{LOCATION}.api.azureml.ms/discovery",
                    "mlFlowTrackingUri": f"azureml://{TRACKING_HOST}/mlflow/v1.0{WS_PATH}",
                    "systemDatastoresAuthMode": "identity",
                },
                "identity": {"type": "SystemAssigned"},
                "kind": "Default",
                "sku": {"name": "Basic", "tier": "Basic"},
                "systemData": _system_data(),
            },
        )

    def _datastore(self, request: Request, name: str) -> Answer:
        if name not in ("workspaceblobstore", "workspaceartifactstore"):
            return arm_error(404, "UserError", f"Datastore {name} not found")  # SPEC_ERROR
        # REC_DEPLOYMENT: GET datastores/workspaceblobstore, 200, an identity-based ("credentialsType":
        # "None") blob datastore, as a workspace with systemDatastoresAuthMode identity has.
        container = BLOB_CONTAINER if name == "workspaceblobstore" else ARTIFACT_CONTAINER
        return Answer(
            200,
            {
                "id": f"{WS_PATH}/datastores/{name}",
                "name": name,
                "type": f"{PROVIDER}/workspaces/datastores",
                "properties": {
                    "description": None,
                    "tags": None,
                    "properties": None,
                    "isDefault": name == "workspaceblobstore",
                    "credentials": {"credentialsType": "None"},
                    "subscriptionId": SUBSCRIPTION,
                    "resourceGroup": RESOURCE_GROUP,
                    "datastoreType": "AzureBlob",
                    "accountName": STORAGE_ACCOUNT,
                    "containerName": container,
                    "endpoint": "core.windows.net",
                    "protocol": "https",
                    "serviceDataAccessAuthIdentity": "WorkspaceSystemAssignedIdentity",
                },
                "systemData": _system_data(),
            },
        )

    def _list_secrets(self, request: Request, name: str) -> Answer:
        # REC_DEPLOYMENT: POST .../listSecrets on an identity-based datastore is a 400 UserError, and the SDK
        # goes on with the caller's own token for the blobs.
        return arm_error(400, "UserError", "No secrets for credentials of type None.")

    # -- versioned assets (data, models, environments, code) -------------------------------

    def _version_path(self, kind: str, name: str, version: str) -> str:
        return f"{WS_PATH}/{kind}/{name}/versions/{version}"

    def _get_version(self, request: Request, kind: str, name: str, version: str) -> Answer:
        found = self.resources.get(self._version_path(kind, name, version).lower())
        if found is None:
            # SPEC_ERROR shape; the wording is illustrative (no recording of a missing version).
            return arm_error(404, "UserError", f"Could not find asset with ID: {kind}/{name}/versions/{version}")
        return Answer(200, found)

    def _put_version(self, request: Request, kind: str, name: str, version: str) -> Answer:
        # REC_DEPLOYMENT (PUT models/.../versions/1 and environments/.../versions/<hash>; 200, or 201 when new):
        # the body echoes the properties sent, plus provisioningState and the service's defaults.
        path = self._version_path(kind, name, version)
        existed = path.lower() in self.resources
        properties = dict((request.json() or {}).get("properties", {}))
        properties.setdefault("tags", {})
        properties.setdefault("properties", {})
        properties.update(provisioningState="Succeeded", isArchived=False)
        if kind == "models":
            properties["modelUri"] = _stored_model_uri(properties.get("modelUri", ""))
            # REC_DEPLOYMENT's model body always carries flavors (`{}` when none), jobName, autoDeleteSetting.
            properties.setdefault("flavors", {})
            properties.setdefault("jobName", None)
            properties.setdefault("stage", "Logged")
        if kind == "environments":
            properties.update(environmentType="UserCreated", osType="Linux", autoRebuild="Disabled", stage="Logged")
        body = {
            "id": path,
            "name": version,
            "type": f"{PROVIDER}/workspaces/{kind}/versions",
            "properties": properties,
            "systemData": {**_system_data(), "createdAt": f"2026-11-29T10:{len(self.resources):02d}:00+00:00"},
        }
        self.resources[path.lower()] = body
        container = f"{WS_PATH}/{kind}/{name}".lower()
        latest = self.resources.setdefault(container, {"id": f"{WS_PATH}/{kind}/{name}", "name": name})
        latest.update(
            type=f"{PROVIDER}/workspaces/{kind}",
            properties={"latestVersion": version, "nextVersion": _next(version), "isArchived": False},
        )
        return Answer(200 if existed else 201, body, {} if existed else {"Location": f"https://{ARM}{path}"})

    def _list_versions(self, request: Request, kind: str, name: str) -> Answer:
        prefix = f"{WS_PATH}/{kind}/{name}/versions/".lower()
        found = [v for k, v in self.resources.items() if k.startswith(prefix)]
        found.sort(key=lambda v: v["systemData"]["createdAt"], reverse="desc" in request.query.get("$orderBy", ""))
        if kind == "codes" and "hash" in request.query:
            found = [
                v for v in found if v["properties"].get("properties", {}).get("hash_sha256") == request.query["hash"]
            ]
        if "$top" in request.query:
            found = found[: int(request.query["$top"])]
        # REC_DEPLOYMENT: GET models/<name>/versions?$orderBy=createdtime desc&$top=1 on a new name is a 200
        # with {"value": []}, not a 404.
        return Answer(200, {"value": found})

    def _get_container(self, request: Request, kind: str, name: str) -> Answer:
        found = self.resources.get(f"{WS_PATH}/{kind}/{name}".lower())
        if found is None:
            return arm_error(404, "UserError", f"Could not find asset with ID: {kind}/{name}")  # SPEC_ERROR
        return Answer(200, found)

    def _pending_upload(self, request: Request, name: str, version: str) -> Answer:
        # azure-rest-api-specs CodeVersions_CreateOrGetStartPendingUpload (PendingUploadResponseDto): a container
        # SAS for a per-upload container `<workspaceId>-<random>`, as REC_SCHEDULE's code uploads go to
        # (`.../9c1f69b7-...-ym7puyc5sbr3mjk143qlp0trhr/...?...&sr=c&...`) and REC_DEPLOYMENT's codeUri names.
        container = f"{WORKSPACE_ID}-{uuid.uuid5(uuid.NAMESPACE_URL, name).hex[:26]}"
        blob_uri = f"https://{STORAGE_ACCOUNT}.blob.core.windows.net/{container}"
        return Answer(
            200,
            {
                "blobReferenceForConsumption": {
                    "blobUri": blob_uri,
                    "storageAccountArmId": None,
                    "credential": {
                        "credentialType": "SAS",
                        "sasUri": f"{blob_uri}?sv=2021-10-04&sr=c&sp=rcwl&sig=0000",
                    },
                },
                "pendingUploadId": str(uuid.uuid4()),
                "pendingUploadType": "TemporaryBlobReference",
            },
        )

    # -- jobs -----------------------------------------------------------------------------

    def _put_job(self, request: Request, name: str) -> Answer:
        # REC_AUTOML: PUT jobs/<name>, 201, status NotStarted, services.Studio.endpoint the studio link.
        path = f"{WS_PATH}/jobs/{name}"
        properties = dict(request.json()["properties"])
        properties.setdefault("tags", {})
        properties.update(
            status="NotStarted",
            services={
                "Tracking": {
                    "jobServiceType": "Tracking",
                    "endpoint": f"azureml://{TRACKING_HOST}/mlflow/v1.0{WS_PATH}?",
                },
                "Studio": {
                    "jobServiceType": "Studio",
                    "endpoint": f"https://ml.azure.com/runs/{name}?wsid=/subscriptions/{SUBSCRIPTION}/resourcegroups/"
                    f"{RESOURCE_GROUP}/workspaces/{WORKSPACE}",
                },
            },
        )
        body = {"id": path, "name": name, "type": f"{PROVIDER}/workspaces/jobs", "properties": properties,
                "systemData": _system_data()}  # fmt: skip
        self.resources[path.lower()] = body
        return Answer(201, body, {"Location": f"https://{ARM}{path}"})

    def _get_job(self, request: Request, name: str) -> Answer:
        found = self.resources.get(f"{WS_PATH}/jobs/{name}".lower())
        if found is None:
            return arm_error(404, "UserError", f"Job {name} was not found")  # SPEC_ERROR; wording illustrative
        script = self.job_statuses.get(name)
        if script:
            found["properties"]["status"] = script.pop(0) if len(script) > 1 else script[0]
        return Answer(200, found)

    # -- endpoints and deployments: long-running operations --------------------------------

    def _get_plain(self, request: Request, *names: str) -> Answer:
        found = self.resources.get(request.path.lower())
        if found is None:
            return arm_error(404, "UserError", f"{request.path.rsplit('/', 2)[-2]} {names[-1]} not found")
        return Answer(200, found)

    def _long_running(self, path: str, body: dict[str, Any], on_done: Callable[[bool], None]) -> Answer:
        """201 with Azure-AsyncOperation (mfeOperationsStatus) and Location (the resource), as REC_DEPLOYMENT's
        PUT of the endpoint and of the deployment answer; the operation then reports `operation_statuses`."""
        op = f"odidp:{WORKSPACE_ID}:{uuid.uuid4()}"
        self.operations[op] = {"statuses": list(self.operation_statuses), "error": self.operation_error,
                               "on_done": on_done, "done": False}  # fmt: skip
        status_url = f"https://{ARM}/subscriptions/{SUBSCRIPTION}/providers/{PROVIDER}/locations/{LOCATION}/mfeOperationsStatus/{op}?api-version=2023-04-01-preview"
        body["properties"].setdefault("properties", {})["AzureAsyncOperationUri"] = status_url
        return Answer(
            201,
            body,
            {
                "Azure-AsyncOperation": status_url,
                "Location": f"https://{ARM}{path}?api-version=2023-04-01-preview",
                "x-ms-async-operation-timeout": "PT30M",
            },
        )

    def _operation_status(self, request: Request, op: str) -> Answer:
        operation = self.operations.get(op)
        if operation is None:
            return arm_error(404, "NotFound", f"operation {op} not found")
        statuses = operation["statuses"]
        status = statuses.pop(0) if len(statuses) > 1 else statuses[0]
        # REC_DEPLOYMENT: {"id", "name", "status": "Updating"|"Succeeded", "startTime", "endTime", "percentComplete"}.
        body: dict[str, Any] = {
            "id": f"/subscriptions/{SUBSCRIPTION}/providers/{PROVIDER}/locations/{LOCATION}/mfeOperationsStatus/{op}",
            "name": op,
            "status": status,
            "startTime": "2026-11-29T10:37:16.6388327+00:00",
            "endTime": "0001-01-01T00:00:00+00:00",
            "percentComplete": 0.0,
        }
        if status in ("Succeeded", "Failed", "Canceled") and not operation["done"]:
            operation["done"] = True
            operation["on_done"](status == "Succeeded")
        if status == "Failed":
            # SPEC_ASYNC: a failed operation's status body carries error {code, message}.
            body["error"] = operation["error"] or {"code": "InternalServerError", "message": "The operation failed."}
        return Answer(200, body)

    def _operation_result(self, request: Request, op: str) -> Answer:
        # REC_DEPLOYMENT, DELETE: Location is mfeOperationResults/<op>; the result of a delete has no body.
        return Answer(200, None)

    def _put_endpoint(self, request: Request, name: str) -> Answer:
        path = f"{WS_PATH}/onlineEndpoints/{name}"
        existing = self.resources.get(path.lower())
        if existing is not None and existing["properties"]["provisioningState"] not in ("Succeeded", "Failed"):
            return conflict(f"Endpoint {name} has an operation in progress.")
        sent = request.json()
        traffic = sent["properties"].get("traffic") or {}
        deployments = {k.rsplit("/", 1)[-1] for k in self.resources if k.startswith(f"{path}/deployments/".lower())}
        unknown = set(traffic) - deployments
        if unknown or (traffic and sum(traffic.values()) != 100):
            # azure-rest-api-specs OnlineEndpoint.traffic: "Traffic values need to sum to 100"; the deployments
            # must exist. Wording illustrative, shape SPEC_ERROR.
            return arm_error(400, "UserError", f"Traffic {traffic} names unknown deployments or does not sum to 100.")
        body = copy.deepcopy(existing) if existing else {"id": path, "name": name}
        body["properties"].update({k: v for k, v in sent["properties"].items() if k != "properties"})
        # A PUT of a tracked resource sets its tags to those sent (ARM's PUT replaces the resource; REC_DEPLOYMENT's
        # endpoint PUT carries "tags" beside "properties").
        body["tags"] = dict(sent.get("tags") or {})
        body["properties"]["provisioningState"] = "Updating"
        self.resources[path.lower()] = body

        def done(ok: bool) -> None:
            body["properties"]["provisioningState"] = "Succeeded" if ok else "Failed"

        return self._long_running(path, copy.deepcopy(body), done)

    def _list_deployments(self, request: Request, endpoint: str) -> Answer:
        # REC_DEPLOYMENT: online_endpoints.get also lists the endpoint's deployments, 200 {"value": [...]}.
        prefix = f"{WS_PATH}/onlineEndpoints/{endpoint}/deployments/".lower()
        return Answer(200, {"value": [v for k, v in self.resources.items() if k.startswith(prefix)]})

    def _list_keys(self, request: Request, name: str) -> Answer:
        # REC_DEPLOYMENT: POST onlineEndpoints/<name>/listKeys, 200 {"primaryKey", "secondaryKey"}.
        return Answer(200, {"primaryKey": ENDPOINT_KEY, "secondaryKey": ENDPOINT_KEY + "-2"})

    def _put_deployment(self, request: Request, endpoint: str, name: str) -> Answer:
        path = f"{WS_PATH}/onlineEndpoints/{endpoint}/deployments/{name}"
        if f"{WS_PATH}/onlineEndpoints/{endpoint}".lower() not in self.resources:
            return arm_error(404, "UserError", f"Endpoint {endpoint} not found")
        existing = self.resources.get(path.lower())
        if existing is not None and existing["properties"]["provisioningState"] in ("Creating", "Updating"):
            return conflict(f"Deployment {name} has an operation in progress.")
        sent = request.json()
        # REC_DEPLOYMENT: PUT deployment, 201, provisioningState Creating, sku with tier Standard, and the
        # service's defaults filled in (scaleSettings Default, egressPublicNetworkAccess Enabled).
        defaults = {"scaleSettings": {"scaleType": "Default"}, "egressPublicNetworkAccess": "Enabled",
                    "modelMountPath": None, "dataCollector": None}  # fmt: skip
        state = "Creating" if existing is None else "Updating"
        body = {
            "id": path,
            "name": name,
            "type": f"{PROVIDER}/workspaces/onlineEndpoints/deployments",
            "properties": {**defaults, **sent["properties"], "provisioningState": state},
            "systemData": _system_data(),
            "tags": sent.get("tags", {}),
            "location": LOCATION,
            "kind": "Managed",
            "sku": {**sent.get("sku", {}), "tier": "Standard"},
        }
        self.resources[path.lower()] = body

        def done(ok: bool) -> None:
            body["properties"]["provisioningState"] = "Succeeded" if ok else "Failed"

        return self._long_running(path, copy.deepcopy(body), done)

    def _delete_deployment(self, request: Request, endpoint: str, name: str) -> Answer:
        path = f"{WS_PATH}/onlineEndpoints/{endpoint}/deployments/{name}"
        found = self.resources.get(path.lower())
        if found is None:
            return Answer(204)  # ARM: deleting what is not there is a 204
        share = self.resources[f"{WS_PATH}/onlineEndpoints/{endpoint}".lower()]["properties"]["traffic"].get(name, 0)
        if share:
            return arm_error(400, "UserError", f"Deployment {name} takes {share}% of the traffic; set it to 0 first.")
        found["properties"]["provisioningState"] = "Deleting"
        op = f"odidp:{WORKSPACE_ID}:{uuid.uuid4()}"

        def done(ok: bool) -> None:
            if ok:
                self.resources.pop(path.lower(), None)

        self.operations[op] = {"statuses": ["Deleting", "Succeeded"], "error": None, "on_done": done, "done": False}
        base = f"https://{ARM}/subscriptions/{SUBSCRIPTION}/providers/{PROVIDER}/locations/{LOCATION}"
        # REC_DEPLOYMENT, DELETE of the endpoint: 202, Azure-AsyncOperation mfeOperationsStatus/<op>, Location
        # mfeOperationResults/<op>, body `null`.
        return Answer(
            202,
            "null",
            {
                "Azure-AsyncOperation": f"{base}/mfeOperationsStatus/{op}?api-version=2023-04-01-preview",
                "Location": f"{base}/mfeOperationResults/{op}?api-version=2023-04-01-preview",
                "Content-Type": "application/json; charset=utf-8",
            },
        )

    def _logs(self, request: Request, endpoint: str, name: str) -> Answer:
        # azure-rest-api-specs OnlineDeployments_GetLogs: POST .../getLogs {"containerType", "tail"} -> {"content"}.
        if self.resources.get(f"{WS_PATH}/onlineEndpoints/{endpoint}/deployments/{name}".lower()) is None:
            return arm_error(404, "UserError", f"Deployment {name} not found")
        return Answer(200, {"content": self.deployment_logs})

    # -- schedules ------------------------------------------------------------------------

    def _put_schedule(self, request: Request, name: str) -> Answer:
        path = f"{WS_PATH}/schedules/{name}"
        sent = request.json()
        body = {
            "id": path,
            "name": name,
            "type": f"{PROVIDER}/workspaces/schedules",
            # REC_LIFETIME: isEnabled is what the PUT sent (false after a disable); REC_SCHEDULE: true when not sent.
            "properties": {
                **sent["properties"],
                "provisioningState": "Creating",
                "isEnabled": sent["properties"].get("isEnabled", True) is not False,
            },
            "systemData": _system_data(),
        }
        self.resources[path.lower()] = body

        def done(ok: bool) -> None:
            body["properties"]["provisioningState"] = "Succeeded" if ok else "Failed"

        # azure-rest-api-specs machinelearningservices Schedules_CreateOrUpdate: a long-running operation
        # (x-ms-long-running-operation, 201 with Azure-AsyncOperation), answered here as the endpoint's PUT is
        # in REC_DEPLOYMENT; the schedule recordings were not read that far.
        return self._long_running(path, copy.deepcopy(body), done)

    # -- blob storage (azure-storage-blob's REST calls) -------------------------------------

    def _blob_head(self, request: Request, container: str, name: str) -> Answer:
        found = self.blobs.get((container, unquote(name)))
        if found is None:
            # REC_AUTOML: HEAD of a blob that is not there, 404 with x-ms-error-code BlobNotFound, no body.
            return Answer(404, None, {"x-ms-error-code": "BlobNotFound"})
        data, meta = found
        return Answer(200, None, _blob_headers(data, meta, len(data)))

    def _blob_get(self, request: Request, container: str, name: str) -> Answer:
        if request.query.get("restype") == "container":
            return self._blob_list(request, f"{container}/{name}")
        found = self.blobs.get((container, unquote(name)))
        if found is None:
            return Answer(404, None, {"x-ms-error-code": "BlobNotFound"})
        data, meta = found
        headers = _blob_headers(data, meta, len(data))
        span = re.match(r"bytes=(\d+)-(\d*)", request.headers.get("x-ms-range") or request.headers.get("Range") or "")
        if span:
            start, end = int(span.group(1)), int(span.group(2) or len(data) - 1)
            end = min(end, len(data) - 1)
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            return Answer(206, data[start : end + 1], headers)
        return Answer(200, data, headers)

    def _blob_put(self, request: Request, container: str, name: str) -> Answer:
        key = (container, unquote(name))
        meta = {k[len("x-ms-meta-") :]: v for k, v in request.headers.items() if k.lower().startswith("x-ms-meta-")}
        if request.query.get("comp") == "metadata":
            data, _ = self.blobs.get(key, (b"", {}))
            self.blobs[key] = (data, meta)
            return Answer(200, None, {"ETag": '"0x8DD555EF9EC9180"'})
        if request.query.get("comp") in ("block", "blocklist"):
            return arm_error(400, "NotSupported", "block uploads are not modelled; files here are small")
        self.blobs[key] = (request.body, meta)
        # REC_SCHEDULE: PUT BlockBlob, 201, empty body, Content-MD5 and ETag.
        return Answer(201, None, {"ETag": '"0x8DC3208BC70BE77"', "x-ms-request-server-encrypted": "true"})

    def _blob_list(self, request: Request, container: str) -> Answer:
        prefix = request.query.get("prefix", "")
        names = sorted(n for c, n in self.blobs if c == container and n.startswith(prefix))
        items = "".join(
            f"<Blob><Name>{escape(n)}</Name><Properties><Content-Length>{len(self.blobs[(container, n)][0])}"
            "</Content-Length><BlobType>BlockBlob</BlobType></Properties><Metadata /></Blob>"
            for n in names
        )
        # The Blob service's List Blobs answer (learn.microsoft.com rest/api/storageservices/list-blobs).
        xml = (
            f'<?xml version="1.0" encoding="utf-8"?><EnumerationResults ServiceEndpoint="https://{STORAGE_ACCOUNT}'
            f'.blob.core.windows.net/" ContainerName="{container}"><Prefix>{escape(prefix)}</Prefix><Blobs>{items}'
            "</Blobs><NextMarker /></EnumerationResults>"
        )
        return Answer(200, xml, {"Content-Type": "application/xml"})

    # -- the region's Azure ML API: discovery, run history, MLflow tracking -------------------

    def _discovery(self, request: Request) -> Answer:
        # The workspace's discoveryUrl (REC_DEPLOYMENT's workspace body): a map of service base URLs; azure-ai-ml
        # 1.35.2 reads `api` and `history` (operations/_job_operations.py _get_workspace_url).
        base = f"https://{TRACKING_HOST}"
        return Answer(200, {key: base for key in ("api", "catalog", "experimentation", "history", "modelmanagement")})

    # -- the shared registry ----------------------------------------------------------------

    def registry_asset(self, kind: str, name: str, version: str) -> dict[str, Any] | None:
        return self.registry.get((kind, name, version))

    def _registry_discovery(self, request: Request, name: str) -> Answer:
        if name != REGISTRY:
            return arm_error(404, "UserError", f"Registry {name} not found")  # SPEC_ERROR; wording illustrative
        # REC_PROMOTE, first entry (GET .../registries/<name>/discovery, 200): the registry's ids, regions and hosts.
        return Answer(
            200,
            {
                "registryId": "3b513a6b-f110-4e7f-9ce3-472b5aa28170",
                "registryName": name,
                "tenantId": "00000000-0000-0000-0000-0000000000aa",
                "primaryRegion": LOCATION,
                "regions": [LOCATION],
                "subscriptionId": SUBSCRIPTION,
                "resourceGroup": REGISTRY_RG,
                "workspaceName": None,
                "primaryRegionResourceProviderUri": f"https://{REGISTRY_HOST}/",
                "registryFqdns": {LOCATION: {"uri": f"https://{LOCATION}.api.azureml.ms"}},
                "intellectualPropertyPublisher": None,
            },
        )

    def _registry_path(self, kind: str, name: str, version: str) -> str:
        # A registry version's id is its asset URI: azure-ai-ml 1.35.2 reads a body's id with AMLVersionedArmId,
        # which takes a workspace ARM id or REGISTRY_VERSION_PATTERN (azureml://registries/<r>/<kind>/<n>/versions/<v>).
        return f"azureml://registries/{REGISTRY}/{kind}/{name}/versions/{version}"

    def _registry_get(self, request: Request, registry: str, kind: str, name: str, version: str) -> Answer:
        found = self.registry.get((kind, name, version))
        if found is None:
            # SPEC_ERROR shape; the SDK reads a 404 as ResourceNotFoundError (get_registry_versioned_asset).
            return arm_error(404, "UserError", f"Could not find asset with ID: {kind}/{name}/versions/{version}")
        return Answer(200, found)

    def _registry_list(self, request: Request, registry: str, kind: str, name: str) -> Answer:
        # REC_REGISTRY_MODEL: GET .../registries/<r>/models/<name>/versions?$orderBy=createdtime desc&$top=1 on a
        # name with no version yet is a 200 {"value": []}.
        found = [body for (k, n, _), body in self.registry.items() if (k, n) == (kind, name)]
        return Answer(200, {"value": found[::-1][: int(request.query.get("$top", len(found) or 1))]})

    def _registry_put(self, request: Request, registry: str, kind: str, name: str, version: str) -> Answer:
        # The same PUT body as a workspace version (REC_DEPLOYMENT's shape), answered with it and provisioningState
        # Succeeded: the SDK's begin_create_or_update_registry_versioned_asset takes 200 or 201 and polls nothing more.
        existed = (kind, name, version) in self.registry
        properties = dict((request.json() or {}).get("properties", {}))
        properties.setdefault("tags", {})
        properties.update(provisioningState="Succeeded", isArchived=False)
        if kind == "models":  # as a workspace version's answer: flavors always present (`{}` when none)
            properties["flavors"] = properties.get("flavors") or {}
        body = {"id": self._registry_path(kind, name, version), "name": version,
                "type": f"{PROVIDER}/registries/{kind}/versions", "properties": properties,
                "systemData": _system_data()}  # fmt: skip
        self.registry[(kind, name, version)] = body
        return Answer(200 if existed else 201, body)

    def _registry_tempdataref(self, request: Request, registry: str, name: str, version: str) -> Answer:
        # REC_REGISTRY_MODEL: PUT .../tempdatarefs/<name>/versions/<v>, 200, a container SAS in the registry's storage.
        blob_uri = f"https://{REGISTRY_STORAGE}.blob.core.windows.net:443/{registry.lower()}-{uuid.uuid4()}"
        return Answer(
            200,
            {
                "blobReferenceForConsumption": {
                    "blobUri": blob_uri,
                    "storageAccountArmId": None,
                    "credential": {"credentialType": "SAS", "sasUri": f"{blob_uri}?sv=2021-10-04&sr=c&sp=rcwl&sig=0"},
                },
                "imageReferenceForConsumption": None,
                "temporaryDataReferenceId": str(uuid.uuid4()),
                "temporaryDataReferenceType": None,
            },
        )

    def _registry_import(self, request: Request, registry: str) -> Answer:
        """POST .../registries/<r>/import of a workspace asset (ModelOperations.share): the workspace version copied
        under destinationName/destinationVersion, as a long-running operation answered 202 with a Location to poll
        (SPEC_ASYNC); no recording has the import itself. `import_keeps_tags` plays both readings of whether the
        copy keeps the source's tags (undocumented)."""
        sent = request.json()["properties"]
        found = re.match(r"azureml://locations/[^/]+/workspaces/[^/]+/models/([^/]+)/versions/([^/]+)$",
                         sent["sourceAssetId"])  # fmt: skip
        source = self.resource(f"/models/{found.group(1)}/versions/{found.group(2)}") if found else None
        if source is None:
            return arm_error(404, "UserError", f"Source asset {sent['sourceAssetId']} not found")
        name, version = sent["destinationName"], sent["destinationVersion"]
        properties = copy.deepcopy(source["properties"])
        properties["tags"] = properties.get("tags", {}) if self.import_keeps_tags else {}
        properties["modelUri"] = (
            f"https://{REGISTRY_STORAGE}.blob.core.windows.net/{registry.lower()}/models/{name}/{version}"
        )
        self.registry[("models", name, version)] = {
            "id": self._registry_path("models", name, version), "name": version,
            "type": f"{PROVIDER}/registries/models/versions", "properties": properties, "systemData": _system_data(),
        }  # fmt: skip
        op = str(uuid.uuid4())
        location = (
            f"https://{REGISTRY_HOST}/mferp/managementfrontend{REGISTRY_PATH}/operationResults/{op}"
            "?api-version=2021-10-01-dataplanepreview"
        )
        return Answer(202, None, {"Location": location, "Retry-After": "1"})

    def _registry_operation(self, request: Request, registry: str, op: str) -> Answer:
        # SPEC_ASYNC: the Location of a finished operation answers 200 (here with no body: the import returns none).
        return Answer(200, None)

    def _children(self, request: Request, parent: str) -> Answer:
        # Run history's child runs of an AutoML job: {"value": [run...], "continuationToken": null}.
        return Answer(200, {"value": self.children.get(parent, []), "continuationToken": None, "nextLink": None})

    def _run(self, request: Request) -> Answer:
        run_id = request.query.get("run_id", "")
        run = self.runs.get(run_id)
        if run is None:
            # MLflow REST API: a missing run is 404 with error_code RESOURCE_DOES_NOT_EXIST.
            return Answer(404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": f"Run '{run_id}' not found"})
        tags = [{"key": k, "value": v} for k, v in run.get("tags", {}).items()]
        metrics = [{"key": k, "value": v, "timestamp": 0, "step": 0} for k, v in run.get("metrics", {}).items()]
        return Answer(
            200, {"run": {"info": {"run_id": run_id, "status": "FINISHED"}, "data": {"tags": tags, "metrics": metrics}}}
        )

    def _score(self, request: Request, endpoint: str) -> Answer:
        if request.headers.get("Authorization") != f"Bearer {ENDPOINT_KEY}":
            return Answer(401, "key_auth_access_denied")
        traffic = self.resources[f"{WS_PATH}/onlineEndpoints/{endpoint}".lower()]["properties"]["traffic"]
        served_by = request.headers.get("azureml-model-deployment") or max(traffic, key=traffic.get, default="")
        answer = copy.deepcopy(self.scoring_answer)
        # REC_DEPLOYMENT: the scoring answer names the deployment that served it (azureml-model-deployment).
        answer.headers.update({"azureml-model-deployment": served_by, "Server": "azureml-frontdoor"})
        return answer


def _blob_headers(data: bytes, meta: dict[str, str], length: int) -> dict[str, str]:
    # REC_AUTOML: HEAD of an uploaded blob, 200, x-ms-blob-type BlockBlob, ETag, x-ms-meta-* metadata.
    return {
        "Content-Length": str(length),
        "Content-Type": "application/octet-stream",
        "ETag": '"0x8DE8B6769E88887"',
        "Last-Modified": "Thu, 26 Nov 2026 18:42:20 GMT",
        "x-ms-blob-type": "BlockBlob",
        "x-ms-creation-time": "Thu, 26 Nov 2026 18:42:20 GMT",
        "Accept-Ranges": "bytes",
        **{f"x-ms-meta-{k}": v for k, v in meta.items()},
    }


def _stored_model_uri(sent: str) -> str:
    """What the service records for a model registered from a job's output.

    A job output `azureml://jobs/<run>/outputs/artifacts/paths/<path>` is resolved to the run's folder in
    workspaceartifactstore (ExperimentRun/dcid.<run>/<path>), the store azure-ai-ml itself reads job
    outputs from (operations/_job_operations.py, 1.35.2). Unverified against a recording: none registers
    a model from a job output.
    """
    found = re.match(r"azureml://jobs/([^/]+)/outputs/artifacts/paths/(.*)$", sent)
    if not found:
        return sent
    run, path = found.groups()
    return (
        f"azureml://subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/workspaces/{WORKSPACE}/"
        f"datastores/workspaceartifactstore/paths/ExperimentRun/dcid.{run}/{path}"
    )


def _next(version: str) -> str:
    return str(int(version) + 1) if version.isdigit() else "1"


def parse(method: str, url: str, headers: dict[str, str], body: bytes) -> Request:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    return Request(method, url, parts.hostname or "", parts.path, query, headers, body)
