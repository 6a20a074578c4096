"""The training report: one HTML page with plots, for the best model of a local run."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd


def _figure() -> ModuleType:  # matplotlib.pyplot
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt: Any, fig: Any, ax: Any, path: Path, title: str, caption: str) -> str:
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return caption


THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
TARGET_SENSITIVITY = 0.90
BOOTSTRAP_RESAMPLES = 2000


def bootstrap_auc_ci(
    y: Any, proba: Any, seed: int, resamples: int = BOOTSTRAP_RESAMPLES, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of ROC AUC: patients resampled with replacement, `resamples` times.

    AUC by the rank-sum (Mann-Whitney) formula, ties counted half, as roc_auc_score does; resamples
    holding a single class are skipped (AUC is undefined there).
    """
    from scipy.stats import rankdata

    y = np.asarray(y)
    proba = np.asarray(proba)
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, len(y), (resamples, len(y)))
    labels, scores = y[rows], proba[rows]
    positives = labels.sum(axis=1)
    negatives = len(y) - positives
    ranks = rankdata(scores, axis=1)
    usable = (positives > 0) & (negatives > 0)
    rank_sums = np.where(labels == 1, ranks, 0).sum(axis=1)
    aucs = (rank_sums[usable] - positives[usable] * (positives[usable] + 1) / 2) / (
        positives[usable] * negatives[usable]
    )
    low, high = np.quantile(aucs, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(low), float(high)


def threshold_rows(y: Any, proba: Any, thresholds: tuple[float, ...] = THRESHOLDS) -> list[dict[str, Any]]:
    """Sensitivity, specificity, PPV and NPV when `proba >= threshold` means "will die"; None where undefined."""
    y = np.asarray(y)
    proba = np.asarray(proba)
    rows = []
    for threshold in thresholds:
        flagged = proba >= threshold
        tp, fp = int(np.sum(flagged & (y == 1))), int(np.sum(flagged & (y == 0)))
        fn, tn = int(np.sum(~flagged & (y == 1))), int(np.sum(~flagged & (y == 0)))

        def ratio(num: int, den: int) -> float | None:
            return num / den if den else None

        rows.append(
            {
                "threshold": float(threshold),
                "flagged": tp + fp,
                "sensitivity": ratio(tp, tp + fn),
                "specificity": ratio(tn, tn + fp),
                "ppv": ratio(tp, tp + fp),
                "npv": ratio(tn, tn + fn),
            }
        )
    return rows


def threshold_for_sensitivity(y: Any, proba: Any, sensitivity: float = TARGET_SENSITIVITY) -> float:
    """The highest threshold whose out-of-fold sensitivity is at least `sensitivity` (the most specific one)."""
    y = np.asarray(y)
    proba = np.asarray(proba)
    for threshold in sorted(set(np.round(proba[y == 1], 4)), reverse=True):
        if np.mean(proba[y == 1] >= threshold) >= sensitivity:
            return float(threshold)
    return 0.0


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return html.escape(str(value))


def _table(header: list[str], rows: list[list[Any]], classes: list[str] | None = None) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        f"<tr{f' class={chr(34)}{classes[i]}{chr(34)}' if classes and classes[i] else ''}>"
        + "".join(f"<td>{cell if isinstance(cell, Markup) else _fmt(cell)}</td>" for cell in row)
        + "</tr>"
        for i, row in enumerate(rows)
    )
    return f"<table><tr>{head}</tr>{body}</table>"


class Markup(str):
    """Text already escaped for HTML."""


@dataclass(frozen=True)
class _Run:
    """What every section reads: the out-of-fold probabilities `proba` for the labels `y` (one per
    patient, numpy arrays), the AUC's bootstrap interval and the Brier score, computed once."""

    run_dir: Path
    y: np.ndarray
    proba: np.ndarray
    metrics: dict[str, float]
    auc_ci: tuple[float, float]
    brier: float
    threshold: float  # the operating point's: what the endpoint answers `result` at
    threshold_rule: str


