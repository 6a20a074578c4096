"""Azure's server-side rules that the Pulumi program meets, as a small model the mock tests run against.

Nothing here can reach Azure, so each rule names its public source in one line. The model judges
what `pulumi up` would do to an existing stack (`transition`) and what Azure makes of it
(`violations`): an update Azure rejects, one it silently does not apply, one that cuts the
endpoint's traffic, a replacement that cannot work or loses data, an assignment that already
exists, an API limit. `stored_after_put` is what Azure keeps after a PUT, for the mocks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

RG = "azure-native:resources:ResourceGroup"
STORAGE = "azure-native:storage:StorageAccount"
VAULT = "azure-native:keyvault:Vault"
LOGS = "azure-native:operationalinsights:Workspace"
APPI = "azure-native:applicationinsights:Component"
ACR = "azure-native:containerregistry:Registry"
WORKSPACE = "azure-native:machinelearningservices:Workspace"
COMPUTE = "azure-native:machinelearningservices:Compute"
ENDPOINT = "azure-native:machinelearningservices:OnlineEndpoint"
ROLE = "azure-native:authorization:RoleAssignment"
BUDGET = "azure-native:consumption:Budget"
MANAGEMENT_POLICY = "azure-native:storage:ManagementPolicy"
RANDOM = "random:index/randomString:RandomString"
ML_REGISTRY = "azure-native:machinelearningservices:Registry"
STACK_REFERENCE = "pulumi:pulumi:StackReference"

# Built-in role ids, the same in every tenant (learn.microsoft.com/azure/role-based-access-control/built-in-roles).
ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
STORAGE_BLOB_DATA_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
STORAGE_BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
KEY_VAULT_ADMINISTRATOR = "00482a5a-887f-4fb3-b363-3b7fe8e74483"
AZUREML_METRICS_WRITER = "635dd51f-9968-44d3-b7fb-6d9a6bd613ae"

# --- Rule 1: roles Azure ML assigns by itself to system-assigned identities ----------------------
# (owner type, role, the linked resource it is assigned on); "workspace" means the workspace itself.
AUTOMATIC_ROLES: dict[str, list[tuple[str, str]]] = {
    # Azure ML docs, concept-endpoints-online-auth, "Automatic role assignment for endpoint identity".
    # Nothing on an Azure ML registry: no page lists an automatic assignment there, for any identity.
    ENDPOINT: [
        (ACR_PULL, "containerRegistry"),
        (STORAGE_BLOB_DATA_READER, "storageAccount"),
        (AZUREML_METRICS_WRITER, "workspace"),
    ],
    # Azure ML docs, how-to-identity-based-service-authentication: a cluster identity "is automatically granted ACRPull"
    COMPUTE: [(ACR_PULL, "containerRegistry")],
    # Same page, workspace identity types: SAI role assignment creation is "managed by Microsoft"; the roles are the
    # ones it lists for a workspace identity (possible: the page names them for a user-assigned one).
    WORKSPACE: [
        (CONTRIBUTOR, "workspace"),
        (CONTRIBUTOR, "storageAccount"),
        (STORAGE_BLOB_DATA_CONTRIBUTOR, "storageAccount"),
        (CONTRIBUTOR, "keyVault"),
        (KEY_VAULT_ADMINISTRATOR, "keyVault"),
        (CONTRIBUTOR, "containerRegistry"),
        (CONTRIBUTOR, "applicationInsights"),
    ],
}
# Rule 2: one assignment per (scope, principal, role); a second PUT fails with RoleAssignmentExists
# (learn.microsoft.com/azure/role-based-access-control/troubleshooting, "RoleAssignmentExists").

# --- Rule 3: properties Azure refuses to change after creation -----------------------------------
# ARM: a resource's location cannot change (learn.microsoft.com/azure/azure-resource-manager/management/move-region).
ALWAYS_IMMUTABLE = ("location",)
IMMUTABLE: dict[str, tuple[str, ...]] = {
    # Key Vault soft-delete overview: retention "can't be changed afterwards"; soft delete "can't be disabled".
    VAULT: ("properties.softDeleteRetentionInDays", "properties.enableSoftDelete", "properties.tenantId"),
    # Workspace REST spec (azure-native Workspace docs): keyVault and storageAccount "cannot be changed once the
    # workspace has been created"; registry and App Insights change only through `az ml workspace update
    # --update-dependent-resources`, which a PUT does not carry.
    WORKSPACE: ("storageAccount", "keyVault", "containerRegistry", "applicationInsights"),
    # Storage: a StorageV2 account cannot become another kind in place (learn.microsoft.com/azure/storage/common/
    # storage-account-upgrade: only upgrades to v2).
    STORAGE: ("kind",),
    # A role assignment's principal and scope cannot change: "Tenant ID, application ID, principal ID, and scope
    # are not allowed to be updated" (RoleAssignmentUpdateNotPermitted; learn.microsoft.com/azure/
    # role-based-access-control/troubleshooting).
    ROLE: ("principalId", "scope"),
}

# --- Rule 4: properties a PUT accepts but does not apply -----------------------------------------
# AmlCompute: the update body is ClusterUpdateParameters, scale settings only (azure-rest-api-specs machinelearning
# spec; azure-rest-api-specs issue 18889: a new vmSize is acknowledged and not applied); Pulumi's classic provider
# notes the cluster "cannot be updated". Everything else of an existing cluster stays as created.
APPLIED_IN_PLACE: dict[str, tuple[str, ...]] = {COMPUTE: ("properties.properties.scaleSettings",)}
# Key vault: purge protection, once on, cannot be turned off; a PUT without it leaves it on (Key Vault docs,
# soft-delete overview; azure-native Vault docs: "Enabling this functionality is irreversible").
STICKY_TRUE: dict[str, tuple[str, ...]] = {VAULT: ("properties.enablePurgeProtection",)}

# --- Rule 5: a PUT replaces the whole body: what is not sent is dropped ----------------------------
# OnlineEndpoint: PUT without `traffic` sets the endpoint's traffic to none (issue 10's review; Azure-Samples
# baseline templates note it), so the live deployment stops receiving requests.
DROPPED_IF_UNSENT: dict[str, tuple[str, ...]] = {ENDPOINT: ("properties.traffic",)}

# --- Rule 6: API limits ---------------------------------------------------------------------------
# Consumption Budget: "Budget can have up to five notifications" (azure-native Budget docs, from the REST spec).
MAX_BUDGET_NOTIFICATIONS = 5
# Key Vault: softDeleteRetentionInDays "accepts >=7 and <=90" (azure-native Vault docs, from the REST spec).
VAULT_RETENTION_DAYS = (7, 90)
# Storage management policy: one per account, named "default" (azure-native ManagementPolicy docs: "It should always
# be 'default'"); daysAfterModificationGreaterThan is a whole number >= 0 (azure-rest-api-specs storage,
# DateAfterModification: multipleOf 1, minimum 0); blobTypes blockBlob or appendBlob (lifecycle-management-policy-
# structure).
MANAGEMENT_POLICY_NAME = "default"
LIFECYCLE_BLOB_TYPES = {"blockBlob", "appendBlob"}

# --- Rule 7: what outlives a delete -----------------------------------------------------------------
# Key Vault soft delete keeps the name for the retention period (Key Vault soft-delete overview); a workspace stays
# soft-deleted for 14 days (Azure ML docs, concept-soft-delete); an endpoint name is reserved for a while after
# delete (Azure ML docs, how-to-troubleshoot-online-endpoints, endpoint name already in use).
NAME_RESERVED_AFTER_DELETE = {VAULT: "vaultName", WORKSPACE: "workspaceName", ENDPOINT: "endpointName"}

# Resources whose replacement loses something a user needs: data, registered models, live traffic.
STATEFUL = {
    STORAGE: "its blobs (datastore, models)",
    VAULT: "its secrets",
    WORKSPACE: "its models and runs",
    ENDPOINT: "its deployments and live traffic",
    RG: "everything in it",
    ACR: "its images",
    ML_REGISTRY: "every model and environment promoted through it (and its name, part of their ids)",
}

# The input that carries each resource's Azure name (pulumi-azure-native: a changed name is a new resource).
NAME_INPUT = {
    RG: "resourceGroupName",
    STORAGE: "accountName",
    VAULT: "vaultName",
    LOGS: "workspaceName",
    APPI: "resourceName",
    ACR: "registryName",
    WORKSPACE: "workspaceName",
    COMPUTE: "computeName",
    ENDPOINT: "endpointName",
    BUDGET: "budgetName",
    MANAGEMENT_POLICY: "managementPolicyName",
    ML_REGISTRY: "registryName",
    ROLE: "roleAssignmentName",
}
# Parent path segments: a change moves the resource, so the provider replaces it (pulumi-azure-native: URL path
# parameters force replacement).
PARENT_INPUTS = ("resourceGroupName", "workspaceName", "scope")


# --- Rule 8: an Azure ML registry ------------------------------------------------------------------
# It creates its own storage account per region and one container registry replicated to each; existing ones
# cannot be given: az ml registry create ("Using existing Azure resource instances for those when creating the
# registry is not supported"); the REST spec 2025-12-01 (registries.json) has AcrDetails and
# StorageAccountDetails with systemCreated* alone and additionalProperties false.
REGISTRY_ACR_KEYS = {"systemCreatedAcrAccount"}
REGISTRY_STORAGE_KEYS = {"systemCreatedStorageAccount"}
# The registry's ACR is Premium, the only SKU azure-ai-ml offers (constants/_registry.py, AcrAccountSku) and
# the one geo-replication needs (container-registry-geo-replication), billed "for each region" (same page).
REGISTRY_ACR_SKUS = {"Premium"}
# REST spec 2025-12-01, RegistryNameParameter: ^[a-zA-Z0-9][a-zA-Z0-9\-_]{2,32}$.
REGISTRY_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_-]{2,32}")
# Regions leave a registry through the removeRegions action (REST spec 2025-12-01, Registries_RemoveRegions);
# no source says a PUT without a region removes it, so the model takes the stricter reading: it does not.
# A workspace uses a registry's assets only in a region the registry is in (Azure ML docs,
# how-to-share-models-pipelines-across-workspaces-with-registries).


@dataclass
class Step:
    """What `pulumi up` does to one resource."""

    kind: str  # create, same, update, replace, delete
    typ: str
    name: str
    changed: list[str] = field(default_factory=list)


def leaf_changes(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dot paths whose values differ between two input trees (lists compared whole)."""
    if isinstance(old, dict) and isinstance(new, dict):
        paths: list[str] = []
        for key in sorted(set(old) | set(new)):
            paths += leaf_changes(old.get(key), new.get(key), f"{prefix}{key}.")
        return paths
    return [] if old == new else [prefix.rstrip(".")]


