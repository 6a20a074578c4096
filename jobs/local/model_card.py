"""The model card: what the model is for, for whom it holds, and how sure each figure is.

Written into the training report (HTML section) and as model_card.md into the MLflow model's folder, so it
is registered and deployed with the model. Every figure is out-of-fold (each patient scored by a model that
did not see them) and carries its 95% interval: proportions (sensitivity, specificity, PPV, NPV) the Wilson
score interval, AUC a percentile bootstrap over patients. PPV and NPV hold only at the training data's
prevalence, which the card states.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from scoring.contract import OperatingPoint
from scoring.schema import DatasetSchema

Z_95 = 1.959963984540054  # the standard normal's 97.5th percentile
SUBGROUP_RESAMPLES = 1000


def wilson(successes: int, total: int, z: float = Z_95) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion successes/total (95% by default); None when total is 0."""
    if total == 0:
        return None
    p = successes / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Proportion:
    """k of n, with its Wilson interval (None when n is 0)."""

    k: int
    n: int

    @property
    def value(self) -> float | None:
        return self.k / self.n if self.n else None

    @property
    def interval(self) -> tuple[float, float] | None:
        return wilson(self.k, self.n)

    def text(self) -> str:
        if not self.n:
            return "n/a (none in the group)"
        low, high = self.interval or (0.0, 0.0)
        return f"{self.k / self.n:.2f} ({low:.2f}-{high:.2f}; {self.k}/{self.n})"


def confusion(y: Any, proba: Any, threshold: float) -> dict[str, Proportion]:
    """Sensitivity, specificity, PPV and NPV at `threshold` (flagged: proba >= threshold), as Proportions."""
    y = np.asarray(y).astype(int)
    flagged = np.asarray(proba) >= threshold
    tp, fp = int(np.sum(flagged & (y == 1))), int(np.sum(flagged & (y == 0)))
    fn, tn = int(np.sum(~flagged & (y == 1))), int(np.sum(~flagged & (y == 0)))
    return {
        "sensitivity": Proportion(tp, tp + fn),
        "specificity": Proportion(tn, tn + fp),
        "ppv": Proportion(tp, tp + fp),
        "npv": Proportion(tn, tn + fn),
    }


def auc_interval(y: Any, proba: Any, seed: int, resamples: int = SUBGROUP_RESAMPLES) -> tuple[float, float] | None:
    """AUC and its percentile bootstrap interval as (low, high); None when the group lacks either class."""
    from jobs.local.report import bootstrap_auc_ci

    y = np.asarray(y)
    if len(set(y.tolist())) < 2:
        return None
    return bootstrap_auc_ci(y, proba, seed, resamples)


def _auc(y: Any, proba: Any) -> float | None:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, proba)) if len(set(np.asarray(y).tolist())) == 2 else None


def subgroups(
    schema: DatasetSchema, frame: Any, y: Any, proba: Any, threshold: float, seed: int
) -> list[dict[str, Any]]:
    """Rows of the card's breakdown: one per group the schema's `subgroups` declare (a field's named values,
    or its bands [a, b) of a numeric field), with patients, events, AUC (bootstrap interval) and sensitivity
    and specificity at `threshold` (Wilson intervals). `frame` holds the data's columns (numbers)."""
    y = np.asarray(y).astype(int)
    proba = np.asarray(proba)
    rows = []
    for declared in schema.document.get("subgroups") or ():
        name = declared.get("field")
        if name not in frame.columns:
            continue
        values = frame[name].to_numpy(dtype=float)
        groups: list[tuple[str, Any]] = []
        for group in declared.get("groups") or ():
            groups.append((f"{name}: {group['name']}", np.isin(values, group["values"])))
        bands = declared.get("bands") or ()
        for low, high in itertools.pairwise(bands):
            groups.append((f"{name} {low:g} to under {high:g}", (values >= low) & (values < high)))
        for label, mask in groups:
            if not mask.any():
                rows.append({"group": label, "patients": 0, "events": 0})
                continue
            figures = confusion(y[mask], proba[mask], threshold)
            rows.append(
                {
                    "group": label,
                    "patients": int(mask.sum()),
                    "events": int(y[mask].sum()),
                    "auc": _auc(y[mask], proba[mask]),
                    "auc_interval": auc_interval(y[mask], proba[mask], seed),
                    "sensitivity": figures["sensitivity"],
                    "specificity": figures["specificity"],
                }
            )
    return rows