def write_report(
    run_dir: Path,
    pipeline: Any,
    X: pd.DataFrame,
    y: pd.Series,
    proba: np.ndarray,
    metrics: dict[str, float],
    leaderboard: list[dict[str, Any]],
    best_learner: str,
    seed: int,
    *,
    selection: list[dict[str, Any]] | None = None,
    rule: str | None = None,
    facts: dict[str, Any] | None = None,
    leak: str | None = None,
    target_sensitivity: float = TARGET_SENSITIVITY,
    point: Any = None,
    card: Any = None,
) -> Path:
    """Write run_dir/report.html and its plots; return the page's path.

    Everything but the feature importance comes from out-of-fold probabilities `proba` (one per row of
    X, the model's answer for a patient it did not see). `selection` is the final selection's rows
    (name, kind, score, fold_sd, noise_vs_pick, predict_ms, chosen), `rule` why the pick won, `facts` the
    run's facts (data, data_version, commit, features_used, features_dropped, rows, budget, settings) and
    `leak` a warning sentence when the model uses a column known to leak the outcome. `point` is the
    operating point (scoring/contract.py OperatingPoint; the highest threshold keeping out-of-fold sensitivity
    at `target_sensitivity` when None) and `card` the model card (jobs/local/model_card.py Card), shown first.
    """
    run = _evaluated(run_dir, y, proba, metrics, seed, point, target_sensitivity)
    plt = _figure()
    images = dict(
        [
            _confusion_matrix_plot(plt, run),
            _roc_plot(plt, run),
            _precision_recall_plot(plt, run),
            _calibration_plot(plt, run),
            _feature_importance_plot(plt, run, pipeline, X, seed, facts),
        ]
    )
    page = _page(
        run,
        best_learner,
        images,
        leak,
        facts,
        [
            card.html() if card is not None else "",
            _metrics_section(run),
            _thresholds_section(run),
            _plots_section(images),
            _selection_section(selection, rule, facts),
            _leaderboard_section(leaderboard),
            _facts_section(facts),
        ],
    )
    report = run_dir / "report.html"
    report.write_text(page)
    return report


def _evaluated(
    run_dir: Path,
    y: pd.Series,
    proba: np.ndarray,
    metrics: dict[str, float],
    seed: int,
    point: Any,
    target_sensitivity: float,
) -> _Run:
    """The figures every section reads: the AUC's bootstrap interval (seeded), the Brier score, and the
    operating point (`point`, else the highest threshold keeping out-of-fold sensitivity at the target)."""
    from sklearn.metrics import brier_score_loss

    y_arr, proba = np.asarray(y), np.asarray(proba)
    if point is None:
        from scoring.contract import OperatingPoint, sensitivity_rule

        point = OperatingPoint(
            threshold_for_sensitivity(y_arr, proba, target_sensitivity), sensitivity_rule(target_sensitivity)
        )
    return _Run(
        run_dir,
        y_arr,
        proba,
        metrics,
        bootstrap_auc_ci(y_arr, proba, seed),
        float(brier_score_loss(y_arr, proba)),
        point.threshold,
        point.rule,
    )


# -- plots: each writes one PNG into the run folder and returns (file name, caption) ---------


def _confusion_matrix_plot(plt: Any, run: _Run) -> tuple[str, str]:
    from sklearn.metrics import confusion_matrix

    matrix = confusion_matrix(run.y, (run.proba >= run.threshold).astype(int), labels=[0, 1])
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.imshow(matrix, cmap="Blues")
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(
            j,
            i,
            str(count),
            ha="center",
            va="center",
            fontsize=14,
            color="white" if count > matrix.max() / 2 else "black",
        )
    ax.set_xticks([0, 1], ["survived", "died"])
    ax.set_yticks([0, 1], ["survived", "died"])
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    return "confusion_matrix.png", _save(
        plt,
        fig,
        ax,
        run.run_dir / "confusion_matrix.png",
        f"Confusion matrix (operating point {run.threshold:g})",
        "Confusion matrix",
    )


