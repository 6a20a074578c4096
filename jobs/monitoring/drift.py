"""Drift metrics: the ones Azure ML model monitoring's data-drift and prediction-drift signals offer.

Names, the split into numerical and categorical metrics and the defaults follow azure-ai-ml 1.35.2
(`azure/ai/ml/entities/_monitoring/thresholds.py`: NumericalDriftMetrics, CategoricalDriftMetrics and
their `_get_default_thresholds`: normalized Wasserstein distance 0.1 for numerical features,
Jensen-Shannon distance 0.1 for categorical ones). The statistics are scipy's.

Distances (Jensen-Shannon, normalized Wasserstein, PSI) drift when they are ABOVE the threshold;
the two tests (two-sample Kolmogorov-Smirnov, Pearson's chi-squared) report their p-value, and
drift when it is BELOW the threshold (the chance of a difference this large without drift).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

# numpy and scipy load only where a metric is computed: the command line imports this module for its
# metric names and defaults, and `status`, `stop`, `invoke` must start at once (issue 22).
if TYPE_CHECKING:
    import numpy as np

NUMERICAL_METRICS = (
    "normalized_wasserstein_distance",
    "jensen_shannon_distance",
    "population_stability_index",
    "two_sample_kolmogorov_smirnov_test",
)
CATEGORICAL_METRICS = ("jensen_shannon_distance", "population_stability_index", "pearsons_chi_squared_test")
P_VALUE_METRICS = ("two_sample_kolmogorov_smirnov_test", "pearsons_chi_squared_test")
DEFAULT_NUMERICAL = ("normalized_wasserstein_distance", 0.1)
DEFAULT_CATEGORICAL = ("jensen_shannon_distance", 0.1)
_BINS = 20
_EPSILON = 1e-4  # PSI's usual floor for an empty bin, so that ln(p/q) stays finite


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    kind: str  # "numerical" or "categorical"
    metric: str
    value: float
    threshold: float

    @property
    def drifted(self) -> bool:
        if not math.isfinite(self.value):
            return False
        if self.metric in P_VALUE_METRICS:
            return self.value < self.threshold
        return self.value > self.threshold


def _shares(reference: np.ndarray, production: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import numpy as np

    p = np.histogram(reference, bins=edges)[0].astype(float)
    q = np.histogram(production, bins=edges)[0].astype(float)
    return p / p.sum(), q / q.sum()


def _category_shares(reference: np.ndarray, production: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    import numpy as np

    categories = np.union1d(np.unique(reference), np.unique(production))
    p = np.array([(reference == c).sum() for c in categories], dtype=float)
    q = np.array([(production == c).sum() for c in categories], dtype=float)
    return categories, p, q


def _psi(p: np.ndarray, q: np.ndarray) -> float:
    import numpy as np

    p, q = np.clip(p, _EPSILON, None), np.clip(q, _EPSILON, None)
    return float(np.sum((q - p) * np.log(q / p)))


def numerical(metric: str, reference: np.ndarray, production: np.ndarray) -> float:
    """One numerical drift metric between two samples (1-D arrays of floats, each non-empty)."""
    import numpy as np
    from scipy import stats
    from scipy.spatial import distance

    reference, production = np.asarray(reference, float), np.asarray(production, float)
    if metric == "normalized_wasserstein_distance":
        # The earth mover's distance in units of the reference's standard deviation, so that one
        # threshold fits features in mg/dL and in kiloplatelets/mL alike.
        scale = float(np.std(reference)) or 1.0
        return float(stats.wasserstein_distance(reference, production)) / scale
    if metric == "two_sample_kolmogorov_smirnov_test":
        return float(stats.ks_2samp(reference, production).pvalue)
    if metric == "jensen_shannon_distance":
        low = min(reference.min(), production.min())
        high = max(reference.max(), production.max())
        edges = np.linspace(low, high if high > low else low + 1, _BINS + 1)
        return float(distance.jensenshannon(*_shares(reference, production, edges), base=2))
    if metric == "population_stability_index":
        # Deciles of the reference, open-ended, as PSI is usually computed.
        inner = np.unique(np.quantile(reference, np.linspace(0, 1, 11))[1:-1])
        edges = np.concatenate([[-np.inf], inner, [np.inf]])
        return _psi(*_shares(reference, production, edges))
    raise ValueError(f"unknown numerical metric {metric!r}; one of {', '.join(NUMERICAL_METRICS)}")


def categorical(metric: str, reference: np.ndarray, production: np.ndarray) -> float:
    """One categorical drift metric between two samples of category values (each non-empty)."""
    import numpy as np
    from scipy import stats
    from scipy.spatial import distance

    _, p, q = _category_shares(np.asarray(reference), np.asarray(production))
    if metric == "pearsons_chi_squared_test":
        table = np.vstack([p, q])
        table = table[:, table.sum(axis=0) > 0]
        if table.shape[1] < 2:
            return 1.0  # one category on both sides: nothing can differ
        return float(stats.chi2_contingency(table).pvalue)
    p, q = p / p.sum(), q / q.sum()
    if metric == "jensen_shannon_distance":
        return float(distance.jensenshannon(p, q, base=2))
    if metric == "population_stability_index":
        return _psi(p, q)
    raise ValueError(f"unknown categorical metric {metric!r}; one of {', '.join(CATEGORICAL_METRICS)}")