def _under(path: str, prefixes: Iterable[str]) -> bool:
    return any(path == p or path.startswith(p + ".") for p in prefixes)


def transition(before: Any, after: Any) -> list[Step]:
    """The steps of `pulumi up` from the state of run `before` to the program of run `after`
    (both `tests.fakes.ProgramRun`), as the engine and the providers decide them."""
    old = before.mocks.by_name()
    steps: list[Step] = []
    for res in after.mocks.resources:
        prior = old.get(res.name)
        if prior is None:
            steps.append(Step("create", res.typ, res.name))
            continue
        changed = leaf_changes(prior.inputs, res.effective)
        if not changed:
            steps.append(Step("same", res.typ, res.name))
            continue
        name_key = NAME_INPUT.get(res.typ, "")
        replaced = (
            res.typ == RANDOM  # pulumi-random: every input of RandomString forces a new one
            or any(
                _under(path, (name_key, *PARENT_INPUTS, *res.options.get("replace_on_changes", []))) for path in changed
            )
        )
        steps.append(Step("replace" if replaced else "update", res.typ, res.name, changed))
    names = {r.name for r in after.mocks.resources}
    steps += [Step("delete", r.typ, r.name) for r in before.mocks.resources if r.name not in names]
    return steps


def violations(before: Any, after: Any) -> list[str]:
    """Every way `pulumi up` from `before` to `after` would fail or hurt in Azure (empty when none)."""
    old, new = before.mocks.by_name(), after.mocks.by_name()
    found: list[str] = []
    for step in transition(before, after):
        where = f"{step.typ.split(':')[-1]} '{step.name}'"
        if step.kind == "update":
            for path in step.changed:
                if _under(path, (*ALWAYS_IMMUTABLE, *IMMUTABLE.get(step.typ, ()))):
                    found.append(f"{where}: Azure rejects a change of {path} after creation")
                elif step.typ in APPLIED_IN_PLACE and not _under(path, APPLIED_IN_PLACE[step.typ]):
                    found.append(f"{where}: Azure accepts and silently ignores a change of {path}")
                elif _under(path, STICKY_TRUE.get(step.typ, ())) and _get(old[step.name].inputs, path) is True:
                    found.append(f"{where}: Azure keeps {path} on; the change is silently ignored")
            if step.typ == ML_REGISTRY:
                removed = sorted(_regions(old[step.name].inputs) - _regions(new[step.name].effective))
                if removed:
                    found.append(
                        f"{where}: a PUT without region(s) {', '.join(removed)} does not remove them; Azure "
                        "removes a registry's regions only with its removeRegions action"
                    )
            for path in DROPPED_IF_UNSENT.get(step.typ, ()):
                if _get(new[step.name].effective, path) is None:
                    found.append(f"{where}: the update is a PUT without {path}, which cuts the endpoint's live traffic")
        elif step.kind == "replace":
            prior, res = old[step.name], new[step.name]
            name_key = NAME_INPUT.get(step.typ, "")
            same_name = name_key and prior.inputs.get(name_key) == res.effective.get(name_key)
            if step.typ in STATEFUL:
                found.append(f"{where}: replacing it loses {STATEFUL[step.typ]} ({', '.join(step.changed)})")
            elif same_name and not res.options.get("delete_before_replace"):
                found.append(
                    f"{where}: replaced under the same name without delete_before_replace; the create "
                    "meets the existing resource"
                )
            asked = step.typ == RANDOM or any(
                _under(p, (name_key, *PARENT_INPUTS, *res.options.get("replace_on_changes", []))) for p in step.changed
            )
            if not asked:
                found.append(f"{where}: replaced without the program asking for it")
        elif step.kind == "delete" and step.typ in STATEFUL:
            found.append(f"{where}: deleted, which loses {STATEFUL[step.typ]}")
    found += limit_violations(after)
    found += role_violations(after)
    return found


