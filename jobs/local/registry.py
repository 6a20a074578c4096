"""The local model registry of one environment: MLflow's own tracking store and model registry, on SQLite.

    <root>/mlflow.db        runs (the training runs, with their metrics and tags), registered models, their
                            versions (with the lineage tags, jobs/lineage.py model_tags) and aliases
    <root>/artifacts/       each run's artifacts (model/, report.html, the figures, run.json) and each copied
                            version's MLflow model (<root>/artifacts/versions/<id>/model/)
    <root>/registry.lock    held by every access: one command at a time reads or writes the store

`<root>` is .local/mlflow/<env> (jobs/local/places.py): dev's gets the training runs and `register`'s versions,
prod's only what `promote` copies (jobs/local/promotion.py). MLflow's own client reads it, and its UI shows it
(`jobs ui`). A version's MLflow model is its run's `model` artifact, so a version is exactly the model its run
logged; aliases record what serves where (`serving`, `previous`: jobs/local/backend.py).

Why a lock around every access, reads included: MLflow creates a new SQLite store's tables on first use (its
alembic migrations), which two processes doing at once break; and "is this run registered?" with "add the
version" must be one step, so that concurrent registers of one run give one version (tests/jobs/
test_local_concurrency.py).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobs.commands import jobs_command
from jobs.errors import JobsError
from jobs.local.locking import exclusive

if TYPE_CHECKING:
    from mlflow import MlflowClient

# The experiment the training runs are logged in, and the artifact folder of a version's MLflow model.
EXPERIMENT = "heart-failure-automl training"
MODEL_ARTIFACT = "model"
# A training run's MLflow run carries the project's run id under this tag: how it is found again.
RUN_TAG = "training_run"


@dataclass(frozen=True)
class ModelVersion:
    """One registered version: `path` is the folder holding its MLflow model as `model/`; `tags` its lineage
    tags; `aliases` the registry's aliases that point at it."""

    name: str
    version: int
    path: Path
    tags: dict[str, str]
    aliases: tuple[str, ...] = ()

    @property
    def model_dir(self) -> Path:
        return self.path / MODEL_ARTIFACT


