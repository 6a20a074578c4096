"""Promote one tested model version from the dev workspace to prod through the shared Azure ML registry.

The same artifact, not a retrained one: the dev workspace's MLflow model is shared to the registry (it keeps its
MLflow type and gains every lineage tag plus promoted.*), the scoring environment built from its conda.yaml is
created in the registry once per content, and prod's endpoint deploys both from there, blue/green, keeping the
slot that served before for `rollback`. The shape of Azure ML's "Share models, components, and environments
across workspaces with registries" (MicrosoftDocs/azure-ai-docs, articles/machine-learning/
how-to-share-models-pipelines-across-workspaces-with-registries.md): `ml_client.models.share(...)` from the
workspace, then a deployment whose model is `azureml://registries/<registry>/models/<name>/versions/<v>`.

Which versions may go is jobs/promotion_rules.py's rule, the same for the local target.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from jobs.azure import monitoring, specs
from jobs.azure.rollout import AzureCall, BlueGreenRollout, model_conda, with_operating_point
from jobs.backend import DeployOptions
from jobs.errors import JobsError
from jobs.lineage import MODEL_NAME
from jobs.promotion_rules import PROMOTED_FROM, check_promotable, promoted_at, promotion_tags, same_promotion

# The model type a shared copy must keep: an MLflow model deploys without a scoring script of its own and is what
# AutoML registers (azure-ai-ml AssetTypes.MLFLOW_MODEL; the docs page above creates both copies as mlflow_model).
MLFLOW_MODEL = "mlflow_model"


def utc_now() -> datetime:
    return datetime.now(UTC)


def workspace_uri(subscription_id: str, resource_group: str, workspace: str) -> str:
    """A workspace as promoted.from names it, in Azure ML's own asset-URI form (azureml://subscriptions/<s>/
    resourceGroups/<rg>/workspaces/<w>, the prefix of a workspace asset's full reference in how-to-manage-models)."""
    return f"azureml://subscriptions/{subscription_id}/resourceGroups/{resource_group}/workspaces/{workspace}"


def registry_uri(registry: str, kind: str, name: str, version: str) -> str:
    """A registry asset's reference, as a deployment or a job names it (the docs page above: azureml://registries/
    <registry-name>/models/<name>/versions/<version>; environments likewise)."""
    return f"azureml://registries/{registry}/{kind}/{name}/versions/{version}"


def environment_version(env: Any) -> str:
    """A registry environment's version from its content (image and conda file): the same content is the same
    version, so creating it again is a lookup, and a changed one never overwrites what prod deployed before.
    Registry assets are versioned and a version, once created, is not replaced (the docs page above: "If you get
    an error that an environment with this name and version already exists in the registry, ... specify a
    different version")."""
    content = json.dumps({"image": env.image, "conda": env.conda_file}, sort_keys=True)
    return hashlib.sha256(content.encode()).hexdigest()[:16]


@dataclass
class Places:
    """Where a promotion reads and writes: MLClients on the dev workspace, the registry and the prod workspace
    (jobs/azure/session.py; fakes in tests), the registry's name, the source workspace's URI (promoted.from) and
    prod's endpoint."""

    dev: Any
    registry: Any
    prod: Any
    registry_name: str
    source: str
    endpoint_name: str