@dataclass(frozen=True)
class Card:
    """Everything the card shows, computed once; `markdown()` and `html()` lay it out."""

    schema: DatasetSchema
    rows: int
    events: int
    auc: float
    auc_interval: tuple[float, float]
    point: OperatingPoint
    at_point: dict[str, Proportion]
    groups: list[dict[str, Any]]
    ranges: dict[str, list[float]]
    leaking_used: tuple[str, ...]

    @property
    def prevalence(self) -> float:
        return self.events / self.rows if self.rows else 0.0

    def headline(self) -> str:
        """The one AUC a reader takes away: out-of-fold, with its interval."""
        low, high = self.auc_interval
        return f"out-of-fold AUC {self.auc:.3f} (95% CI {low:.3f} to {high:.3f}, {self.rows} patients)"

    def sections(self) -> list[tuple[str, list[str]]]:
        """(heading, lines) in reading order; both layouts are made from these."""
        document = self.schema.document
        cohort = document.get("cohort") or {}
        raw_label = document.get("label")
        label: dict[str, Any] = raw_label if isinstance(raw_label, dict) else {}
        use = [str(document.get("intended_use") or "not stated")]
        if self.leaking_used:
            use.insert(
                0,
                "WARNING: trained on " + ", ".join(self.leaking_used) + ", which leaks the outcome "
                "(--include-leaking-columns, the lesson's reproduction): its figures are not what it would do "
                "for a new patient. Do not use it on patients.",
            )
        who = [f"{key}: {value}" for key, value in cohort.items()]
        who.append(f"{self.rows} patients, {self.events} with the outcome (prevalence {self.prevalence:.1%})")
        who.append(
            "the training data's range of each input (answers outside it are flagged outside_training_range): "
            + "; ".join(f"{name} {low:g} to {high:g}" for name, (low, high) in self.ranges.items())
        )
        outcome = [f"predicts {self.schema.label}" + (f" = 1: {label['positive']}" if label.get("positive") else "")]
        figures = [
            f"headline: {self.headline()}",
            f"operating point: probability >= {self.point.threshold:g} answers result=true ({self.point.rule})",
            *(f"{name.upper() if len(name) == 3 else name} at it: {p.text()}" for name, p in self.at_point.items()),
            f"PPV and NPV hold at this data's prevalence ({self.prevalence:.1%}); where the outcome is rarer, PPV "
            "is lower and NPV higher, and the other way round",
            "intervals: 95%, Wilson score for proportions, percentile bootstrap over patients for AUC",
        ]
        return [
            ("Intended use", use),
            ("Outcome", outcome),
            ("For whom it holds", who),
            ("Performance (out-of-fold)", figures),
        ]

    def group_table(self) -> tuple[list[str], list[list[str]]]:
        header = ["group", "patients", "events", "AUC (95% CI)", "sensitivity", "specificity"]
        body = []
        for row in self.groups:
            if not row["patients"]:
                body.append([row["group"], "0", "0", "nobody in the data", "", ""])
                continue
            interval = row.get("auc_interval")
            auc = (
                f"{row['auc']:.3f} ({interval[0]:.3f}-{interval[1]:.3f})"
                if row.get("auc") is not None and interval
                else "n/a (one class only)"
            )
            body.append(
                [
                    row["group"],
                    str(row["patients"]),
                    str(row["events"]),
                    auc,
                    row["sensitivity"].text(),
                    row["specificity"].text(),
                ]
            )
        return header, body

    def markdown(self) -> str:
        """The card as Markdown (model_card.md)."""
        title = self.schema.document.get("title") or self.schema.name
        lines = [f"# Model card: {title}", ""]
        for heading, items in self.sections():
            lines += [f"## {heading}", "", *(f"- {item}" for item in items), ""]
        header, body = self.group_table()
        if body:
            lines += ["## By subgroup (out-of-fold, at the operating point)", ""]
            lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            lines += ["| " + " | ".join(cells) + " |" for cells in body]
            lines.append("")
        return "\n".join(lines)

    def html(self) -> str:
        """The card as an HTML section for the training report."""
        import html

        parts = ['<h2>Model card</h2><div class="card">']
        for heading, items in self.sections():
            parts.append(f"<h3>{html.escape(heading)}</h3><ul>")
            parts += [f"<li>{html.escape(item)}</li>" for item in items]
            parts.append("</ul>")
        header, body = self.group_table()
        if body:
            parts.append("<h3>By subgroup (out-of-fold, at the operating point)</h3><table><tr>")
            parts += [f"<th>{html.escape(h)}</th>" for h in header]
            parts.append("</tr>")
            for cells in body:
                parts.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
            parts.append("</table>")
        parts.append("</div>")
        return "".join(parts)


def build_card(
    schema: DatasetSchema,
    frame: Any,
    y: Any,
    proba: Any,
    point: OperatingPoint,
    ranges: dict[str, list[float]],
    leaking_used: tuple[str, ...],
    seed: int,
) -> Card:
    """The card of a model whose out-of-fold probabilities are `proba` for the labels `y` (one per row of `frame`,
    the training data's numeric columns)."""
    from jobs.local.report import bootstrap_auc_ci

    y = np.asarray(y).astype(int)
    proba = np.asarray(proba)
    return Card(
        schema,
        len(y),
        int(y.sum()),
        float(_auc(y, proba) or float("nan")),
        bootstrap_auc_ci(y, proba, seed),
        point,
        confusion(y, proba, point.threshold),
        subgroups(schema, frame, y, proba, point.threshold, seed),
        ranges,
        leaking_used,
    )