def _roc_plot(plt: Any, run: _Run) -> tuple[str, str]:
    from sklearn.metrics import roc_curve

    auc_low, auc_high = run.auc_ci
    fpr, tpr, _ = roc_curve(run.y, run.proba)
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.plot(fpr, tpr, label=f"AUC {run.metrics['AUC_weighted']:.3f} (95% CI {auc_low:.3f}-{auc_high:.3f})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.legend(loc="lower right")
    return "roc_curve.png", _save(plt, fig, ax, run.run_dir / "roc_curve.png", "ROC curve", "ROC curve")


def _precision_recall_plot(plt: Any, run: _Run) -> tuple[str, str]:
    from sklearn.metrics import precision_recall_curve

    precision, recall, _ = precision_recall_curve(run.y, run.proba)
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.plot(recall, precision, label=f"AP {run.metrics['average_precision_score_weighted']:.3f}")
    ax.axhline(float(np.mean(run.y)), linestyle="--", color="grey", label="base rate")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.legend(loc="lower left")
    return "pr_curve.png", _save(
        plt, fig, ax, run.run_dir / "pr_curve.png", "Precision-recall curve", "Precision-recall curve"
    )


def _calibration_plot(plt: Any, run: _Run) -> tuple[str, str]:
    from sklearn.calibration import calibration_curve

    # Quantile bins: each point holds a tenth of the patients, so no point rests on a handful of them.
    observed, mean_predicted = calibration_curve(run.y, run.proba, n_bins=10, strategy="quantile")
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    ax.plot(mean_predicted, observed, marker="o", label=f"model (Brier {run.brier:.3f})")
    ax.set_xlabel("predicted probability (mean per tenth of patients)")
    ax.set_ylabel("observed death rate")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left")
    return "calibration.png", _save(
        plt, fig, ax, run.run_dir / "calibration.png", "Calibration (out-of-fold)", "Calibration"
    )


def _feature_importance_plot(
    plt: Any, run: _Run, pipeline: Any, X: pd.DataFrame, seed: int, facts: dict[str, Any] | None
) -> tuple[str, str]:
    """Permutation importance on the training rows (not out-of-fold); leaking columns in red."""
    from sklearn.inspection import permutation_importance

    importance = permutation_importance(pipeline, X, run.y, scoring="roc_auc", n_repeats=5, random_state=seed)
    order = np.argsort(importance.importances_mean)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    leaking = set(facts.get("leaking_columns", ())) if facts else set()
    ax.barh(
        np.array(X.columns)[order],
        importance.importances_mean[order],
        xerr=importance.importances_std[order],
        color=["#c44e52" if c in leaking else "#4c72b0" for c in np.array(X.columns)[order]],
    )
    ax.set_xlabel("drop in ROC AUC when the feature is shuffled")
    return "feature_importance.png", _save(
        plt,
        fig,
        ax,
        run.run_dir / "feature_importance.png",
        "Feature importance (permutation, training rows)" + ("\nred: leaks the outcome" if leaking else ""),
        "Feature importance",
    )


# -- sections: each returns its HTML, heading included -----------------------------------------


def _metrics_section(run: _Run) -> str:
    auc_low, auc_high = run.auc_ci
    metrics = run.metrics
    table = _table(
        ["metric", "value"],
        [
            [
                "headline: AUC_weighted, out-of-fold",
                Markup(f"{metrics['AUC_weighted']:.4f} (95% CI {auc_low:.3f} to {auc_high:.3f})"),
            ],
            ["Brier score (0 is perfect; 0.25 for always answering 0.5)", Markup(f"{run.brier:.4f}")],
            ["accuracy at 0.5 (AutoML's convention; not the operating point)", metrics["accuracy"]],
            ["precision at 0.5 (not the operating point)", metrics["precision_score_binary"]],
            ["recall at 0.5 (not the operating point)", metrics["recall_score_binary"]],
        ],
    )
    return f"""<h2>Metrics</h2>{table}
<p class="note">The AUC interval is a percentile bootstrap: the patients' out-of-fold probabilities resampled with
replacement {BOOTSTRAP_RESAMPLES} times. It shows how much the figure could move with another {len(run.y)} patients
like these; the selection table's fold sd shows the spread across folds.</p>"""


def _with_interval(k: int, n: int) -> Markup:
    from jobs.local.model_card import Proportion

    return Markup(html.escape(Proportion(k, n).text()))


def _thresholds_section(run: _Run) -> str:
    chosen_threshold = run.threshold
    rows = _merge_chosen(
        threshold_rows(run.y, run.proba, tuple(sorted({*THRESHOLDS, chosen_threshold}))), chosen_threshold
    )
    positives, negatives = int(np.sum(run.y == 1)), int(np.sum(run.y == 0))

    def cells(r: dict[str, Any]) -> list[Any]:
        flagged = run.proba >= r["threshold"]
        tp, fp = int(np.sum(flagged & (run.y == 1))), int(np.sum(flagged & (run.y == 0)))
        return [
            _with_interval(tp, positives),
            _with_interval(negatives - fp, negatives),
            _with_interval(tp, tp + fp),
            _with_interval(negatives - fp, len(run.y) - tp - fp),
        ]

    table = _table(
        ["threshold", "patients flagged", "sensitivity", "specificity", "PPV", "NPV"],
        [
            [
                Markup(
                    _threshold_text(r["threshold"], rows)
                    + (" (the operating point)" if r["threshold"] == chosen_threshold else "")
                ),
                r["flagged"],
                *cells(r),
            ]
            for r in rows
        ],
        ["pick" if r["threshold"] == chosen_threshold else "" for r in rows],
    )
    return f"""<h2>Thresholds</h2>
<p class="note">The endpoint answers <code>result</code> = probability &ge; the operating point, and returns both.
"Flagged" means the probability is at or above the threshold. Sensitivity: share of the patients with the outcome
that are flagged; specificity: share of the others not flagged; PPV: share of flagged patients with the outcome;
NPV: share of unflagged patients without it. Each figure: value (95% Wilson interval; count). PPV and NPV hold at
this data's prevalence ({positives / len(run.y):.1%}). The highlighted row is the operating point:
{html.escape(run.threshold_rule)}; `jobs deploy --threshold` or `--min-sensitivity` choose another.</p>
{table}"""


def _threshold_text(threshold: float, rows: list[dict[str, Any]]) -> str:
    """The threshold with 2 decimals, or up to 4 when 2 would read like another row's."""
    others = [r["threshold"] for r in rows if r["threshold"] != threshold]
    for digits in (2, 3):
        if all(f"{o:.{digits}f}" != f"{threshold:.{digits}f}" for o in others):
            return f"{threshold:.{digits}f}"
    return f"{threshold:.4f}"


def _merge_chosen(rows: list[dict[str, Any]], chosen: float) -> list[dict[str, Any]]:
    """The rows without a plain threshold that reads like the chosen one (2 decimals) and flags the same
    patients: one row, the chosen one, instead of two identical ones."""
    (pick,) = [r for r in rows if r["threshold"] == chosen]
    same = {key: value for key, value in pick.items() if key != "threshold"}
    return [
        r
        for r in rows
        if r is pick
        or f"{r['threshold']:.2f}" != f"{chosen:.2f}"
        or {key: value for key, value in r.items() if key != "threshold"} != same
    ]


def _plots_section(images: dict[str, str]) -> str:
    plots = "".join(
        f'<figure><img src="{name}" alt="{title}"><figcaption>{title}</figcaption></figure>'
        for name, title in images.items()
    )
    return f'<h2>Plots</h2><div class="plots">{plots}</div>'


def _selection_section(selection: list[dict[str, Any]] | None, rule: str | None, facts: dict[str, Any] | None) -> str:
    selection_html = ""
    if selection:
        selection_html = _table(
            [
                "candidate",
                "kind",
                "mean fold score",
                "fold sd",
                "lead over the best baseline (noise)",
                "noise vs the pick",
                "single-row predict (ms)",
            ],
            [
                [
                    Markup(
                        ("<b>" + html.escape(r["name"]) + "</b> (picked)") if r["chosen"] else html.escape(r["name"])
                    ),
                    r["kind"],
                    Markup(f"{r['score']:.4f}"),
                    r["fold_sd"],
                    Markup(f"{r['lead_over_baseline']:+.4f} ({r['noise_vs_baseline']:.4f})")
                    if r.get("lead_over_baseline") is not None
                    else "",
                    r["noise_vs_pick"],
                    Markup(f"{r['predict_ms']:.2f}"),
                ]
                for r in selection
            ],
            ["pick" if r["chosen"] else "" for r in selection],
        )
    folds = (facts or {}).get("budget", {}).get("selection_folds", "")
    return f"""<h2>Final selection</h2>
<p class="note">Every candidate is scored on the same {html.escape(str(folds))} folds (repeats x folds of the
project's stratified splits). <b>Rule:</b> {html.escape(rule or "the best score")}.</p>
{selection_html}
<p class="note">Why the search's scores (below) run higher than these: FLAML reports, for each learner, the best
of its many trials, each measured on one set of folds; the maximum of many noisy measurements favours the lucky
ones. The final selection measures each candidate once more, on more folds. Even the pick's final score is a
little optimistic, since it was picked on these folds.</p>"""


def _leaderboard_section(leaderboard: list[dict[str, Any]]) -> str:
    score_key = next((k for k in (leaderboard[0] if leaderboard else {}) if k.startswith("cv_")), "score")
    board_table = _table(
        ["learner", "trials", score_key, "best configuration (rounded)"],
        [
            [
                r["learner"],
                r["trials"],
                r.get(score_key, ""),
                Markup(f"<code>{html.escape(_config_text(r.get('best_config')))}</code>"),
            ]
            for r in leaderboard
        ],
    )
    return f"""<h2>Leaderboard of the search</h2>
{board_table}"""


def _facts_section(facts: dict[str, Any] | None) -> str:
    return f"<h2>Run facts</h2>{_facts_table(facts) if facts else ''}"


def _page(
    run: _Run,
    best_learner: str,
    images: dict[str, str],
    leak: str | None,
    facts: dict[str, Any] | None,
    sections: list[str],
) -> str:
    """The whole page: head and style, the leak warning (if any) and the summary, then `sections` in order."""
    leak_html = re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(leak)) if leak else ""
    warning = f'<div class="leak"><b>Leaking feature.</b> {leak_html}</div>' if leak else ""
    name = html.escape(run.run_dir.name)
    body = "\n".join(sections)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Heart failure AutoML: run {name}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 10px;text-align:left}}