@dataclass
class AzurePromotion:
    """One promotion: `call` wraps each Azure call (retries, refusals as messages: AzureBackend._call), `rollout`
    deploys on prod, `by` names who promotes, `now` says when (UTC)."""

    places: Places
    call: AzureCall
    rollout: BlueGreenRollout
    by: str
    say: Callable[[str], None] = print
    now: Callable[[], datetime] = utc_now

    def run(self, version: str, options: DeployOptions) -> str:
        """Promote MODEL_NAME `version` of the dev workspace; return the prod slot that now takes the traffic.

        JobsError (nothing shared, nothing deployed) for an unknown version, one that did not pass the gate or
        uses a leaking column (promotion_rules), and a registry version of the same number that came from
        elsewhere; then the rollout's errors (a failed smoke test moves no traffic). Idempotent: a version
        already shared by this promotion is reused, and the environment is looked up by its content.
        """
        what = f"{MODEL_NAME} version {version}"
        try:
            model = self.call(
                "reading the model in dev", lambda: self.places.dev.models.get(MODEL_NAME, version=version)
            )
        except ResourceNotFoundError:
            raise JobsError(
                f"{what} is not registered in the dev workspace ({self.places.source}); `az ml model list "
                f"--name {MODEL_NAME}` lists the versions there. Nothing was shared or deployed."
            ) from None
        tags = {k: str(v) for k, v in (model.tags or {}).items()}
        check_promotable(what, tags)
        options = with_operating_point(options, tags, version)  # before anything is shared
        shared = self.share_model(version, tags)
        environment = self.share_environment(version, options)
        model_ref = registry_uri(self.places.registry_name, "models", MODEL_NAME, version)
        self.say(f"deploying {model_ref} to {self.places.endpoint_name} in prod")
        return self.rollout.run_promoted(
            self.places.endpoint_name, version, dict(shared.tags or {}), model_ref, environment, options
        )

    def share_model(self, version: str, tags: dict[str, str]) -> Any:
        """The registry's copy of dev's `version` with every lineage tag and promoted.*: shared now, or reused.

        ModelOperations.share imports the workspace asset into the registry under the same name and version
        (azure-ai-ml 1.35.2 operations/_model_operations.py: a WorkspaceAssetReference posted to the registry's
        /import, refused by the SDK itself when the registry has that version already); the import names only the
        source asset, so the tags are written on the copy afterwards with create_or_update through the registry
        client, as Azure's own asset pipeline updates a registry model's mutable metadata (Azure/azureml-assets
        pull request 1098, update_model_metadata: tags and description of an existing registry model version).
        """
        places = self.places
        existing = self._registry_model(version)
        if existing is not None:
            found = {k: str(v) for k, v in (existing.tags or {}).items()}
            if same_promotion(found, places.source, version, tags):
                self.say(f"already in registry {places.registry_name}: {MODEL_NAME} version {version}, reused")
                return existing
            if PROMOTED_FROM in found or found.get("training_run") != tags.get("training_run"):
                raise JobsError(
                    f"registry {places.registry_name} already has {MODEL_NAME} version {version}, and it is another "
                    f"model (promoted.from {found.get(PROMOTED_FROM, 'not recorded')}, promoted.from_version "
                    f"{found.get('promoted.from_version', 'not recorded')}, training_run "
                    f"{found.get('training_run', 'not recorded')}; this one is {places.source} version {version}, "
                    f"training_run {tags.get('training_run')}). A registry version is never replaced: look at it "
                    f"with `az ml model show --registry-name {places.registry_name} --name {MODEL_NAME} --version "
                    f"{version}`. Nothing was shared or deployed."
                )
            # The same training run without promoted.*: a promotion that stopped between the share and the tags.
            self.say(f"{MODEL_NAME} version {version} is in the registry without its promotion tags; adding them")
        else:
            self.say(f"sharing {MODEL_NAME} version {version} from {places.source} to registry {places.registry_name}")
            self.call(
                "sharing the model to the registry",
                lambda: places.dev.models.share(
                    name=MODEL_NAME,
                    version=version,
                    registry_name=places.registry_name,
                    share_with_name=MODEL_NAME,
                    share_with_version=version,
                ),
            )
            existing = self._registry_model(version)
            if existing is None:
                raise JobsError(
                    f"the registry does not show {MODEL_NAME} version {version} after sharing it; run again"
                )
        kind = str(getattr(existing, "type", None) or MLFLOW_MODEL)
        if kind != MLFLOW_MODEL:
            raise JobsError(f"the registry's copy of {MODEL_NAME} version {version} is a {kind}, not an {MLFLOW_MODEL}")
        existing.tags = promotion_tags(tags, places.source, version, self.by, promoted_at(self.now()))
        return self.call(
            "recording the lineage on the registry's copy", lambda: places.registry.models.create_or_update(existing)
        )

    def _registry_model(self, version: str) -> Any | None:
        try:
            return self.call(
                "looking the model up in the registry",
                lambda: self.places.registry.models.get(MODEL_NAME, version=version),
            )
        except ResourceNotFoundError:
            return None

    def share_environment(self, version: str, options: DeployOptions) -> str:
        """The registry environment prod deploys with (dev's scoring environment for this model: azmlinfsrv and the
        model's own conda.yaml), created once per content; returns its azureml://registries/... reference.

        Environments are created in a registry with the same create_or_update as in a workspace, through a client
        on the registry (the docs page above, "Create environment in registry")."""
        places = self.places
        conda = model_conda(places.dev, self.call, version)
        env = specs.environment(monitoring.with_collection(specs.scoring_conda(conda), options.collect))
        env.version = environment_version(env)
        reference = registry_uri(places.registry_name, "environments", specs.ENVIRONMENT_NAME, env.version)
        try:
            self.call(
                "looking the environment up in the registry",
                lambda: places.registry.environments.get(specs.ENVIRONMENT_NAME, version=env.version),
            )
            self.say(f"environment {specs.ENVIRONMENT_NAME} version {env.version} is in the registry already")
        except ResourceNotFoundError:
            self.call(
                "creating the environment in the registry", lambda: places.registry.environments.create_or_update(env)
            )
            self.say(f"created environment {specs.ENVIRONMENT_NAME} version {env.version} in the registry")
        return reference
