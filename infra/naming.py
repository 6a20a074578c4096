"""Azure resource names for a stack.

Scheme: `<type prefix>-<project>-<stack>-<suffix>`, squeezed into each resource type's rules.
The suffix is 6 random lowercase letters and digits drawn once per stack lifetime (a
`random.RandomString` in the stack's state):

- two stacks never share a globally unique name (storage, key vault, registry) or a
  regionally unique one (endpoint), whatever their project and stack names;
- `pulumi destroy` deletes the suffix with everything else, so the next `pulumi up` of the
  same stack draws a new one and never meets the soft-deleted workspace or key vault, or the
  endpoint name Azure keeps reserved for a while after delete;
- the readable part says whose resource it is in the portal.

These are pure functions so that tests can check every rule for any input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SUFFIX_LENGTH = 6


@dataclass(frozen=True)
class NameRule:
    """How one resource type's names are built and what Azure allows for them."""

    prefix: str
    min_len: int
    max_len: int
    pattern: re.Pattern[str]
    separator: str = "-"
    tail: str = ""

    def build(self, project: str, stack: str, suffix: str) -> str:
        sep = self.separator
        fixed = len(self.prefix) + len(sep) * 2 + len(suffix) + len(self.tail)
        body = _body(project, stack, self.max_len - fixed, keep_hyphens=bool(sep))
        parts = [self.prefix, body, suffix] if body else [self.prefix, suffix]
        name = sep.join(parts) + self.tail
        return name

    def is_valid(self, name: str) -> bool:
        return self.min_len <= len(name) <= self.max_len and bool(self.pattern.fullmatch(name))


def _body(project: str, stack: str, budget: int, keep_hyphens: bool) -> str:
    """`<project>-<stack>` in at most `budget` characters, shortening the project first:
    the stack is what tells two stacks' resources apart in the portal."""
    proj, stk = _slug(project, keep_hyphens), _slug(stack, keep_hyphens)
    sep = "-" if keep_hyphens else ""
    if len(stk) >= budget:
        return stk[:budget].strip("-")
    room = budget - len(stk) - len(sep)
    proj = proj[:room].strip("-") if room > 0 else ""
    return (f"{proj}{sep}{stk}" if proj else stk).strip("-")


def _slug(text: str, keep_hyphens: bool) -> str:
    lowered = text.lower()
    if not keep_hyphens:
        return re.sub(r"[^a-z0-9]", "", lowered)
    return re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9]", "-", lowered)).strip("-")


_ALNUM_HYPHEN = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
# An Azure ML registry name (see RULES["ml_registry"]); jobs/azure/stack_outputs.py checks outputs with it.
ML_REGISTRY_NAME = r"[a-zA-Z0-9][a-zA-Z0-9_-]{2,31}"

RULES: dict[str, NameRule] = {
    # 1-90, letters, digits, _-.(); not ending in '.'. We use the lowercase-hyphen subset.
    "resource_group": NameRule("rg", 1, 90, re.compile(r"[A-Za-z0-9_.()-]*[A-Za-z0-9_()-]")),
    # 3-24, lowercase letters and digits only; globally unique.
    "storage_account": NameRule("st", 3, 24, re.compile(r"[a-z0-9]+"), separator=""),
    # 3-24, letters, digits, '-'; starts with a letter, ends with a letter or digit, no '--'.
    "key_vault": NameRule("kv", 3, 24, re.compile(r"[a-zA-Z](?!.*--)[a-zA-Z0-9-]*[a-zA-Z0-9]")),
    # 4-63, letters, digits, '-'; alphanumeric first and last.
    "log_analytics": NameRule("log", 4, 63, re.compile(_ALNUM_HYPHEN)),
    # 1-260; no %&\?/ or control characters; not ending in space or '.'.
    "app_insights": NameRule("appi", 1, 260, re.compile(r"[^%&\\?/\x00-\x1f]*[^%&\\?/\x00-\x1f .]")),
    # 5-50, letters and digits; globally unique.
    "container_registry": NameRule("cr", 5, 50, re.compile(r"[a-zA-Z0-9]+"), separator=""),
    # 3-33, letters, digits, '_', '-'; alphanumeric first.
    "ml_workspace": NameRule("mlw", 3, 33, re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_-]*")),
    # 3-24, letters, digits, '-'; starts with a letter; the part after the last '-' must hold a
    # letter (Azure rejects names ending in '-<digits>'). The fixed tail takes care of that.
    "compute_cluster": NameRule("cpu", 3, 24, re.compile(r"[a-zA-Z](?![a-zA-Z0-9-]*-\d+$)[a-zA-Z0-9-]*"), tail="-aml"),
    # Azure ML registry: the REST spec's registryName is ^[a-zA-Z0-9][a-zA-Z0-9\-_]{2,32}$ (3-33 characters;
    # azure-rest-api-specs machinelearningservices stable/2025-12-01/registries.json), the docs say 2-32
    # (how-to-manage-registries, "Choose a name"): both hold for 3-32. Unique in the Entra tenant, fixed.
    "ml_registry": NameRule("mlr", 3, 32, re.compile(ML_REGISTRY_NAME)),
    # 3-32, letters, digits, '-'; starts with a letter, ends with a letter or digit.
    "online_endpoint": NameRule("hf", 3, 32, re.compile(r"[a-zA-Z][a-zA-Z0-9-]*[a-zA-Z0-9]")),
}


def resource_names(project: str, stack: str, suffix: str) -> dict[str, str]:
    """Every resource's name for this project, stack and random suffix."""
    return {kind: rule.build(project, stack, suffix) for kind, rule in RULES.items()}


def invalid_names(names: dict[str, str]) -> list[str]:
    """The kinds whose name breaks Azure's rules (empty when all are fine)."""
    return [kind for kind, name in names.items() if not RULES[kind].is_valid(name)]
