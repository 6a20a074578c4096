"""The training report: one HTML page with plots, for the best model of a local run."""

from __future__ import annotations

import html
import re
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


def bootstrap_auc_ci(y: Any, proba: Any, seed: int, resamples: int = BOOTSTRAP_RESAMPLES,
                     level: float = 0.95) -> tuple[float, float]:
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
        positives[usable] * negatives[usable])
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

        rows.append({"threshold": float(threshold), "flagged": tp + fp, "sensitivity": ratio(tp, tp + fn),
                     "specificity": ratio(tn, tn + fp), "ppv": ratio(tp, tp + fp), "npv": ratio(tn, tn + fn)})
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
        + "".join(f"<td>{cell if isinstance(cell, Markup) else _fmt(cell)}</td>" for cell in row) + "</tr>"
        for i, row in enumerate(rows))
    return f"<table><tr>{head}</tr>{body}</table>"


class Markup(str):
    """Text already escaped for HTML."""


def write_report(run_dir: Path, pipeline: Any, X: pd.DataFrame, y: pd.Series, proba: np.ndarray,
                 metrics: dict[str, float], leaderboard: list[dict[str, Any]], best_learner: str,
                 seed: int, *, selection: list[dict[str, Any]] | None = None, rule: str | None = None,
                 facts: dict[str, Any] | None = None, leak: str | None = None,
                 target_sensitivity: float = TARGET_SENSITIVITY) -> Path:
    """Write run_dir/report.html and its plots; return the page's path.

    Everything but the feature importance comes from out-of-fold probabilities `proba` (one per row of
    X, the model's answer for a patient it did not see). `selection` is the final selection's rows
    (name, kind, score, fold_sd, noise_vs_pick, predict_ms, chosen), `rule` why the pick won, `facts` the
    run's facts (data, data_version, commit, features_used, features_dropped, rows, budget, settings) and
    `leak` a warning sentence when the model uses a column known to leak the outcome.
    """
    from sklearn.calibration import calibration_curve
    from sklearn.inspection import permutation_importance
    from sklearn.metrics import brier_score_loss, confusion_matrix, precision_recall_curve, roc_curve

    plt = _figure()
    images: dict[str, str] = {}
    y_arr, proba = np.asarray(y), np.asarray(proba)

    predicted = (proba >= 0.5).astype(int)
    matrix = confusion_matrix(y, predicted)
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.imshow(matrix, cmap="Blues")
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, str(count), ha="center", va="center", fontsize=14,
                color="white" if count > matrix.max() / 2 else "black")
    ax.set_xticks([0, 1], ["survived", "died"])
    ax.set_yticks([0, 1], ["survived", "died"])
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    images["confusion_matrix.png"] = _save(plt, fig, ax, run_dir / "confusion_matrix.png",
                                           "Confusion matrix (threshold 0.5)", "Confusion matrix")

    auc_low, auc_high = bootstrap_auc_ci(y_arr, proba, seed)
    fpr, tpr, _ = roc_curve(y, proba)
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.plot(fpr, tpr, label=f"AUC {metrics['AUC_weighted']:.3f} (95% CI {auc_low:.3f}-{auc_high:.3f})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.legend(loc="lower right")
    images["roc_curve.png"] = _save(plt, fig, ax, run_dir / "roc_curve.png", "ROC curve", "ROC curve")

    precision, recall, _ = precision_recall_curve(y, proba)
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.plot(recall, precision, label=f"AP {metrics['average_precision_score_weighted']:.3f}")
    ax.axhline(float(np.mean(y)), linestyle="--", color="grey", label="base rate")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.legend(loc="lower left")
    images["pr_curve.png"] = _save(plt, fig, ax, run_dir / "pr_curve.png", "Precision-recall curve",
                                   "Precision-recall curve")

    brier = float(brier_score_loss(y_arr, proba))
    # Quantile bins: each point holds a tenth of the patients, so no point rests on a handful of them.
    observed, mean_predicted = calibration_curve(y_arr, proba, n_bins=10, strategy="quantile")
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    ax.plot(mean_predicted, observed, marker="o", label=f"model (Brier {brier:.3f})")
    ax.set_xlabel("predicted probability (mean per tenth of patients)")
    ax.set_ylabel("observed death rate")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left")
    images["calibration.png"] = _save(plt, fig, ax, run_dir / "calibration.png", "Calibration (out-of-fold)",
                                      "Calibration")

    importance = permutation_importance(pipeline, X, y, scoring="roc_auc", n_repeats=5, random_state=seed)
    order = np.argsort(importance.importances_mean)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    leaking = set(facts.get("leaking_columns", ())) if facts else set()
    ax.barh(np.array(X.columns)[order], importance.importances_mean[order],
            xerr=importance.importances_std[order],
            color=["#c44e52" if c in leaking else "#4c72b0" for c in np.array(X.columns)[order]])
    ax.set_xlabel("drop in ROC AUC when the feature is shuffled")
    images["feature_importance.png"] = _save(plt, fig, ax, run_dir / "feature_importance.png",
                                             "Feature importance (permutation, training rows)"
                                             + ("\nred: leaks the outcome" if leaking else ""), "Feature importance")

    metric_table = _table(["metric", "value"], [
        ["AUC_weighted", Markup(f"{metrics['AUC_weighted']:.4f} (95% CI {auc_low:.3f} to {auc_high:.3f})")],
        ["Brier score (0 is perfect; 0.25 for always answering 0.5)", Markup(f"{brier:.4f}")],
        ["accuracy (threshold 0.5)", metrics["accuracy"]],
        ["precision (threshold 0.5)", metrics["precision_score_binary"]],
        ["recall (threshold 0.5)", metrics["recall_score_binary"]],
    ])
    chosen_threshold = threshold_for_sensitivity(y_arr, proba, target_sensitivity)
    rows = threshold_rows(y_arr, proba, tuple(sorted({*THRESHOLDS, chosen_threshold})))
    threshold_table = _table(
        ["threshold", "patients flagged", "sensitivity", "specificity", "PPV", "NPV"],
        [[Markup(f"{r['threshold']:.2f}" + (f" (sensitivity &ge; {target_sensitivity:.0%})"
                                            if r["threshold"] == chosen_threshold else "")),
          r["flagged"], r["sensitivity"], r["specificity"], r["ppv"], r["npv"]] for r in rows],
        ["pick" if r["threshold"] == chosen_threshold else "" for r in rows])

    selection_html = ""
    if selection:
        selection_html = _table(
            ["candidate", "kind", "mean fold score", "fold sd", "lead over the best baseline (noise)",
             "noise vs the pick", "single-row predict (ms)"],
            [[Markup(("<b>" + html.escape(r["name"]) + "</b> (picked)") if r["chosen"] else html.escape(r["name"])),
              r["kind"], Markup(f"{r['score']:.4f}"), r["fold_sd"],
              Markup(f"{r['lead_over_baseline']:+.4f} ({r['noise_vs_baseline']:.4f})")
              if r.get("lead_over_baseline") is not None else "",
              r["noise_vs_pick"], Markup(f"{r['predict_ms']:.2f}")] for r in selection],
            ["pick" if r["chosen"] else "" for r in selection])
    score_key = next((k for k in (leaderboard[0] if leaderboard else {}) if k.startswith("cv_")), "score")
    board_table = _table(["learner", "trials", score_key, "best configuration (rounded)"],
                         [[r["learner"], r["trials"], r.get(score_key, ""),
                           Markup(f"<code>{html.escape(_config_text(r.get('best_config')))}</code>")]
                          for r in leaderboard])
    facts_html = _facts_table(facts) if facts else ""
    plots = "".join(f'<figure><img src="{name}" alt="{title}"><figcaption>{title}</figcaption></figure>'
                    for name, title in images.items())
    leak_html = re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(leak)) if leak else ""
    warning = f'<div class="leak"><b>Leaking feature.</b> {leak_html}</div>' if leak else ""
    folds = (facts or {}).get("budget", {}).get("selection_folds", "")
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Heart failure AutoML: run {html.escape(run_dir.name)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 10px;text-align:left}}
tr.pick{{background:#eef5ea}}.leak{{border:2px solid #c44e52;background:#fbeaea;padding:0.8em 1em;margin:1em 0}}
.plots{{display:grid;grid-template-columns:1fr 1fr;gap:1em;align-items:end}}
figure{{margin:0}}figure img{{max-width:100%}}code{{font-size:0.8em}}p.note{{color:#555;max-width:60em}}</style></head>
<body><h1>Heart failure AutoML: run {html.escape(run_dir.name)}</h1>
{warning}
<p>Picked model: <b>{html.escape(best_learner)}</b>. Every figure below except the feature importance is
out-of-fold: each patient is scored by a model that did not see them, on the project's {len(y)} patients
({int(np.sum(y_arr))} of whom died).</p>
<h2>Metrics</h2>{metric_table}
<p class="note">The AUC interval is a percentile bootstrap: the patients' out-of-fold probabilities resampled with
replacement {BOOTSTRAP_RESAMPLES} times. It shows how much the figure could move with another {len(y)} patients
like these; the selection table's fold sd shows the spread across folds.</p>
<h2>Thresholds</h2>
<p class="note">The endpoint returns a probability; where to act on it is a clinical choice. "Flagged" means the
probability is at or above the threshold. Sensitivity: share of the patients who died that are flagged;
specificity: share of survivors not flagged; PPV: share of flagged patients who died; NPV: share of unflagged
patients who survived. The highlighted row is the highest threshold that still flags at least
{target_sensitivity:.0%} of the patients who died.</p>
{threshold_table}
<h2>Plots</h2><div class="plots">{plots}</div>
<h2>Final selection</h2>
<p class="note">Every candidate is scored on the same {html.escape(str(folds))} folds (repeats x folds of the
project's stratified splits). <b>Rule:</b> {html.escape(rule or "the best score")}.</p>
{selection_html}
<p class="note">Why the search's scores (below) run higher than these: FLAML reports, for each learner, the best
of its many trials, each measured on one set of folds; the maximum of many noisy measurements favours the lucky
ones. The final selection measures each candidate once more, on more folds. Even the pick's final score is a
little optimistic, since it was picked on these folds.</p>
<h2>Leaderboard of the search</h2>
{board_table}
<h2>Run facts</h2>{facts_html}
</body></html>
"""
    report = run_dir / "report.html"
    report.write_text(page)
    return report


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
    spent += (f"; used: {budget.get('trials')} trials in {budget.get('search_s')} s of search, "
              f"{budget.get('selection_s')} s of final selection")
    settings = facts.get("settings", {})
    rows: list[list[Any]] = [
        ["features used", ", ".join(facts.get("features_used", []))],
        ["features dropped", ", ".join(facts.get("features_dropped", [])) or "none"],
        ["budget", spent],
        ["data", f"{facts.get('data')} ({facts.get('rows')} rows), version {facts.get('data_version')}"],
        ["commit", facts.get("commit")],
        ["settings", Markup("<code>" + html.escape(", ".join(f"{k.removeprefix('setting.')}={v}"
                                                             for k, v in settings.items()
                                                             if k.startswith("setting."))) + "</code>")],
    ]
    return _table(["fact", "value"], rows)
