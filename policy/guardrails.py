"""The guardrails, as CrossGuard resource policies. Tests import this module; only
policy/__main__.py builds the PolicyPack (constructing one starts the analyzer and blocks).

Each violation says what to change. Props are the resources' inputs with their wire names
(camelCase), as the engine hands them to a policy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyConfigSchema,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

Report = Callable[..., None]

CONFIG_DEFAULTS: dict[str, Any] = {
    "maxNodesCap": 10,
    "allowedVmSizes": [
        "Standard_DS2_v2",
        "Standard_DS3_v2",
        "Standard_DS4_v2",
        "Standard_D2s_v5",
        "Standard_D4s_v5",
        "Standard_D8s_v5",
        "Standard_E4s_v5",
    ],
    "requiredTags": ["project", "stack", "managed-by"],
    "publicNetworkAccess": "Enabled",
}

TAGGABLE = (
    "azure-native:resources:ResourceGroup",
    "azure-native:storage:StorageAccount",
    "azure-native:keyvault:Vault",
    "azure-native:operationalinsights:Workspace",
    "azure-native:applicationinsights:Component",
    "azure-native:containerregistry:Registry",
    "azure-native:machinelearningservices:Workspace",
    "azure-native:machinelearningservices:Compute",
    "azure-native:machinelearningservices:OnlineEndpoint",
    "azure-native:machinelearningservices:Registry",
)


def _config(args: ResourceValidationArgs) -> Mapping[str, Any]:
    return {**CONFIG_DEFAULTS, **(args.get_config() or {})}


def _get(props: Mapping[str, Any], path: str) -> Any:
    node: Any = props
    for key in path.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


def check_cluster(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != "azure-native:machinelearningservices:Compute":
        return
    if _get(args.props, "properties.computeType") != "AmlCompute":
        return
    config = _config(args)
    aml = _get(args.props, "properties.properties") or {}
    scale = aml.get("scaleSettings") or {}
    min_nodes, max_nodes = scale.get("minNodeCount"), scale.get("maxNodeCount")
    if min_nodes is None or int(min_nodes) != 0:
        report(
            f"compute cluster '{args.name}' keeps {min_nodes} node(s) running when idle; set minNodes to 0 "
            "(`pulumi config set minNodes 0`) so an idle cluster costs nothing"
        )
    if max_nodes is None or int(max_nodes) > int(config["maxNodesCap"]):
        report(
            f"compute cluster '{args.name}' may grow to {max_nodes} nodes; the cap is {config['maxNodesCap']}: "
            "lower maxNodes, or raise maxNodesCap in the policy pack's config after a budget review"
        )
    vm_size = aml.get("vmSize")
    # Azure treats VM size names without regard to case (Standard_DS3_V2 is Standard_DS3_v2).
    allowed = {str(size).lower() for size in config["allowedVmSizes"]}
    if not isinstance(vm_size, str) or vm_size.lower() not in allowed:
        report(
            f"compute cluster '{args.name}' uses VM size {vm_size}, which is not allowed; use one of "
            f"{', '.join(config['allowedVmSizes'])} (`pulumi config set vmSize ...`)"
        )
    if not scale.get("nodeIdleTimeBeforeScaleDown"):
        report(
            f"compute cluster '{args.name}' has no idle scale-down time; set idleSecondsBeforeScaleDown "
            "(e.g. 120) so idle nodes are released"
        )


def check_storage(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != "azure-native:storage:StorageAccount":
        return
    props = args.props
    if props.get("enableHttpsTrafficOnly") is not True:
        report(f"storage account '{args.name}' accepts plain HTTP; set enable_https_traffic_only=True")
    if props.get("minimumTlsVersion") != "TLS1_2":
        report(
            f"storage account '{args.name}' allows TLS below 1.2 ({props.get('minimumTlsVersion')}); "
            "set minimum_tls_version to TLS1_2"
        )
    if props.get("allowBlobPublicAccess") is not False:
        report(f"storage account '{args.name}' may expose blobs publicly; set allow_blob_public_access=False")


def check_key_vault(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != "azure-native:keyvault:Vault":
        return
    props = _get(args.props, "properties") or {}
    if props.get("enableRbacAuthorization") is not True:
        report(
            f"key vault '{args.name}' uses access policies; set enable_rbac_authorization=True so access "
            "is granted with Azure roles"
        )
    if props.get("enableSoftDelete") is False:
        report(
            f"key vault '{args.name}' has soft delete off; remove enable_soft_delete=False so deleted "
            "secrets can be recovered"
        )


def check_endpoint_auth(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != "azure-native:machinelearningservices:OnlineEndpoint":
        return
    mode = _get(args.props, "properties.authMode")
    if mode not in ("Key", "AADToken", "AMLToken"):
        report(
            f"online endpoint '{args.name}' has authentication mode {mode!r}; use Key or AADToken "
            "(`pulumi config set endpointAuthMode key`)"
        )


def check_tags(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type not in TAGGABLE:
        return
    tags = args.props.get("tags") or {}
    missing = [tag for tag in _config(args)["requiredTags"] if not tags.get(tag)]
    if missing:
        report(
            f"{args.resource_type.split(':')[-1]} '{args.name}' lacks the tag(s) {', '.join(missing)}; "
            "pass settings.tags (project, stack, managed-by) to every taggable resource"
        )


PUBLIC_ACCESS_PATHS = {
    "azure-native:machinelearningservices:Workspace": "publicNetworkAccess",
    "azure-native:keyvault:Vault": "properties.publicNetworkAccess",
    "azure-native:machinelearningservices:OnlineEndpoint": "properties.publicNetworkAccess",
    "azure-native:machinelearningservices:Registry": "publicNetworkAccess",
}

# Roles allowed on an Azure ML registry, by built-in role id (built-in-roles, AI + machine learning): Reader to
# use its assets, AzureML Registry User to share them too (Azure ML docs, how-to-manage-registries). Contributor
# and Owner could also update or delete the registry and every model promoted through it (same page, warning).
REGISTRY_ROLES = {
    "acdd72a7-3385-48ef-bd42-f606fba81ae7": "Reader",
    "1823dd4f-9b8c-4ab6-ab4e-7397a3684615": "AzureML Registry User",
}
REGISTRY_SCOPE = "/providers/microsoft.machinelearningservices/registries/"


def check_registry_roles(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != "azure-native:authorization:RoleAssignment":
        return
    scope = str(args.props.get("scope") or "")
    if REGISTRY_SCOPE not in scope.lower():
        return
    role = str(args.props.get("roleDefinitionId") or "").rsplit("/", 1)[-1].lower()
    if role not in REGISTRY_ROLES:
        report(
            f"role assignment '{args.name}' grants role {role or '(none)'} on the Azure ML registry; grant "
            f"{' or '.join(REGISTRY_ROLES.values())} there: other roles can change or delete the registry and "
            "every model promoted through it"
        )


def check_public_access(args: ResourceValidationArgs, report: Report) -> None:
    path = PUBLIC_ACCESS_PATHS.get(args.resource_type)
    if path is None:
        return
    expected = _config(args)["publicNetworkAccess"]
    actual = _get(args.props, path)
    if actual != expected:
        report(
            f"{args.resource_type.split(':')[-1]} '{args.name}' has public network access {actual}, but this "
            f"stack's config says {expected}; set it from settings.public_network_access"
        )


def _policy(
    name: str,
    description: str,
    validate: Callable[[ResourceValidationArgs, Report], None],
    config: dict[str, Any] | None = None,
) -> ResourceValidationPolicy:
    schema = PolicyConfigSchema(properties=config) if config else None
    return ResourceValidationPolicy(
        name=name,
        description=description,
        validate=validate,
        enforcement_level=EnforcementLevel.MANDATORY,
        config_schema=schema,
    )


# list[Policy], not the inferred list of the subclass: PolicyPack takes a list[Policy] (lists are invariant).
POLICIES: list[Policy] = [
    _policy(
        "cluster-cost-limits",
        "Clusters scale to zero, stay under a node cap, use allowed VM sizes and release idle nodes.",
        check_cluster,
        {
            "maxNodesCap": {"type": "integer", "default": CONFIG_DEFAULTS["maxNodesCap"]},
            "allowedVmSizes": {
                "type": "array",
                "items": {"type": "string"},
                "default": CONFIG_DEFAULTS["allowedVmSizes"],
            },
        },
    ),
    _policy("storage-secure-transport", "Storage is HTTPS-only, TLS 1.2+, without public blobs.", check_storage),
    _policy("key-vault-rbac-soft-delete", "Key vaults use RBAC and keep soft delete.", check_key_vault),
    _policy("endpoint-authentication", "Online endpoints require authentication.", check_endpoint_auth),
    _policy(
        "required-tags",
        "Taggable resources carry the required tags.",
        check_tags,
        {"requiredTags": {"type": "array", "items": {"type": "string"}, "default": CONFIG_DEFAULTS["requiredTags"]}},
    ),
    _policy(
        "registry-least-privilege",
        "Role assignments on an Azure ML registry are Reader or AzureML Registry User.",
        check_registry_roles,
    ),
    _policy(
        "public-network-access-as-configured",
        "Public network access matches the stack's config.",
        check_public_access,
        {
            "publicNetworkAccess": {
                "type": "string",
                "enum": ["Enabled", "Disabled"],
                "default": CONFIG_DEFAULTS["publicNetworkAccess"],
            }
        },
    ),
]