def _quiet_mlflow() -> None:
    """Before MLflow is imported: no usage telemetry (it would connect beyond this machine)."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def _blank_store(db: Path) -> None:
    """Put a new, empty MLflow store at `db`: a copy of a blank one made once per MLflow version on this machine.

    MLflow makes a new SQLite store by running its whole chain of alembic migrations (mlflow/store/db/utils.py
    _initialize_tables), seconds of work per store; every environment of every checkout would repeat it. The
    blank store is made aside and renamed, under a lock, so a half-made one is never copied.
    """
    import logging

    import mlflow
    from mlflow import MlflowClient

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "heart-failure-automl"
    blank = cache / f"mlflow-{mlflow.__version__}-blank.db"
    with exclusive(cache / f"{blank.name}.lock", "creating a blank MLflow store", print):
        if not blank.is_file():
            aside = blank.with_name(f".{uuid.uuid4().hex}.db")
            for noisy in ("mlflow.store.db.utils", "alembic"):
                logging.getLogger(noisy).setLevel(logging.WARNING)
            client = MlflowClient(tracking_uri=f"sqlite:///{aside}", registry_uri=f"sqlite:///{aside}")
            client.search_experiments()  # creates the tracking tables
            client.search_registered_models()  # and checks the registry's, in the same file
            # MLflow's "Default" experiment names an artifact folder in the directory it was made from, which is
            # nobody's here: deleted (hidden), it is not offered in the UI. The runs go to EXPERIMENT.
            client.delete_experiment("0")
            aside.rename(blank)
    aside = db.with_name(f".{uuid.uuid4().hex}.db")
    shutil.copyfile(blank, aside)
    aside.rename(db)


class LocalRegistry:
    """The MLflow store under `root`; every method holds `root`/registry.lock for its whole access."""

    def __init__(self, root: Path, say: Callable[[str], None] = print, filled_by: str | None = None) -> None:
        """`filled_by`: the commands that put versions here, for the message when there are none (default:
        `train` and `register`)."""
        self.root = root
        self.filled_by = filled_by or (
            f"`{jobs_command('train --target local')}` and `{jobs_command('register --target local')}`"
        )
        self.db = root / "mlflow.db"
        self.artifacts = root / "artifacts"
        self.lock_file = root / "registry.lock"
        self.say = say

    @property
    def uri(self) -> str:
        """The store's URI for MLflow (tracking and registry alike): sqlite:////abs/path/mlflow.db."""
        return f"sqlite:///{self.db.resolve()}"

    @contextmanager
    def session(self, doing: str) -> Iterator[MlflowClient]:
        """An MlflowClient on this store, with the lock held; `doing` completes "another command is ..."."""
        _quiet_mlflow()
        from mlflow import MlflowClient

        with exclusive(self.lock_file, doing, self.say):
            self.artifacts.mkdir(parents=True, exist_ok=True)
            if not self.db.is_file():
                _blank_store(self.db)
            yield MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)

    # -- versions --------------------------------------------------------------------------

    def versions(self, name: str) -> list[ModelVersion]:
        """Every version of `name`, oldest first ([] when none, or no store yet)."""
        if not self.db.is_file():
            return []
        with self.session(f"reading the registry {self.root}") as client:
            return _versions(client, name)

    def get(self, name: str, version: int | None = None) -> ModelVersion:
        """Version `version` of `name` (None: the latest); JobsError naming the registered ones otherwise."""
        return pick(self.versions(name), name, version, f"{self.root}; {self.filled_by} put versions there")

    def by_alias(self, name: str, alias: str) -> ModelVersion | None:
        """The version `alias` points at, or None."""
        return next((v for v in self.versions(name) if alias in v.aliases), None)

    def move_aliases(self, name: str, aliases: Mapping[str, int | None]) -> None:
        """Point each alias at its version (None: remove the alias), in one locked step."""
        with self.session(f"updating aliases of {name}") as client:
            for alias, version in aliases.items():
                if version is not None:
                    client.set_registered_model_alias(name, alias, str(version))
                elif alias in client.get_registered_model(name).aliases:
                    client.delete_registered_model_alias(name, alias)

    # -- writes ----------------------------------------------------------------------------

    def log_training_run(self, run_dir: Path, info: Mapping[str, Any]) -> str:
        """The MLflow run of the project's training run in `run_dir` (its run.json read into `info`), logged now
        unless it is already: metrics, the lineage tags of the run, and its files as artifacts (model/,
        report.html, figures, run.json). Returns the MLflow run id. Idempotent; a run a crash left unfinished
        is logged again from scratch."""
        with self.session(f"logging training run {info['run_id']}") as client:
            return _logged_run(client, self.artifacts, run_dir, info)

    def register(self, name: str, run_id: str, tags: Mapping[str, str]) -> tuple[ModelVersion, bool]:
        """A version of `name` from MLflow run `run_id`'s model artifact, with `tags`; returns it and whether it
        is new. A training run registers once (matched on its `training_run` tag), also when several processes
        register it at the same moment (they take turns on the lock)."""
        with self.session(f"registering a version of {name}") as client:
            for existing in _versions(client, name):
                if existing.tags.get(RUN_TAG) == tags.get(RUN_TAG):
                    return existing, False
            source = f"{client.get_run(run_id).info.artifact_uri}/{MODEL_ARTIFACT}"
            return _new_version(client, name, source, run_id, tags), True

    def copy_in(
        self, name: str, model: ModelVersion, tags: Mapping[str, str], same: Callable[[ModelVersion], bool]
    ) -> tuple[ModelVersion, bool]:
        """A version of `name` holding a copy of `model`'s MLflow model, with `tags`, unless a version for which
        `same` is true exists already: returns it and whether it is new.

        The model's files are copied into this store's artifacts (aside, then renamed), so the copy needs
        nothing of the store it came from; a copy that fails leaves no version and no files. (MLflow's own
        client copies a version's files the same way when the registry is another workspace than the tracking
        server: mlflow/tracking/client.py, _create_model_version, _upload_artifacts_to_databricks.)
        """
        with self.session(f"adding a version of {name}") as client:
            for existing in _versions(client, name):
                if same(existing):
                    return existing, False
            folder = self.artifacts / "versions" / uuid.uuid4().hex
            staging = folder.with_name(f".{folder.name}")
            try:
                shutil.copytree(model.model_dir, staging / MODEL_ARTIFACT)
                staging.rename(folder)
                return _new_version(client, name, (folder / MODEL_ARTIFACT).as_uri(), None, tags), True
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)
                raise
            finally:
                shutil.rmtree(staging, ignore_errors=True)


