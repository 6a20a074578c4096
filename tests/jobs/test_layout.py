"""jobs/ has one axis, the target: what only Azure or only the local target does lives under jobs/azure/ or
jobs/local/, and the core both share (the gate and lineage tags, drift and its report) imports neither."""

from __future__ import annotations

import ast

import pytest

from tests.jobs.conftest import ROOT

SHARED_CORE = ["jobs/lineage.py", "jobs/monitoring/check.py", "jobs/monitoring/drift.py", "jobs/monitoring/report.py"]
TARGET_SPECIFIC = ("jobs.azure", "jobs.local", "azure", "mlflow", "flaml")


def _imports(path: str) -> set[str]:
    tree = ast.parse((ROOT / path).read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", SHARED_CORE)
def test_the_shared_core_imports_no_target(path):
    found = sorted(name for name in _imports(path) if name.startswith(TARGET_SPECIFIC))
    assert found == [], f"{path} imports {found}: that code belongs under jobs/azure/ or jobs/local/"


def test_no_target_half_is_left_in_the_shared_monitoring_folder():
    assert sorted(p.name for p in (ROOT / "jobs" / "monitoring").glob("*.py")) == [
        "__init__.py",
        "check.py",
        "drift.py",
        "report.py",
    ]
