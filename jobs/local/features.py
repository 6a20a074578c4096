"""The training data as a model sees it: the CSV as a frame, the features and label, the featurizer.

Featurization `auto` is a StandardScaler in front of every learner (FLAML itself does not scale, which
leaves its linear learners far behind); `off` gives the raw columns.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from jobs.dataset import Table, load
from jobs.errors import JobsError
from jobs.training import TrainingSettings


def read_data(path: Path) -> pd.DataFrame:
    """The CSV as jobs/dataset.py reads it for both targets (BOM, CRLF fine), as a frame of strings;
    features() turns the columns it uses into numbers."""
    return table_frame(load(path))


def table_frame(table: Table) -> pd.DataFrame:
    """A table jobs/dataset.py read, as a frame of strings (one row per data line)."""
    return pd.DataFrame([cells for _, cells in table.rows], columns=table.header, dtype=str)


def features(frame: pd.DataFrame, settings: TrainingSettings) -> tuple[pd.DataFrame, pd.Series]:
    """Features and label; every value must be a number and none may be missing."""
    columns = [c for c in frame.columns if c not in (settings.target, *settings.drop_columns)]
    numeric = frame[[*columns, settings.target]].apply(pd.to_numeric, errors="coerce")
    bad = [c for c in numeric.columns if numeric[c].isna().any()]
    if bad:
        rows = sorted(set().union(*(numeric.index[numeric[c].isna()][:3] for c in bad)))[:5]
        raise JobsError(
            f"the data has missing or non-numeric values in {', '.join(bad)} (e.g. data rows "
            f"{', '.join(str(r + 2) for r in rows)}, counting the header as row 1); fix or drop them"
        )
    # float64 throughout: the signature then says double for every column, and a request's
    # 38 and 38.0 are the same input.
    X = numeric[columns].astype("float64")
    y = numeric[settings.target]
    if set(y.unique()) - {0, 1}:
        others = ", ".join(f"{v:g}" for v in sorted(set(y.unique()) - {0, 1})[:5])
        raise JobsError(f"the label {settings.target} must be 0 or 1; found {others}")
    return X, y.astype("int64")


def featurized(settings: TrainingSettings, estimator: Any) -> Any:
    """An unfitted scikit-learn Pipeline: the featurizer (a StandardScaler, or "passthrough" with featurization
    off) as step "featurize", then `estimator` as step "model"."""
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    featurize = StandardScaler() if settings.featurization == "auto" else "passthrough"
    return Pipeline([("featurize", featurize), ("model", estimator)])


def leaky_columns(columns: list[str] | pd.Index, leaking: dict[str, str]) -> dict[str, str]:
    """The columns among `columns` that the dataset's schema says leak the outcome (`leaking`), with why."""
    return {name: why for name, why in leaking.items() if name in columns}
