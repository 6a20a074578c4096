"""`python -m jobs monitor`: its flags, and the call into either target (kept out of jobs/cli.py)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from jobs.monitoring.check import DEFAULT_MAX_REFUSED_SHARE, DEFAULT_MIN_RECORDS, DEFAULT_WINDOW_HOURS, Thresholds
from jobs.monitoring.drift import CATEGORICAL_METRICS, DEFAULT_CATEGORICAL, DEFAULT_NUMERICAL, NUMERICAL_METRICS

HELP = "compare collected production records with the model's training data (drift, refusals)"


def add_flags(parser: argparse.ArgumentParser) -> None:
    """The monitor command's flags; the thresholds' defaults are Azure ML's (jobs/monitoring/drift.py)."""
    g = parser.add_argument_group("monitoring (both targets)")
    g.add_argument("--version", default=None, help="model version; default: the deployed one (local), the live "
                                                    "deployment's (Azure)")
    g.add_argument("--numerical-metric", default=DEFAULT_NUMERICAL[0], choices=NUMERICAL_METRICS,
                   help="data drift metric for numerical features")
    g.add_argument("--numerical-threshold", type=float, default=DEFAULT_NUMERICAL[1],
                   help="drift above it (for the KS test: a p-value below it)")
    g.add_argument("--categorical-metric", default=DEFAULT_CATEGORICAL[0], choices=CATEGORICAL_METRICS,
                   help="data and prediction drift metric for categorical features (the 5 booleans, the answer)")
    g.add_argument("--categorical-threshold", type=float, default=DEFAULT_CATEGORICAL[1],
                   help="drift above it (for the chi-squared test: a p-value below it)")
    g.add_argument("--prediction-threshold", type=float, default=DEFAULT_CATEGORICAL[1],
                   help="prediction drift threshold, on the categorical metric")
    g.add_argument("--max-refused-share", type=float, default=DEFAULT_MAX_REFUSED_SHARE,
                   help="local: alert when more of the window's records than this were refused by the schema")
    g.add_argument("--min-records", type=int, default=DEFAULT_MIN_RECORDS,
                   help="local: fewer scored records than this and drift is not computed (too noisy)")
    g.add_argument("--window-hours", type=float, default=DEFAULT_WINDOW_HOURS,
                   help="how far back to look (Azure: the schedule's lookback window, rounded up to whole days)")
    g.add_argument("--reference", type=Path, default=None, metavar="FILE",
                   help="local: the training CSV, when the model's own (from its lineage tags) is gone")
    g.add_argument("--email", dest="emails", action="append", default=[], metavar="ADDRESS",
                   help="Azure: alert this address when a signal crosses its threshold (repeatable)")


def thresholds(args: argparse.Namespace) -> Thresholds:
    return Thresholds(args.numerical_metric, args.numerical_threshold, args.categorical_metric,
                      args.categorical_threshold, args.prediction_threshold, args.max_refused_share, args.min_records)


def run(args: argparse.Namespace, backend: Any) -> Any:
    """Local: the report and exit 1 on drift. Azure: create or update the monitoring schedule."""
    return backend.monitor(args.version, thresholds(args), args.window_hours, args.reference, args.emails)