def limit_violations(run: Any) -> list[str]:
    """API limits the registered resources break."""
    found = []
    for res in run.mocks.of_type(BUDGET):
        count = len(res.inputs.get("notifications") or {})
        if count > MAX_BUDGET_NOTIFICATIONS:
            found.append(f"Budget '{res.name}': {count} notifications; Azure allows {MAX_BUDGET_NOTIFICATIONS}")
    for res in run.mocks.of_type(VAULT):
        days = _get(res.inputs, "properties.softDeleteRetentionInDays")
        if days is not None and not VAULT_RETENTION_DAYS[0] <= int(days) <= VAULT_RETENTION_DAYS[1]:
            found.append(f"Vault '{res.name}': retention {days} days is outside {VAULT_RETENTION_DAYS}")
    for res in run.mocks.of_type(ML_REGISTRY):
        found += registry_violations(res)
    policies = run.mocks.of_type(MANAGEMENT_POLICY)
    accounts = [p.inputs.get("accountName") for p in policies]
    if len(set(accounts)) != len(accounts):
        found.append("ManagementPolicy: more than one policy on one storage account; Azure keeps one")
    for res in policies:
        if res.inputs.get("managementPolicyName") != MANAGEMENT_POLICY_NAME:
            found.append(f"ManagementPolicy '{res.name}': its name must be {MANAGEMENT_POLICY_NAME!r}")
        for rule in _get(res.inputs, "policy.rules") or []:
            days = _get(rule, "definition.actions.baseBlob.delete.daysAfterModificationGreaterThan")
            if days is not None and (days < 0 or days != int(days)):
                found.append(f"ManagementPolicy '{res.name}': {days} days is not a whole number >= 0")
            types = set(_get(rule, "definition.filters.blobTypes") or [])
            if not types or types - LIFECYCLE_BLOB_TYPES:
                found.append(
                    f"ManagementPolicy '{res.name}': blobTypes {sorted(types)} not within "
                    f"{sorted(LIFECYCLE_BLOB_TYPES)}"
                )
    return found


