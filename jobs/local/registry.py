"""The local model registry: a documented folder layout.

    .local/registry/<model name>/<version>/model/    the MLflow model, as trained
    .local/registry/<model name>/<version>/tags.json lineage: run, data version, metrics, commit, settings

Why a folder and not MLflow's registry: MLflow's registry needs a database-backed tracking
store (SQLAlchemy, a server or SQLite), which mlflow-skinny leaves out; a folder is readable
with `ls` and `cat`, and versions are integers as in Azure ML. A version appears atomically
(written aside, then renamed), so a failed register leaves nothing half-written, and a lock
(`<model name>/.lock`) makes the check "is this run registered?" and the new version one step,
so that concurrent registers of one run give one version.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from jobs.commands import jobs_command
from jobs.errors import JobsError, read_json
from jobs.local.locking import exclusive


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: int
    path: Path
    tags: dict[str, str]

    @property
    def model_dir(self) -> Path:
        return self.path / "model"


class LocalRegistry:
    def __init__(self, root: Path) -> None:
        self.root = root

    def versions(self, name: str) -> list[ModelVersion]:
        folder = self.root / name
        if not folder.is_dir():
            return []
        found = []
        for child in folder.iterdir():
            if child.is_dir() and child.name.isdigit() and (child / "tags.json").is_file():
                found.append(ModelVersion(name, int(child.name), child, read_json(child / "tags.json")))
        return sorted(found, key=lambda v: v.version)

    def get(self, name: str, version: int | None = None) -> ModelVersion:
        versions = self.versions(name)
        if not versions:
            raise JobsError(
                f"no model named {name} is registered locally; run "
                f"`{jobs_command('train --target local')}` and `{jobs_command('register --target local')}` "
                "first"
            )
        if version is None:
            return versions[-1]
        for candidate in versions:
            if candidate.version == version:
                return candidate
        raise JobsError(
            f"model {name} has no version {version}; registered versions are "
            + ", ".join(str(v.version) for v in versions)
        )

    def register(
        self, name: str, model_dir: Path, tags: dict[str, str], say: Callable[[str], None] = print
    ) -> tuple[ModelVersion, bool]:
        """Add a version; returns it and whether it is new. The same training run registers once, also when
        several processes register it at the same moment (they take turns on a file lock)."""
        if not (model_dir / "MLmodel").is_file():
            raise JobsError(f"{model_dir} is not an MLflow model (no MLmodel file)")
        folder = self.root / name
        with exclusive(folder / ".lock", f"registering a version of {name}", say):
            for existing in self.versions(name):
                if existing.tags.get("training_run") == tags.get("training_run"):
                    return existing, False
            staging = folder / f".staging-{uuid.uuid4().hex[:8]}"
            try:
                shutil.copytree(model_dir, staging / "model")
                (staging / "tags.json").write_text(json.dumps(tags, indent=2, sort_keys=True))
                version = max((v.version for v in self.versions(name)), default=0) + 1
                staging.rename(folder / str(version))
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        return self.get(name, version), True
