"""Pulumi entry point: read settings, build the platform, export outputs. Nothing else."""

import sys
from pathlib import Path

# Pulumi runs this folder as a script (sys.path[0] is infra/); the modules import each other
# as the `infra` package, the way the tests import them.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pulumi

from infra.environments import load_config
from infra.platform import MlPlatform
from infra.settings import ConfigError

try:
    # Every bad value of both, settings and environment, in one error.
    settings, environment = load_config(
        pulumi.Config().get,
        pulumi.get_project(),
        pulumi.get_stack(),
        provider_location=pulumi.Config("azure-native").get("location"),
    )
except ConfigError as error:
    # RunError ends the program with this message alone, without a Python stack trace.
    raise pulumi.RunError(str(error)) from None

platform = MlPlatform("heartfailure", settings, environment)
for key, value in platform.outputs.items():
    pulumi.export(key, value)