def _regions(inputs: dict[str, Any]) -> set[str]:
    return {str(detail.get("location")) for detail in inputs.get("regionDetails") or []}


def registry_violations(res: Any) -> list[str]:
    """What Azure refuses in one registry's inputs (Rule 8)."""
    where = f"Registry '{res.name}'"
    found = []
    name = str(res.inputs.get("registryName", ""))
    if not REGISTRY_NAME.fullmatch(name):
        found.append(f"{where}: name {name!r} breaks ^[a-zA-Z0-9][a-zA-Z0-9-_]{{2,32}}$")
    details = res.inputs.get("regionDetails") or []
    locations = [detail.get("location") for detail in details]
    if res.inputs.get("location") not in locations or len(set(locations)) != len(locations):
        found.append(f"{where}: regionDetails must hold the primary region {res.inputs.get('location')}, each once")
    for detail in details:
        for key, allowed in (("acrDetails", REGISTRY_ACR_KEYS), ("storageAccountDetails", REGISTRY_STORAGE_KEYS)):
            for account in detail.get(key) or []:
                if set(account) - allowed:
                    found.append(
                        f"{where}: {key} in {detail.get('location')} gives {sorted(set(account) - allowed)}; a "
                        "registry creates its own storage and container registry, existing ones cannot be given"
                    )
        for account in detail.get("acrDetails") or []:
            sku = _get(account, "systemCreatedAcrAccount.acrAccountSku")
            if sku not in REGISTRY_ACR_SKUS:
                found.append(f"{where}: container registry SKU {sku!r}; Azure ML creates Premium only")
    return found


