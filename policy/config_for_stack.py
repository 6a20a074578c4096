"""Print the policy pack's config for a stack, from its Pulumi config (so the policy checks
public network access against what the stack asks for).

    python policy/config_for_stack.py dev > policy-config.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def pack_config(stack: str) -> dict[str, dict[str, object]]:
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    stack_file = ROOT / f"Pulumi.{stack}.yaml"
    if not stack_file.is_file():
        raise SystemExit(f"error: {stack_file.name} does not exist; create the stack with `pulumi stack init {stack}`")
    values = (yaml.safe_load(stack_file.read_text()) or {}).get("config") or {}

    def setting(key: str) -> object:
        return values.get(f"{project['name']}:{key}", project["config"][key]["default"])

    return {"public-network-access-as-configured": {"publicNetworkAccess": setting("publicNetworkAccess")}}


if __name__ == "__main__":
    print(json.dumps(pack_config(sys.argv[1] if len(sys.argv) > 1 else "dev"), indent=2))
