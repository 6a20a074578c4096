"""The stack's settings: read once from Pulumi config, validated, typed.

Nothing else in `infra/` reads `pulumi.Config`. Every value is checked here so that a bad
value fails at `pulumi preview` with the key, the value and what is allowed, instead of as
an HTTP 400 from Azure halfway through `pulumi up`.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple, TypeVar

_T = TypeVar("_T")

# Key -> default. Pulumi.yaml declares the same keys with the same defaults, `location` aside (a test
# holds them together); the defaults are repeated here because mocks and unit tests see no
# Pulumi.yaml.
DEFAULTS: dict[str, str] = {
    # Pulumi.yaml declares no default for this one key: a project default would hide the provider's own
    # `azure-native:location` (see `load_settings`), so the fallback lives here alone.
    "location": "westeurope",
    "vmSize": "Standard_DS3_v2",
    "vmPriority": "Dedicated",
    "minNodes": "0",
    "maxNodes": "3",
    "idleSecondsBeforeScaleDown": "120",
    "endpointAuthMode": "key",
    "publicNetworkAccess": "Enabled",
    "keyVaultPurgeProtection": "false",
    "logRetentionDays": "30",
    "tags": "[]",
    "budgetAmount": "100",
    "budgetEmails": "[]",
    "budgetAlertPercents": "[80, 100]",
    "collectedDataRetentionDays": "30",
    # The stack's place in the dev-to-prod chain (infra/environments.py reads these).
    "stackKind": "workspace",
    "sharedStack": "",
    "registryRegions": "[]",
    "registryConsumers": "[]",
    "ciPrincipalId": "",
}

AUTH_MODES = {"key": "Key", "aad_token": "AADToken"}
VM_PRIORITIES = ("Dedicated", "LowPriority")
NETWORK_ACCESS = ("Enabled", "Disabled")
# A cluster larger than this is a typo or a budget accident, not a lesson-sized job.
MAX_NODES_CAP = 20
# Azure VM size names: Standard_<family letters><vCPUs>[-<constrained vCPUs>][<features>][_<suffixes>],
# e.g. Standard_DS3_v2, Standard_NC24ads_A100_v4, Standard_M64-32ms. Azure compares them without
# regard to case (samples write STANDARD_DS3_V2), so any case is read and the canonical spelling
# kept. Whether a region offers a size is Azure's to say; the shape is ours.
# Source: learn.microsoft.com/azure/virtual-machines/vm-naming-conventions (family, vCPUs, features, version).
VM_SIZE_PATTERN = re.compile(r"^standard_([a-z]{1,4})(\d{1,3})(-\d{1,3})?([a-z]*)((?:_[a-z0-9]+)*)$", re.IGNORECASE)
# The public-cloud regions by programmatic name, as Microsoft lists them (MicrosoftDocs/reliability-docs,
# articles/reliability/regions-list.md, "Programmatic name" column of the "All" tab, ms.date 2025-09-23;
# the list `az account list-locations --query "[].name"` gives for a subscription). Regions marked there as
# restricted or coming soon are kept: whether a subscription may use one is Azure's to say, a typo is ours.
# Sovereign clouds (US Gov, China) have their own lists and are not covered.
AZURE_REGIONS = frozenset(
    {
        "australiacentral", "australiacentral2", "australiaeast", "australiasoutheast", "austriaeast",
        "belgiumcentral", "brazilsouth", "brazilsoutheast", "canadacentral", "canadaeast", "centralindia",
        "centralus", "chilecentral", "denmarkeast", "eastasia", "eastus", "eastus2", "francecentral",
        "francesouth", "germanynorth", "germanywestcentral", "indonesiacentral", "israelcentral", "italynorth",
        "japaneast", "japanwest", "koreacentral", "koreasouth", "malaysiawest", "mexicocentral",
        "newzealandnorth", "northcentralus", "northeurope", "norwayeast", "norwaywest", "polandcentral",
        "qatarcentral", "southafricanorth", "southafricawest", "southcentralus", "southindia", "southeastasia",
        "spaincentral", "swedencentral", "switzerlandnorth", "switzerlandwest", "uaecentral", "uaenorth",
        "uksouth", "ukwest", "westcentralus", "westeurope", "westindia", "westus", "westus2", "westus3",
    }
)  # fmt: skip
# The provider's own region key, which its docs and issues use to set the region of a whole stack.
PROVIDER_LOCATION_KEY = "azure-native:location"
# Application Insights/Log Analytics accept these retention periods (days).
RETENTION_DAYS = (30, 60, 90, 120, 180, 270, 365, 550, 730)
# Azure: tag names up to 512 characters (128 on storage accounts), values up to 256,
# and none of <>%&\?/ in names.
TAG_NAME_FORBIDDEN = set("<>%&\\?/")
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


# A budget has at most five notifications (Consumption API, Budget.notifications); the program
# always adds a forecast alert, so four actual-cost alerts are left.
MAX_BUDGET_NOTIFICATIONS = 5
MAX_ACTUAL_ALERTS = MAX_BUDGET_NOTIFICATIONS - 1


def canonical_vm_size(raw: str) -> str | None:
    """The canonical spelling of an Azure VM size name in any case, or None if it is not one.

    Family letters upper, feature letters lower, version suffixes (`_v2`) lower, other suffix
    segments (accelerators such as `_A100`) upper, `_Promo` as Azure writes it:
    `STANDARD_DS3_V2` -> `Standard_DS3_v2`, `standard_nc24ads_a100_v4` -> `Standard_NC24ads_A100_v4`.
    """
    match = VM_SIZE_PATTERN.match(raw.strip())
    if not match:
        return None
    family, vcpus, constrained, features, tail = match.groups()

    def segment(part: str) -> str:
        if re.fullmatch(r"v\d+", part, re.IGNORECASE):
            return part.lower()
        return "Promo" if part.lower() == "promo" else part.upper()

    suffixes = "".join(f"_{segment(part)}" for part in tail.split("_") if part)
    return f"Standard_{family.upper()}{vcpus}{constrained or ''}{features.lower()}{suffixes}"


class Problem(NamedTuple):
    """One bad config value: its key, and the line that names the key, the value and what is allowed."""

    key: str
    text: str


class ConfigError(ValueError):
    """Config values are wrong; the message names, for each, the key, the value and what is allowed.

    `problems`: one per bad value (a single problem's message is its line alone, several are listed under
    "invalid config:"), so that callers checking more config can list theirs in the same error."""

    def __init__(self, *problems: Problem) -> None:
        self.problems: tuple[Problem, ...] = problems
        lines = [problem.text for problem in problems]
        super().__init__(lines[0] if len(lines) == 1 else "\n".join(["invalid config:", *lines]))


@dataclass(frozen=True)
class PlatformSettings:
    project: str
    stack: str
    location: str
    vm_size: str
    vm_priority: str
    min_nodes: int
    max_nodes: int
    idle_seconds_before_scale_down: int
    endpoint_auth_mode: str  # the Azure enum value: "Key" or "AADToken"
    public_network_access: str
    key_vault_purge_protection: bool
    log_retention_days: int
    extra_tags: Mapping[str, str] = field(default_factory=dict)
    budget_amount: float = 100.0
    budget_emails: tuple[str, ...] = ()
    budget_alert_percents: tuple[int, ...] = (80, 100)
    collected_data_retention_days: int = 30

    @property
    def tags(self) -> dict[str, str]:
        """Tags for every taggable resource; ours win over config's for the three we own."""
        return {
            **self.extra_tags,
            "project": self.project,
            "stack": self.stack,
            "managed-by": "pulumi",
        }

    @property
    def idle_time_iso(self) -> str:
        return f"PT{self.idle_seconds_before_scale_down}S"