def across_stacks_violations(runs: Iterable[Any]) -> list[str]:
    """What the stacks together break: the same (scope, principal, role) declared by two stacks, which the second
    one's create meets as RoleAssignmentExists (Rule 2), and a workspace stack granted on a registry that does not
    cover its region (Rule 8)."""
    found: list[str] = []
    seen: dict[tuple[str, str, str], str] = {}
    registries = {}
    runs = list(runs)
    for run in runs:
        for res in run.mocks.of_type(ML_REGISTRY):
            registries[res.outputs["__id"]] = _regions(res.inputs)
    for run in runs:
        workspaces = run.mocks.of_type(WORKSPACE)
        for res in run.mocks.of_type(ROLE):
            key = (res.inputs["scope"], res.inputs["principalId"], res.inputs["roleDefinitionId"].rsplit("/", 1)[-1])
            stack = res.inputs.get("description", res.name)
            if key in seen:
                found.append(f"RoleAssignment '{res.name}' ({stack}) repeats one of {seen[key]} (RoleAssignmentExists)")
            seen[key] = stack
            regions = registries.get(res.inputs["scope"])
            for workspace in workspaces:
                if regions is not None and workspace.inputs.get("location") not in regions:
                    found.append(
                        f"Workspace '{workspace.name}' in {workspace.inputs.get('location')} uses a registry in "
                        f"{sorted(regions)} only"
                    )
    return found


# Roles that read a registry's assets: Reader ("only read assets") and AzureML Registry User (all asset actions),
# how-to-manage-registries and built-in-roles.
REGISTRY_READERS = {"acdd72a7-3385-48ef-bd42-f606fba81ae7", "1823dd4f-9b8c-4ab6-ab4e-7397a3684615"}


