"""The lesson's AutoML settings, in one place: both backends read them from here.

The lesson (SDK v1 AutoMLConfig): label DEATH_EVENT, primary metric AUC_weighted, 20 minutes,
3 concurrent iterations, early stopping on, featurization auto.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from jobs.errors import JobsError

TARGET = "DEATH_EVENT"
PRIMARY_METRICS = ("AUC_weighted", "accuracy", "average_precision_score_weighted", "norm_macro_recall",
                   "precision_score_weighted")
# Azure AutoML classification model names that may be blocked (a subset; the SDK checks the rest).
KNOWN_MODELS = ("LogisticRegression", "SGD", "MultinomialNaiveBayes", "BernoulliNaiveBayes", "SVM", "LinearSVM",
                "KNN", "DecisionTree", "RandomForest", "ExtremeRandomTrees", "LightGBM", "GradientBoosting",
                "XGBoostClassifier", "TabnetClassifier")
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
    extra: dict[str, str] = field(default_factory=dict)

    def as_tags(self) -> dict[str, str]:
        """Flat string tags describing the training settings, for lineage."""
        return {f"setting.{key}": ",".join(value) if isinstance(value, tuple) else str(value)
                for key, value in asdict(self).items() if key != "extra" and value not in (None, ())}

    def validate(self, columns: list[str] | None = None, max_nodes: int | None = None) -> TrainingSettings:
        problems = []
        if self.primary_metric not in PRIMARY_METRICS:
            problems.append(f"--metric {self.primary_metric!r} is not one of {', '.join(PRIMARY_METRICS)}")
        if not 0 < self.timeout_minutes <= 7 * 24 * 60:
            problems.append(f"--timeout-minutes {self.timeout_minutes:g} must be above 0 and at most a week (10080)")
        if self.max_concurrent_trials < 1:
            problems.append(f"--max-concurrent-trials {self.max_concurrent_trials} must be at least 1")
        if max_nodes is not None and self.max_concurrent_trials > max_nodes:
            problems.append(f"--max-concurrent-trials {self.max_concurrent_trials} is more than the cluster's "
                            f"{max_nodes} nodes; lower it or raise maxNodes with `pulumi config set maxNodes N`")
        if self.featurization not in FEATURIZATION_MODES:
            problems.append(f"--featurization {self.featurization!r} is not one of {', '.join(FEATURIZATION_MODES)}")
        if self.trial_timeout_minutes is not None and not 0 < self.trial_timeout_minutes <= self.timeout_minutes:
            problems.append(f"--trial-timeout-minutes {self.trial_timeout_minutes:g} must be above 0 and at most "
                            f"--timeout-minutes ({self.timeout_minutes:g})")
        if self.max_trials is not None and self.max_trials < 1:
            problems.append(f"--max-trials {self.max_trials} must be at least 1")
        if not 2 <= self.n_cross_validations <= 20:
            problems.append(f"--cv-folds {self.n_cross_validations} must be from 2 to 20")
        unknown = [m for m in self.blocked_models if m not in KNOWN_MODELS]
        if unknown:
            problems.append(f"--block-model {', '.join(unknown)}: unknown; known models are {', '.join(KNOWN_MODELS)}")
        if self.target in self.drop_columns:
            problems.append(f"--drop {self.target} would drop the label itself")
        if columns is not None:
            if self.target not in columns:
                problems.append(f"the label column {self.target!r} is not in the data (columns: {', '.join(columns)})")
            missing = [c for c in self.drop_columns if c not in columns]
            if missing:
                problems.append(f"--drop {', '.join(missing)}: no such column; columns are {', '.join(columns)}")
        if problems:
            raise JobsError("invalid training settings:\n  - " + "\n  - ".join(problems))
        return self
