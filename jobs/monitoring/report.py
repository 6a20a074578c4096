"""The monitoring report: one HTML page with plots, written beside the model's training report."""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np

from jobs.monitoring.check import CATEGORICAL, PREDICTION, Result
from jobs.monitoring.drift import P_VALUE_METRICS


def _use_agg() -> None:
    """No display: the report is drawn to files, from a terminal or a job."""
    import matplotlib

    matplotlib.use("Agg")


def _summary_plot(result: Result, path: Path) -> None:
    _use_agg()
    import matplotlib.pyplot as plt  # imported here, as pyplot is, so that the module loads fast

    names = [d.feature for d in result.features]
    # One bar per feature as a share of its own threshold, so numerical and categorical metrics
    # (and distances and p-values) read on one axis: above 1 is drift.
    ratios = [
        (d.threshold / max(d.value, 1e-12)) if d.metric in P_VALUE_METRICS else d.value / d.threshold
        for d in result.features
    ]
    fig, ax = plt.subplots(figsize=(8, 4.2))
    colors = ["#c0392b" if d.drifted else "#2e86c1" for d in result.features]
    ax.barh(names[::-1], ratios[::-1], color=colors[::-1])
    ax.axvline(1.0, color="black", linestyle="--", linewidth=1)
    ax.set_xlabel("metric / threshold (p-value tests: threshold / p); above 1 is drift")
    ax.set_title("Data drift per feature")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _distribution_plot(name: str, reference: np.ndarray, production: np.ndarray, path: Path, title: str) -> None:
    _use_agg()
    import matplotlib.pyplot as plt  # imported here, as pyplot is, so that the module loads fast

    fig, ax = plt.subplots(figsize=(6, 3.4))
    if name in (*CATEGORICAL, PREDICTION):
        labels = ["false", "true"]
        ref = [np.mean(reference == v) for v in (0, 1)]
        prod = [np.mean(production == v) if len(production) else 0 for v in (0, 1)]
        x = np.arange(2)
        ax.bar(x - 0.2, ref, 0.4, label=f"training ({len(reference)})", color="#7f8c8d")
        ax.bar(x + 0.2, prod, 0.4, label=f"production ({len(production)})", color="#c0392b")
        ax.set_xticks(x, labels)
        ax.set_ylabel("share")
    else:
        edges = np.histogram_bin_edges(np.concatenate([reference, production]), bins=25)
        ax.hist(
            reference,
            bins=edges.tolist(),
            density=True,
            alpha=0.55,
            label=f"training ({len(reference)})",
            color="#7f8c8d",
        )
        ax.hist(
            production,
            bins=edges.tolist(),
            density=True,
            alpha=0.55,
            label=f"production ({len(production)})",
            color="#c0392b",
        )
        ax.set_ylabel("density")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(
    folder: Path,
    result: Result,
    reference: dict[str, np.ndarray],
    reference_predictions: np.ndarray,
    reference_label: str,
) -> Path:
    """report.html, summary.json and the plots in `folder`; returns the report's path."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "summary.json").write_text(json.dumps(result.summary(), indent=2))
    images = _plots(folder, result, reference, reference_predictions)
    report = folder / "report.html"
    report.write_text(_page(result, images, reference_label))
    return report


def _plots(
    folder: Path, result: Result, reference: dict[str, np.ndarray], reference_predictions: np.ndarray
) -> list[tuple[str, str]]:
    """Draw the summary, each drifted feature's distributions and the predictions' into `folder`:
    (file name, caption) of each, in the page's order."""
    window = result.window
    images: list[tuple[str, str]] = []
    if result.features:
        _summary_plot(result, folder / "drift.png")
        images.append(("drift.png", "Every feature's drift metric against its threshold."))
        for d in result.features:
            if d.drifted:
                file = f"feature-{d.feature}.png"
                _distribution_plot(
                    d.feature,
                    reference[d.feature],
                    window.features[d.feature],
                    folder / file,
                    f"{d.feature}: {d.metric} {d.value:.3f}",
                )
                images.append((file, f"{d.feature}: training against production."))
    if result.prediction is not None:
        _distribution_plot(
            "DEATH_EVENT",
            reference_predictions.astype(float),
            window.predictions.astype(float),
            folder / "prediction.png",
            f"predicted DEATH_EVENT: {result.prediction.metric} {result.prediction.value:.3f}",
        )
        images.append(
            (
                "prediction.png",
                "The predicted DEATH_EVENT: the model's answers on its training data "
                "against its answers in production.",
            )
        )
    return images


def _status(result: Result) -> str:
    """The verdict's paragraphs: each alert, or that nothing crossed; and when drift was not computed, why."""
    esc = html.escape
    status = (
        "<p class='bad'>" + "<br>".join(esc(a) for a in result.alerts) + "</p>"
        if result.alerts
        else "<p class='good'>No threshold crossed.</p>"
    )
    if result.prediction is None:
        status += (
            f"<p class='bad'>Only {result.window.scored} scored record(s) in the window, fewer than "
            f"{result.thresholds.min_records} (--min-records): drift was not computed.</p>"
        )
    return status


def _rows(result: Result) -> tuple[str, str]:
    """The table rows: each drift metric against its threshold; the refused records by field and reason."""
    esc = html.escape
    drift = "".join(
        f"<tr class='{'bad' if d.drifted else ''}'><td>{esc(d.feature)}</td><td>{d.kind}</td><td>{d.metric}</td>"
        f"<td>{d.value:.4f}</td><td>{'&lt;' if d.metric in P_VALUE_METRICS else '&gt;'} {d.threshold:g}</td>"
        f"<td>{'drift' if d.drifted else ''}</td></tr>"
        for d in [*result.features, *([result.prediction] if result.prediction else [])]
    )
    reasons = (
        "".join(
            f"<tr><td>{esc(f)}</td><td>{esc(r)}</td><td>{c}</td></tr>"
            for (f, r), c in sorted(result.window.refusal_reasons.items())
        )
        or "<tr><td colspan=3>none</td></tr>"
    )
    return drift, reasons


def _page(result: Result, images: list[tuple[str, str]], reference_label: str) -> str:
    """The report's HTML: the window and what was left out of it, the verdict, the tables and the plots."""
    esc = html.escape
    window = result.window
    drift, reasons = _rows(result)
    figures = "".join(
        f"<figure><img src='{file}' alt='{esc(caption)}'><figcaption>{esc(caption)}</figcaption></figure>"
        for file, caption in images
    )
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Monitoring: {esc(result.model)}</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto;color:#222}}td,th{{padding:2px 10px;
text-align:left}}tr.bad td{{background:#fdecea}}p.bad{{color:#a93226;font-weight:bold}}p.good{{color:#1e8449;
font-weight:bold}}figure{{display:inline-block;margin:0 1em 1em 0}}img{{max-width:100%}}</style></head><body>
<h1>Monitoring {esc(result.model)}</h1>
<p>Window {esc(window.start)} to {esc(window.end)}: {window.scored} scored record(s), {window.refused_records}
refused ({window.refused_share:.1%}; threshold {result.thresholds.max_refused_share:.1%}).
Reference: {esc(reference_label)}. {window.other_models} record(s) of other model versions and
{window.unreadable_lines} unreadable line(s) left out.</p>
{_status(result)}
<h2>Drift</h2><table><tr><th>feature</th><th>type</th><th>metric</th><th>value</th><th>drift when</th><th></th></tr>
{drift}</table>
{figures}
<h2>Refused records, by field and reason</h2><table><tr><th>field</th><th>reason</th><th>problems</th></tr>
{reasons}</table>
</body></html>"""