def registry_pull_violations(workspace_run: Any, registry_id: str) -> list[str]:
    """The endpoint and workspace identities of a workspace stack that deploys from the registry `registry_id`
    but may not read it: Azure assigns nothing on a registry by itself (AUTOMATIC_ROLES has no registry), so
    without a declared grant a deployment of a registry model has no right to pull it."""
    granted = {
        r.inputs["principalId"]
        for r in workspace_run.mocks.of_type(ROLE)
        if r.inputs["scope"] == registry_id and r.inputs["roleDefinitionId"].rsplit("/", 1)[-1] in REGISTRY_READERS
    }
    found = []
    for typ in (ENDPOINT, WORKSPACE):
        for res in workspace_run.mocks.of_type(typ):
            principal = (res.outputs.get("identity") or {}).get("principalId")
            if principal not in granted:
                found.append(f"{typ.split(':')[-1]} '{res.name}': its identity may not read the registry's assets")
    return found


def automatic_assignments(run: Any) -> set[tuple[str, str, str]]:
    """(scope id, principal id, role id) that Azure ML creates itself for the run's system-assigned identities."""
    by_azure_name = {res.outputs.get("name"): res for res in run.mocks.resources}
    workspaces = {res.outputs.get("name"): res for res in run.mocks.of_type(WORKSPACE)}
    made: set[tuple[str, str, str]] = set()
    for typ, roles in AUTOMATIC_ROLES.items():
        for res in run.mocks.of_type(typ):
            identity = res.outputs.get("identity") or {}
            if identity.get("type") != "SystemAssigned":
                continue
            workspace = res if typ == WORKSPACE else workspaces.get(res.inputs.get("workspaceName"))
            if workspace is None:
                continue
            for role, link in roles:
                scope = workspace.outputs["__id"] if link == "workspace" else workspace.inputs.get(link)
                if scope and (link == "workspace" or scope.rsplit("/", 1)[-1] in by_azure_name):
                    made.add((scope, identity["principalId"], role))
    return made


def role_violations(run: Any) -> list[str]:
    """Role assignments that already exist (made by Azure ML, or declared twice)."""
    automatic = automatic_assignments(run)
    seen: set[tuple[str, str, str]] = set()
    found = []
    for res in run.mocks.of_type(ROLE):
        key = (res.inputs["scope"], res.inputs["principalId"], res.inputs["roleDefinitionId"].rsplit("/", 1)[-1])
        if key in automatic:
            found.append(
                f"RoleAssignment '{res.name}': Azure ML already assigns this role to the identity "
                "(RoleAssignmentExists)"
            )
        if key in seen:
            found.append(f"RoleAssignment '{res.name}': declared twice (RoleAssignmentExists)")
        seen.add(key)
    return found


def reserved_after_destroy(run: Any) -> set[str]:
    """Names a `pulumi destroy` of the run's stack leaves reserved for a while (soft delete)."""
    return {str(res.inputs[key]) for typ, key in NAME_RESERVED_AFTER_DELETE.items() for res in run.mocks.of_type(typ)}


def azure_names(run: Any) -> set[str]:
    return {str(res.inputs[NAME_INPUT[res.typ]]) for res in run.mocks.resources if res.typ in NAME_INPUT}


def stored_after_put(typ: str, recorded: dict[str, Any], sent: dict[str, Any]) -> dict[str, Any]:
    """What Azure keeps after a PUT of `sent` on a resource whose state was `recorded` (sticky switches)."""
    kept = dict(sent)
    for path in STICKY_TRUE.get(typ, ()):
        if _get(recorded, path) is True and _get(kept, path) is not True:
            head, _, leaf = path.rpartition(".")
            kept[head] = {**(kept.get(head) or {}), leaf: True}
    return kept


def _get(tree: Any, path: str) -> Any:
    for key in path.split("."):
        if not isinstance(tree, dict):
            return None
        tree = tree.get(key)
    return tree