def _fail(key: str, value: object, allowed: str) -> ConfigError:
    return ConfigError(
        Problem(key, f"config '{key}' is {value!r}: {allowed}. Fix it with `pulumi config set {key} <value>`.")
    )


def _int(key: str, raw: str, low: int, high: int) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise _fail(key, raw, f"expected a whole number from {low} to {high}") from None
    if not low <= value <= high:
        raise _fail(key, raw, f"expected a whole number from {low} to {high}")
    return value


def _choice(key: str, raw: str, allowed: tuple[str, ...]) -> str:
    if raw not in allowed:
        raise _fail(key, raw, "allowed values are " + ", ".join(allowed))
    return raw


def _bool(key: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    raise _fail(key, raw, "expected true or false")


def _tags(key: str, raw: str) -> dict[str, str]:
    """Tags come as an array of "name=value" strings: Pulumi.yaml cannot declare a map-typed key."""
    example = '["owner=ml-team", "cost-center=1234"]'
    tags: dict[str, str] = {}
    for item in _json_list(key, raw, example):
        name, sep, value = item.partition("=") if isinstance(item, str) else ("", "", "")
        name, value = name.strip(), value.strip()
        if not sep or not name:
            raise _fail(key, raw, f'each tag must be a "name=value" string, e.g. {example}')
        if len(name) > 128 or TAG_NAME_FORBIDDEN & set(name):
            raise _fail(key, raw, f"tag name {name!r} must be 1-128 characters without any of <>%&\\?/")
        if len(value) > 256:
            raise _fail(key, raw, f"tag {name!r} has a value longer than 256 characters")
        tags[name] = value
    return tags


def _json_list(key: str, raw: str, example: str) -> list[object]:
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError:
        raise _fail(key, raw, f"expected a JSON array, e.g. {example}") from None
    if not isinstance(parsed, list):
        raise _fail(key, raw, f"expected a JSON array, e.g. {example}")
    return parsed


def _emails(key: str, raw: str) -> tuple[str, ...]:
    emails = _json_list(key, raw, '["ml-team@example.com"]')
    bad = [e for e in emails if not isinstance(e, str) or not EMAIL_PATTERN.match(e)]
    if bad:
        raise _fail(key, raw, f"{bad[0]!r} is not an email address")
    return tuple(e for e in emails if isinstance(e, str))  # all are (checked above); the filter tells the type


def _percents(key: str, raw: str) -> tuple[int, ...]:
    values = _json_list(key, raw, "[50, 80, 100]")
    whole = [v for v in values if isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 1000]
    if not values or len(whole) != len(values):
        raise _fail(key, raw, "expected a non-empty array of whole percentages from 1 to 1000, e.g. [50, 80, 100]")
    repeated = sorted({v for v in whole if whole.count(v) > 1})
    if repeated:
        # Two alerts at one percentage would be one notification: say so instead of merging them silently.
        raise _fail(key, raw, f"each percentage once ({', '.join(map(str, repeated))} is repeated), e.g. [50, 80, 100]")
    percents = tuple(sorted(whole))
    if len(percents) > MAX_ACTUAL_ALERTS:
        raise _fail(
            key,
            raw,
            f"at most {MAX_ACTUAL_ALERTS} percentages: an Azure budget has at most "
            f"{MAX_BUDGET_NOTIFICATIONS} notifications and a forecast alert at 100% is always added",
        )
    return percents


def _amount(key: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise _fail(key, raw, "expected an amount in the billing currency, from 1 to 1000000") from None
    if not 1 <= value <= 1_000_000:
        raise _fail(key, raw, "expected an amount in the billing currency, from 1 to 1000000")
    return value


def _region(key: str, raw: str) -> str:
    """`raw` as a programmatic region name ("West Europe" -> westeurope), or ConfigError naming the
    closest known region, so that a typo fails at `pulumi preview` and not halfway through `pulumi up`."""
    region = raw.strip().lower().replace(" ", "")
    if region in AZURE_REGIONS:
        return region
    close = difflib.get_close_matches(region, sorted(AZURE_REGIONS), n=1, cutoff=0.75)
    hint = f"did you mean {close[0]}? " if close else ""
    raise _fail(
        key,
        raw,
        f"{hint}expected an Azure region's programmatic name such as westeurope or eastus2 "
        '(`az account list-locations --query "[].name"` lists them)',
    )


def location_of(get: Callable[[str], str | None], provider_location: str | None) -> str:
    """The stack's region from the project's `location` and the provider's `azure-native:location`.

    Either may be set; when both are, they must name the same region, so that neither is silently
    overridden. Neither set: DEFAULTS["location"]. Raises ConfigError (a typo, or the two disagree).
    """
    own = get("location")
    mine = _region("location", str(own)) if own is not None else None
    theirs = _region(PROVIDER_LOCATION_KEY, provider_location) if provider_location is not None else None
    if mine is not None and theirs is not None and mine != theirs:
        raise ConfigError(
            Problem(
                "location",
                f"config 'location' is {mine!r} but config '{PROVIDER_LOCATION_KEY}' is {theirs!r}: the stack has one "
                f"region. Keep one of them: `pulumi config rm {PROVIDER_LOCATION_KEY}` or `pulumi config rm location`, "
                f"or set both to the same region.",
            )
        )
    return mine or theirs or DEFAULTS["location"]


def load_settings(
    get: Callable[[str], str | None], project: str, stack: str, provider_location: str | None = None
) -> PlatformSettings:
    """Build settings from a config getter (`pulumi.Config().get` in the program) and the provider's
    region key (`pulumi.Config("azure-native").get("location")`).

    Raises ConfigError listing every bad value at once (one line each: the key, the value, what is allowed).
    """
    problems: list[Problem] = []

    def raw(key: str) -> str:
        value = get(key)
        return DEFAULTS[key] if value is None else str(value)

    def value(key: str, parse: Callable[[str], _T]) -> _T:
        """`parse` of the key's value; when that is a ConfigError, kept, `parse` of the key's default, so that
        every key is checked in one run (the settings are not returned then)."""
        try:
            return parse(raw(key))
        except ConfigError as error:
            problems.extend(error.problems)
            return parse(DEFAULTS[key])

    try:
        location = location_of(get, provider_location)
    except ConfigError as error:
        problems.extend(error.problems)
        location = DEFAULTS["location"]
    before = len(problems)
    min_nodes = value("minNodes", lambda v: _int("minNodes", v, 0, MAX_NODES_CAP))
    max_nodes = value("maxNodes", lambda v: _int("maxNodes", v, 1, MAX_NODES_CAP))
    # Compared only when both are the user's valid values: a bad one's stand-in is its default, not theirs.
    if len(problems) == before and max_nodes < min_nodes:
        problems.extend(_fail("maxNodes", max_nodes, f"must be at least minNodes ({min_nodes})").problems)
    settings = PlatformSettings(
        project=project,
        stack=stack,
        location=location,
        vm_size=value("vmSize", _vm_size),
        vm_priority=value("vmPriority", lambda v: _choice("vmPriority", v.strip(), VM_PRIORITIES)),
        min_nodes=min_nodes,
        max_nodes=max_nodes,
        # Azure wants at least 60 s; a week is already far past any sensible idle window.
        idle_seconds_before_scale_down=value(
            "idleSecondsBeforeScaleDown", lambda v: _int("idleSecondsBeforeScaleDown", v, 60, 7 * 24 * 3600)
        ),
        endpoint_auth_mode=value(
            "endpointAuthMode", lambda v: AUTH_MODES[_choice("endpointAuthMode", v.strip(), tuple(AUTH_MODES))]
        ),
        public_network_access=value(
            "publicNetworkAccess", lambda v: _choice("publicNetworkAccess", v.strip(), NETWORK_ACCESS)
        ),
        key_vault_purge_protection=value("keyVaultPurgeProtection", lambda v: _bool("keyVaultPurgeProtection", v)),
        log_retention_days=value("logRetentionDays", _retention),
        extra_tags=value("tags", lambda v: _tags("tags", v)),
        budget_amount=value("budgetAmount", lambda v: _amount("budgetAmount", v)),
        budget_emails=value("budgetEmails", lambda v: _emails("budgetEmails", v)),
        budget_alert_percents=value("budgetAlertPercents", lambda v: _percents("budgetAlertPercents", v)),
        # A lifecycle rule's daysAfterModificationGreaterThan is a whole number >= 0 (azure-rest-api-specs
        # storage DateAfterModification: multipleOf 1, minimum 0); 0 would keep nothing, so 1 to 100 years.
        collected_data_retention_days=value(
            "collectedDataRetentionDays", lambda v: _int("collectedDataRetentionDays", v, 1, 36500)
        ),
    )
    if problems:
        raise ConfigError(*problems)
    return settings


def _vm_size(raw: str) -> str:
    size = canonical_vm_size(raw)
    if size is None:
        raise _fail(
            "vmSize",
            raw.strip(),
            "expected an Azure VM size name such as Standard_DS3_v2 or Standard_D4s_v5 (any case)",
        )
    return size


def _retention(raw: str) -> int:
    retention = _int("logRetentionDays", raw, 30, 730)
    if retention not in RETENTION_DAYS:
        raise _fail("logRetentionDays", retention, "allowed values are " + ", ".join(map(str, RETENTION_DAYS)))
    return retention
