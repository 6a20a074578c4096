"""The lesson's AutoML settings, in one place: both backends read them from here.

The lesson (SDK v1 AutoMLConfig): label DEATH_EVENT, primary metric AUC_weighted, 20 minutes,
3 concurrent iterations, early stopping on, featurization auto.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from jobs.dataset import (
    Table,
    capped,
    column_problems,
    label_problems,
    load,
    load_schema,
    shape_problems,
    value_problems,
)
from jobs.errors import JobsError
from jobs.options import problems as bound_problems
from jobs.paths import ROOT
from scoring.schema import DatasetSchema

DEFAULT_DATA = ROOT / "data" / "heart_failure_clinical_records_dataset.csv"

TARGET = "DEATH_EVENT"  # the shipped dataset's label; a dataset's own schema names its own (for_schema)
PRIMARY_METRICS = (
    "AUC_weighted",
    "accuracy",
    "average_precision_score_weighted",
    "norm_macro_recall",
    "precision_score_weighted",
)


def known_models() -> tuple[str, ...]:
    """The model names Azure AutoML classification accepts in blocked_training_algorithms.

    Taken from the installed azure-ai-ml itself (azure.ai.ml.automl.ClassificationModels, the enum
    its set_training converts every name through at submit time), so the list cannot drift from
    what the SDK sends. Imported late: azure-ai-ml takes about a second to import.
    """
    from azure.ai.ml.automl import ClassificationModels

    return tuple(model.value for model in ClassificationModels)


FEATURIZATION_MODES = ("auto", "off")
# Local only: the cap on FLAML's time budget, so the demo takes a minute, not the lesson's 20.
DEFAULT_LOCAL_BUDGET_S = 60.0


@dataclass(frozen=True)
class TrainingSettings:
    target: str = TARGET
    primary_metric: str = "AUC_weighted"
    timeout_minutes: float = 20
    max_concurrent_trials: int = 3
    enable_early_termination: bool = True
    featurization: str = "auto"
    trial_timeout_minutes: float | None = None
    max_trials: int | None = None
    n_cross_validations: int = 5
    blocked_models: tuple[str, ...] = ()
    drop_columns: tuple[str, ...] = ()
    seed: int = 42
    # The lesson's exact reproduction: train on the columns the dataset's schema says leak the outcome too.
    include_leaking_columns: bool = False
    # Set by for_schema: the leaking columns this training uses (only with include_leaking_columns), and the
    # dataset's name (its schema's), which a champion must share.
    leaking_columns_used: tuple[str, ...] = ()
    dataset: str = ""

    def as_tags(self) -> dict[str, str]:
        """Flat string tags describing the training settings, for lineage; `leaking_columns_used` names the
        columns known to leak the outcome that the model uses ("none" for an honest model)."""
        tags = {
            f"setting.{key}": ",".join(value) if isinstance(value, tuple) else str(value)
            for key, value in asdict(self).items()
            if key not in ("leaking_columns_used", "dataset") and value not in (None, ())
        }
        tags["leaking_columns_used"] = ",".join(self.leaking_columns_used) or "none"
        if self.dataset:
            tags["dataset"] = self.dataset
        return tags

    def for_schema(self, schema: DatasetSchema) -> TrainingSettings:
        """These settings for a dataset: its label, and its leaking columns dropped (the honest default) unless
        include_leaking_columns, then recorded in leaking_columns_used. Idempotent."""
        leaking = [c for c in schema.leaking if c not in self.drop_columns]
        if self.include_leaking_columns:
            return replace(self, target=schema.label, leaking_columns_used=tuple(leaking))
        return replace(self, target=schema.label, drop_columns=(*self.drop_columns, *leaking), leaking_columns_used=())

    def for_data(self, data: Path) -> TrainingSettings:
        """for_schema with the schema beside `data` (jobs/dataset.py load_schema; JobsError if missing)."""
        return self.for_schema(load_schema(data))

    def leak_warning(self, schema: DatasetSchema) -> str | None:
        """The warning both targets print (and record) when these settings train on leaking columns; else None."""
        if not self.leaking_columns_used:
            return None
        columns = ", ".join(f"`{c}`" for c in self.leaking_columns_used)
        why = "; ".join(schema.leaking[c] for c in self.leaking_columns_used)
        return (
            f"--include-leaking-columns: this model is trained on {columns}, which leaks the outcome ({why}). "
            "Its figures are not what it would do for a new patient; it reproduces the lesson and must not be "
            "used on patients."
        )

    def check_data(self, data: Path, max_nodes: int | None = None) -> Table:
        """validate() against a training CSV, read once as both targets read it; the table it read.

        The one data check of both targets (local `train`, Azure `train`/`pipeline`/`all`, and
        --dry-run), before any compute is spent: the file's shape (separator, whitespace around names,
        rows with more or fewer fields than the header), its columns against the request schema, its
        label, and every request field's values against the endpoint's own rules (jobs/dataset.py).
        Raises JobsError listing every problem (capped at dataset.MAX_LISTED).
        """
        schema = load_schema(data)
        settings = self.for_schema(schema)  # the backends pass resolved settings; a direct caller gets the same check
        table = load(data)
        shape = shape_problems(table, settings.target, schema)
        if shape:
            # Until the file reads as a table, its column names and values mean nothing.
            settings.validate(max_nodes=max_nodes, data_problems=shape)
            return table
        header = table.header
        labels = table.column(settings.target) if settings.target in header else None
        values = []
        if labels is not None and not column_problems(header, settings.target, settings.drop_columns, schema):
            values = value_problems(table, settings.target, settings.drop_columns, schema)
        settings.validate(
            columns=header,
            max_nodes=max_nodes,
            labels=labels,
            label_lines=table.lines,
            data_problems=values,
            schema=schema,
        )
        return table

    def validate(
        self,
        columns: list[str] | None = None,
        max_nodes: int | None = None,
        labels: list[str] | None = None,
        label_lines: list[int] | None = None,
        data_problems: list[str] | None = None,
        schema: DatasetSchema | None = None,
    ) -> TrainingSettings:
        """Check the settings (and, when given, the data's columns, label values with their lines in the
        file, and problems found in the data already); raise JobsError listing every problem, each with
        the flag or column and what is allowed."""
        problems = self.problems(columns, max_nodes, labels, label_lines, data_problems, schema)
        if problems:
            raise JobsError("invalid training settings:\n  - " + "\n  - ".join(capped(problems)))
        return self

    def problems(
        self,
        columns: list[str] | None = None,
        max_nodes: int | None = None,
        labels: list[str] | None = None,
        label_lines: list[int] | None = None,
        data_problems: list[str] | None = None,
        schema: DatasetSchema | None = None,
    ) -> list[str]:
        """validate()'s problems as a list, [] when there are none (the command line lists them with the rest)."""
        problems = []
        if self.primary_metric not in PRIMARY_METRICS:
            problems.append(f"--metric {self.primary_metric!r} is not one of {', '.join(PRIMARY_METRICS)}")
        bounded = bound_problems(self.flag_values())  # each bound declared once, in jobs/options.py
        problems += bounded
        if not bounded and max_nodes is not None and self.max_concurrent_trials > max_nodes:
            problems.append(
                f"--max-concurrent-trials {self.max_concurrent_trials} is more than the cluster's "
                f"{max_nodes} nodes; lower it or raise maxNodes with `pulumi config set maxNodes N`"
            )
        if self.featurization not in FEATURIZATION_MODES:
            problems.append(f"--featurization {self.featurization!r} is not one of {', '.join(FEATURIZATION_MODES)}")
        # Comparisons between values only once each is a number in its bounds (a program may pass '5').
        if not bounded and self.trial_timeout_minutes is not None and self.trial_timeout_minutes > self.timeout_minutes:
            problems.append(
                f"--trial-timeout-minutes {self.trial_timeout_minutes:g} must be above 0 and at most "
                f"--timeout-minutes ({self.timeout_minutes:g})"
            )
        if len(set(self.blocked_models)) != len(self.blocked_models):
            problems.append(f"--block-model {', '.join(self.blocked_models)}: a model is named twice")
        if self.blocked_models:
            known = known_models()
            for model in (m for m in self.blocked_models if m not in known):
                close = [k for k in known if k.lower() == model.lower()] or difflib.get_close_matches(
                    model, known, n=1, cutoff=0.75
                )
                hint = f"did you mean {close[0]}? " if close else ""
                problems.append(
                    f"--block-model {model}: not a model Azure AutoML classification knows; {hint}"
                    f"the models are {', '.join(known)}"
                )
        if self.target in self.drop_columns:
            problems.append(f"--drop {self.target} would drop the label itself")
        if columns is not None:
            if self.target not in columns:
                problems.append(self._missing_label(columns))
            # A request field may be dropped without being in the data: training without it on purpose.
            known = (schema or load_schema(DEFAULT_DATA)).feature_names
            missing = [c for c in self.drop_columns if c not in columns and c not in known]
            if missing:
                problems.append(f"--drop {', '.join(missing)}: no such column; columns are {', '.join(columns)}")
            if self.target in columns:
                problems.extend(column_problems(columns, self.target, self.drop_columns, schema))
        if labels is not None and not bound_problems(self.flag_values(), ["cv_folds"]):
            problems.extend(label_problems(labels, self.target, self.n_cross_validations, label_lines))
        problems.extend(data_problems or ())
        return problems

    def flag_values(self) -> dict[str, object]:
        """These settings by the command line's names for them (jobs/options.py declares the flags' bounds)."""
        values = asdict(self)
        values["cv_folds"] = values.pop("n_cross_validations")
        return values

    def _missing_label(self, columns: list[str]) -> str:
        """The label is not a column: say which column it most likely is, if any."""

        def key(name: str) -> str:
            return re.sub(r"[\s\-.]+", "_", name.strip().lower())

        close = [c for c in columns if key(c) == key(self.target)]
        close = close or difflib.get_close_matches(self.target, columns, n=1, cutoff=0.75)
        if close:
            return (
                f"the label column {self.target!r} is not in the data; did you mean {close[0]!r}? Rename it "
                f"{self.target} in the header"
            )
        return (
            f"the label column {self.target!r} is not in the data (columns: {', '.join(columns)}); for another "
            "dataset, pass --label COLUMN: train infers its schema and writes it beside the CSV"
        )
