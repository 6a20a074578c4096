"""`jobs monitor --target local`: what `jobs deploy --collect` gathered, against the model's training data."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from jobs.commands import jobs_command
from jobs.environments import REGISTERED_IN
from jobs.errors import JobsError, read_json
from jobs.lineage import MODEL_NAME, UNKNOWN
from jobs.local.places import registry_root
from jobs.local.registry import LocalRegistry, ModelVersion
from jobs.monitoring.check import Result, Thresholds, compare, load_reference, read_window
from jobs.monitoring.report import write_report


class DriftDetected(JobsError):
    """A threshold was crossed: exit 1 (2 stays 'you asked for something impossible')."""

    exit_code = 1


def _model(registry: LocalRegistry, deployed_version: int | None, version: str | None) -> ModelVersion:
    if version is not None:
        if not version.isdigit():
            raise JobsError(f"--version {version!r} is not a version number; local versions are 1, 2, 3, ...")
        return registry.get(MODEL_NAME, int(version))
    return registry.get(MODEL_NAME, deployed_version)


def _reference_predictions(model: ModelVersion, reference: dict[str, np.ndarray]) -> np.ndarray:
    """The model's answers on its training data: what prediction drift is measured against."""
    import mlflow.sklearn
    import pandas as pd
    from mlflow.models import Model

    signature = Model.load(str(model.model_dir / "MLmodel")).get_input_schema()
    columns = signature.input_names() if signature is not None else list(reference)
    frame = pd.DataFrame({name: reference[name] for name in columns})
    labels = mlflow.sklearn.load_model(str(model.model_dir)).predict(frame)
    return np.array([str(label).lower() in ("1", "true", "1.0") for label in labels], dtype=bool)


def monitor(
    home: Path,
    runs_dir: Path,
    deployed_version: int | None,
    version: str | None,
    thresholds: Thresholds,
    window_hours: float,
    reference_csv: Path | None = None,
    say: Callable[[str], None] = print,
) -> Result:
    """Compare the window with the training data, write the report, and raise DriftDetected on any alert.

    The model is `version`, else the deployed one, else the latest registered. Its training data
    is found through its lineage tags (training_run -> runs/<run>/run.json's data file, checked
    against the data_version tag), unless `reference_csv` names another file.
    """
    problems = thresholds.problems()
    if not window_hours > 0:
        problems.append(f"--window-hours {window_hours} must be above 0")
    if problems:
        raise JobsError("invalid monitoring settings:\n  - " + "\n  - ".join(problems))
    model = _model(LocalRegistry(registry_root(home, REGISTERED_IN), say), deployed_version, version)
    folder = home / "collected"
    if not any(folder.glob("scored*.jsonl")):
        raise JobsError(
            f"nothing has been collected in {folder}; deploy with collection on "
            f"(`{jobs_command('deploy --collect')}`) and let it answer requests first"
        )
    run_dir = runs_dir / model.tags.get("training_run", "?")
    reference, label = (
        _given_reference(model, reference_csv)
        if reference_csv is not None
        else _run_reference(model, runs_dir, run_dir)
    )
    name = f"{model.name}:{model.version}"
    window = read_window(folder, name, window_hours)
    predictions = _reference_predictions(model, reference)
    result = compare(name, window, reference, predictions, thresholds)
    base = run_dir if run_dir.is_dir() else home
    result.report = write_report(
        base / "monitoring" / time.strftime("%Y%m%d-%H%M%S"), result, reference, predictions, label
    )
    _tell(result, window_hours, say)
    return result


def _dropped(model: ModelVersion) -> tuple[str, ...]:
    return tuple(filter(None, model.tags.get("setting.drop_columns", "").split(",")))


def _given_reference(model: ModelVersion, reference_csv: Path) -> tuple[dict[str, np.ndarray], str]:
    """--reference FILE's columns and the report's label for it; JobsError when it is missing, a folder, or
    (when the model's data version is tagged) not the data the model was trained on."""
    if not reference_csv.exists():
        raise JobsError(f"--reference {reference_csv} does not exist; pass the CSV the model was trained on")
    if not reference_csv.is_file():
        raise JobsError(f"--reference {reference_csv} is a folder, not a file; pass the training CSV itself")
    # The same check as for the file the run names: another file would report drift that is only the
    # difference between two data sets.
    tagged = model.tags.get("data_version", UNKNOWN)
    known = None if tagged == UNKNOWN else tagged
    reference = load_reference(reference_csv, known, _dropped(model), given="--reference")
    return reference, f"{reference_csv} (given with --reference" + (
        f", data version {known} as tagged)" if known else ")"
    )


def _run_reference(model: ModelVersion, runs_dir: Path, run_dir: Path) -> tuple[dict[str, np.ndarray], str]:
    """The training data the model's run names (run.json's data file, checked against the data_version tag) and
    the report's label for it; JobsError saying to pass --reference when either cannot be known."""
    info_path = run_dir / "run.json"
    if not info_path.is_file():
        raise JobsError(
            f"version {model.version}'s training run {run_dir.name} is not under {runs_dir}, so its "
            "training data is unknown; pass the CSV it was trained on with --reference FILE"
        )
    csv = Path(read_json(info_path)["data"])
    data_version = model.tags.get("data_version", UNKNOWN)
    if data_version == UNKNOWN:
        # jobs/lineage.py model_tags writes "unknown" when the run did not record it.
        raise JobsError(
            f"version {model.version} has no data_version tag, so the file its run names cannot be "
            "checked against what it was trained on; pass the training CSV with --reference FILE"
        )
    reference = load_reference(csv, data_version, _dropped(model))
    return reference, f"{csv} (data version {data_version}, training run {run_dir.name})"


def _tell(result: Result, window_hours: float, say: Callable[[str], None]) -> None:
    """What was compared and where the report is; DriftDetected (exit 1) listing every alert."""
    window, thresholds = result.window, result.thresholds
    say(
        f"monitored {result.model}: {window.scored} scored and {window.refused_records} refused record(s) in the "
        f"last {window_hours:g} h; report: {result.report}"
    )
    if window.scored < thresholds.min_records:
        say(
            f"only {window.scored} scored record(s), fewer than --min-records {thresholds.min_records}: "
            "drift not computed"
        )
    if result.alerts:
        raise DriftDetected(
            f"{len(result.alerts)} threshold(s) crossed (report: {result.report}):\n  - " + "\n  - ".join(result.alerts)
        )
