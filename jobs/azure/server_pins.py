"""Does what `jobs deploy --target azure` adds to an AutoML model's environment fit the model's own pins?

The deployment's environment is the model's conda.yaml plus the scoring server and inference-schema
(specs.scoring_conda). Azure builds its image with pip inside the model's Python; a pin of the model that
the server's own requirements forbid (AutoML pinning Flask 2 or pydantic 1, say) fails that build after
minutes, with the message deep in the image build log (review F9). This checks the direct requirements of
what is added against the model's exact pins before anything is sent, and names each clash.

What it cannot check offline: the requirements of the model's own packages (azureml-automl-runtime's
dependency tree is not here), so a clash two levels down still shows only in Azure's image build. The
live acceptance run (docs/azure-monitoring.md, "What the live run proves") is what proves a real
AutoML environment builds.

REQUIRES is the Requires-Dist and Requires-Python of the pinned releases (scoring/conda.yaml), Linux and
no extras, as their wheels' METADATA says; tests/jobs/test_server_pins.py compares it with the metadata
installed in .venv-scoring, so a pin bump that forgets it fails there.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

# package added -> (Requires-Python, {requirement name: specifier}), Linux, no extras.
REQUIRES: dict[str, tuple[str, dict[str, str]]] = {
    "azureml-inference-server-http": (
        ">=3.9",
        {
            "flask": "~=3.1.0",
            "flask-cors": "~=6.0.0",
            "gunicorn": ">=23.0.0",
            "inference-schema": "~=1.8.0",
            "opentelemetry-sdk": "==1.33.0",
            "opentelemetry-api": "==1.33.0",
            "opentelemetry-semantic-conventions": "",
            "azure-monitor-opentelemetry-exporter": "",
            "pydantic": "~=2.12.0",
            "pydantic-settings": "",
            "werkzeug": ">=3.0.3",
            "certifi": ">=2024.7.4",
        },
    ),
    "inference-schema": (
        ">=3.8",
        {"python-dateutil": ">=2.5.3", "pytz": ">=2017.2", "wrapt": "<=1.16.0,>=1.14.0"},
    ),
}
_CONDA_PIN = re.compile(r"^(?:[\w.-]+::)?(?P<name>[A-Za-z0-9_.-]+)\s*==?\s*(?P<version>[0-9][^=\s]*)")


def model_pins(model_conda: dict[str, Any]) -> dict[str, str]:
    """{normalized name: version} of the exact pins in a model's conda.yaml: `name==v` in its pip list and
    `name=v` (or `name==v`) among its conda dependencies, python included."""
    pins: dict[str, str] = {}
    for dep in model_conda.get("dependencies", []):
        if isinstance(dep, dict):
            for line in dep.get("pip", []):
                try:
                    req = Requirement(str(line))
                except InvalidRequirement:
                    continue
                exact = [s.version for s in req.specifier if s.operator == "=="]
                if exact:
                    pins[canonicalize_name(req.name)] = exact[0]
        elif (match := _CONDA_PIN.match(str(dep))) is not None:
            pins[canonicalize_name(match["name"])] = match["version"]
    return pins


def clashes(model_conda: dict[str, Any], added: Iterable[str]) -> list[str]:
    """Each way the packages in `added` (pip requirements specs.scoring_conda adds) cannot install next to the
    model's exact pins, in words naming both sides; empty when none is known."""
    pins = model_pins(model_conda)
    found = []
    for requirement in added:
        package = canonicalize_name(Requirement(requirement).name)
        if package not in REQUIRES:
            continue
        python, needs = REQUIRES[package]
        checks = [("python", python), *((name, spec) for name, spec in needs.items() if spec)]
        for name, spec in checks:
            pinned = pins.get(name)
            if pinned is None:
                continue
            try:
                fits = SpecifierSet(spec).contains(Version(pinned), prereleases=True)
            except InvalidVersion:
                continue
            if not fits and name == "python":
                # A conda python pin "3.9" means any 3.9.x: compare the release with the micro filled in.
                fits = SpecifierSet(spec).contains(Version(f"{pinned}.99"), prereleases=True)
            if not fits:
                found.append(f"{requirement} needs {name}{spec}, but the model pins {name} {pinned}")
    return found