tr.pick{{background:#eef5ea}}.leak{{border:2px solid #c44e52;background:#fbeaea;padding:0.8em 1em;margin:1em 0}}
.plots{{display:grid;grid-template-columns:1fr 1fr;gap:1em;align-items:end}}
figure{{margin:0}}figure img{{max-width:100%}}code{{font-size:0.8em}}p.note{{color:#555;max-width:60em}}</style></head>
<body><h1>Heart failure AutoML: run {name}</h1>
{warning}
<p>Picked model: <b>{html.escape(best_learner)}</b>. Every figure below except the feature importance is
out-of-fold: each patient is scored by a model that did not see them, on the project's {len(run.y)} patients
({int(np.sum(run.y))} of whom died).</p>
{body}
</body></html>
"""


def _config_text(config: Any) -> str:
    if isinstance(config, dict):
        return ", ".join(f"{key}={value}" for key, value in config.items())
    return "" if config is None else str(config)


def _facts_table(facts: dict[str, Any]) -> str:
    budget = facts.get("budget", {})
    if budget.get("mode") == "trials":
        spent = f"{budget.get('max_trials')} trials, no time limit (reproducible mode)"
    else:
        spent = f"time budget {budget.get('time_budget_s', 0):.0f} s"
    spent += (
        f"; used: {budget.get('trials')} trials in {budget.get('search_s')} s of search, "
        f"{budget.get('selection_s')} s of final selection"
    )
    if "baselines_s" in budget:  # facts given without the phases (a caller of write_report other than train)
        spent += (
            f" (the baselines took {budget['baselines_s']} s in their own process beside the search, its start "
            f"included; "
            f"the selection waited {budget['baselines_wait_s']} s for them)"
        )
    if "refit_s" in budget:
        spent += (
            "; refit on every row: done beside the search"
            if budget.get("refit_beside_search")
            else f"; refit on every row: {budget['refit_s']} s"
        )
    if "packaging_s" in budget:
        spent += f"; MLflow model, contract and card: {budget['packaging_s']} s"
    settings = facts.get("settings", {})
    rows: list[list[Any]] = [
        ["features used", ", ".join(facts.get("features_used", []))],
        ["features dropped", ", ".join(facts.get("features_dropped", [])) or "none"],
        ["budget", spent],
        ["data", f"{facts.get('data')} ({facts.get('rows')} rows), version {facts.get('data_version')}"],
        ["commit", facts.get("commit")],
        ["serving", facts.get("serving", "not recorded")],
        [
            "settings",
            Markup(
                "<code>"
                + html.escape(
                    ", ".join(
                        f"{k.removeprefix('setting.')}={v}" for k, v in settings.items() if k.startswith("setting.")
                    )
                )
                + "</code>"
            ),
        ],
    ]
    return _table(["fact", "value"], rows)
