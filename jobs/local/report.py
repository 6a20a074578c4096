"""The training report: one HTML page with plots, for the best model of a local run."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def _figure():
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


def write_report(run_dir: Path, pipeline: Any, X: pd.DataFrame, y: pd.Series, proba: np.ndarray,
                 metrics: dict[str, float], leaderboard: list[dict[str, Any]], best_learner: str,
                 seed: int) -> Path:
    """Plots from out-of-fold probabilities (what the model does on rows it did not see)."""
    from sklearn.inspection import permutation_importance
    from sklearn.metrics import confusion_matrix, precision_recall_curve, roc_curve

    plt = _figure()
    images: dict[str, str] = {}

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

    fpr, tpr, _ = roc_curve(y, proba)
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.plot(fpr, tpr, label=f"AUC {metrics['AUC_weighted']:.3f}")
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

    importance = permutation_importance(pipeline, X, y, scoring="roc_auc", n_repeats=5, random_state=seed)
    order = np.argsort(importance.importances_mean)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.barh(np.array(X.columns)[order], importance.importances_mean[order],
            xerr=importance.importances_std[order], color="#4c72b0")
    ax.set_xlabel("drop in ROC AUC when the feature is shuffled")
    images["feature_importance.png"] = _save(plt, fig, ax, run_dir / "feature_importance.png",
                                             "Feature importance (permutation, training rows)", "Feature importance")

    metric_rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{value:.4f}</td></tr>"
        for name, value in (("AUC_weighted", metrics["AUC_weighted"]), ("accuracy", metrics["accuracy"]),
                            ("precision", metrics["precision_score_binary"]),
                            ("recall", metrics["recall_score_binary"]))
    )
    score_key = next((k for k in (leaderboard[0] if leaderboard else {}) if k.startswith("cv_")), "score")
    board_rows = "".join(
        f"<tr><td>{html.escape(str(row['learner']))}</td><td>{row['trials']}</td><td>{row.get(score_key, '')}</td>"
        f"<td><code>{html.escape(str(row.get('best_config')))}</code></td></tr>"
        for row in leaderboard
    )
    plots = "".join(f'<figure><img src="{name}" alt="{title}"><figcaption>{title}</figcaption></figure>'
                    for name, title in images.items())
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Heart failure AutoML: run {html.escape(run_dir.name)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 10px;text-align:left}}
.plots{{display:grid;grid-template-columns:1fr 1fr;gap:1em;align-items:end}}
figure{{margin:0}}figure img{{max-width:100%}}code{{font-size:0.8em}}</style></head>
<body><h1>Heart failure AutoML: run {html.escape(run_dir.name)}</h1>
<p>Best model: <b>{html.escape(best_learner)}</b>. Metrics are out-of-fold (cross-validated) on {len(y)} patients,
{int(np.sum(y))} of whom died.</p>
<h2>Metrics</h2><table><tr><th>metric</th><th>value</th></tr>{metric_rows}</table>
<h2>Plots</h2><div class="plots">{plots}</div>
<h2>Leaderboard of tried models</h2>
<table><tr><th>learner</th><th>trials</th><th>{html.escape(score_key)}</th><th>best configuration</th></tr>
{board_rows}</table>
</body></html>
"""
    report = run_dir / "report.html"
    report.write_text(page)
    return report