def pick(versions: list[ModelVersion], name: str, version: int | None, where: str) -> ModelVersion:
    """`version` among `versions` of `name` (None: the latest); JobsError naming the registered ones, or `where`
    (the store, and what fills it) when there are none."""
    if not versions:
        raise JobsError(f"no model named {name} is registered in {where}")
    if version is None:
        return versions[-1]
    for candidate in versions:
        if candidate.version == version:
            return candidate
    raise JobsError(
        f"model {name} has no version {version}; registered versions are " + ", ".join(str(v.version) for v in versions)
    )


def _versions(client: MlflowClient, name: str) -> list[ModelVersion]:
    from mlflow.utils.file_utils import local_file_uri_to_path

    found = client.search_model_versions(f"name = '{name}'")
    # The registered model has the aliases (its search_model_versions leaves ModelVersion.aliases empty).
    aliases = client.get_registered_model(name).aliases if found else {}
    versions = []
    for mv in found:
        model_dir = Path(local_file_uri_to_path(mv.source))
        named = tuple(sorted(alias for alias, version in aliases.items() if str(version) == str(mv.version)))
        versions.append(ModelVersion(name, int(mv.version), model_dir.parent, dict(mv.tags), named))
    return sorted(versions, key=lambda v: v.version)


def _new_version(
    client: MlflowClient, name: str, source: str, run_id: str | None, tags: Mapping[str, str]
) -> ModelVersion:
    from mlflow.exceptions import MlflowException
    from mlflow.utils.file_utils import local_file_uri_to_path

    model_dir = Path(local_file_uri_to_path(source))
    if not (model_dir / "MLmodel").is_file():
        raise JobsError(f"{model_dir} is not an MLflow model (no MLmodel file)")
    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name)
    mv = client.create_model_version(name, source, run_id=run_id, tags=dict(tags))
    return ModelVersion(name, int(mv.version), model_dir.parent, dict(mv.tags), tuple(mv.aliases))


def _experiment_id(client: MlflowClient, artifacts: Path) -> str:
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is not None:
        return str(experiment.experiment_id)
    # Its own artifact folder, not MLflow's default (./mlruns in the current directory).
    return str(client.create_experiment(EXPERIMENT, artifact_location=(artifacts / "runs").as_uri()))


def _logged_run(client: MlflowClient, artifacts: Path, run_dir: Path, info: Mapping[str, Any]) -> str:
    from mlflow.entities import Metric, RunTag

    from jobs.local.lineage import local_run

    training = local_run(info)
    experiment = _experiment_id(client, artifacts)
    for run in client.search_runs([experiment], f"tags.{RUN_TAG} = '{training.name}'"):
        if run.info.status == "FINISHED":
            return str(run.info.run_id)
        client.delete_run(run.info.run_id)  # a crash left it half-logged: log it again
    run = client.create_run(experiment, run_name=training.name, tags={RUN_TAG: training.name})
    run_id = str(run.info.run_id)
    at = int(run.info.start_time)
    client.log_batch(
        run_id,
        metrics=[Metric(key, value, at, 0) for key, value in sorted(training.metrics.items())],
        tags=[RunTag(key, value[:5000]) for key, value in sorted(training.tags.items())]
        + [RunTag("best_learner", training.best_child)],
    )
    for child in sorted(run_dir.iterdir()):
        if child.is_dir():
            client.log_artifacts(run_id, str(child), child.name)
        else:
            client.log_artifact(run_id, str(child))
    client.set_terminated(run_id, "FINISHED")
    return run_id
