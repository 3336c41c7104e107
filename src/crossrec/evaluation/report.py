"""Self-contained HTML report of a run or a comparison: tables plus base64-embedded PNG charts.

:func:`render_report` is a pure function of the content of ``results.json``, the per-model
top-K lists and the training item popularity; it returns the HTML text. Charts use matplotlib's
Agg backend: metric bars with bootstrap confidence intervals, learning curves, the metric by user
activity bucket (and the gain over the reference model), and catalogue coverage / popularity.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from crossrec._extras import has_extra
from crossrec.evaluation.slices import bucket_order

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["render_report"]

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:1rem 0;font-size:.85rem;display:block;overflow-x:auto}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
img{max-width:100%;border:1px solid #eee;margin:.5rem 0}
.significant{font-weight:bold;color:#075}
pre{background:#f7f7f7;padding:1rem;overflow:auto;font-size:.8rem}
"""


def _pyplot() -> Any:
    """matplotlib's pyplot on the non-interactive Agg backend, imported when a chart is drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    _pyplot().close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _image(title: str, figure: Figure) -> str:
    return (
        f'<figure><img class="chart" alt="{html.escape(title)}" src="data:image/png;base64,{_png(figure)}">'
        + (f"<figcaption>{html.escape(title)}</figcaption></figure>")
    )


def _table(rows: Sequence[Mapping[str, Any]], table_id: str, columns: Sequence[str] | None = None) -> str:
    if not rows:
        return "<p>(none)</p>"
    columns = list(columns or rows[0])
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = []
    for row in rows:
        css = ' class="significant"' if row.get("significant") is True else ""
        cells = "".join(f"<td>{html.escape(_fmt(row.get(c)))}</td>" for c in columns)
        body.append(f"<tr{css}>{cells}</tr>")
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _fmt(value: Any) -> str:
    if isinstance(value, float | np.floating):
        if np.isnan(value):
            return "nan"
        return f"{value:.2e}" if 0 < abs(value) < 1e-3 else f"{value:.4f}"
    return "" if value is None else str(value)


def _metric_bars(results: Mapping[str, Any]) -> Figure | None:
    models = results["models"]
    metrics, ks = results["metrics"], results["ks"]
    if not metrics:
        return None
    figure, axes = _pyplot().subplots(1, len(metrics), figsize=(3.2 * len(metrics), 3.2), squeeze=False)
    width = 0.8 / max(1, len(models))
    for axis, metric in zip(axes[0], metrics, strict=True):
        for m, (name, model) in enumerate(models.items()):
            columns = [f"{metric}@{k}" for k in ks]
            means = np.array([model["summary"].get(c, np.nan) for c in columns])
            ci = model.get("intervals", {})
            low = np.array([means[i] - ci.get(c, [means[i]] * 2)[0] for i, c in enumerate(columns)])
            high = np.array([ci.get(c, [means[i]] * 2)[1] - means[i] for i, c in enumerate(columns)])
            x = np.arange(len(ks)) + m * width
            axis.bar(
                x,
                means,
                width,
                yerr=np.clip(np.nan_to_num(np.vstack([low, high])), 0, None),
                capsize=3,
                label=name,
            )
        axis.set_xticks(np.arange(len(ks)) + width * (len(models) - 1) / 2, [f"@{k}" for k in ks])
        axis.set_title(metric)
    axes[0][0].legend(fontsize="small")
    figure.tight_layout()
    return figure


def _learning_curves(curves: Mapping[str, Sequence[Mapping[str, float]]]) -> Figure | None:
    curves = {name: list(points) for name, points in curves.items() if points}
    if not curves:
        return None
    keys = sorted({key for points in curves.values() for p in points for key in p if key != "epoch"})
    figure, axes = _pyplot().subplots(1, len(keys), figsize=(4 * len(keys), 3.2), squeeze=False)
    for axis, key in zip(axes[0], keys, strict=True):
        for name, points in curves.items():
            xs = [p.get("epoch", i) for i, p in enumerate(points) if key in p]
            ys = [p[key] for p in points if key in p]
            if ys:
                axis.plot(xs, ys, marker="o", markersize=3, label=name)
        axis.set_xlabel("epoch")
        axis.set_title(key)
    axes[0][0].legend(fontsize="small")
    figure.tight_layout()
    return figure


def _activity(results: Mapping[str, Any], metric: str) -> Figure | None:
    per_model = {
        name: {row["group"]: row for row in model["slices"] if row["slice"] == "activity"}
        for name, model in results["models"].items()
    }
    labels = bucket_order([label for rows in per_model.values() for label in rows])
    if not labels:
        return None
    names = list(per_model)
    panels = 2 if len(names) > 1 else 1
    figure, axes = _pyplot().subplots(1, panels, figsize=(6 * panels, 3.4), squeeze=False)
    width = 0.8 / len(names)
    x = np.arange(len(labels))
    for m, name in enumerate(names):
        values = [per_model[name].get(label, {}).get(metric, np.nan) for label in labels]
        axes[0][0].bar(x + m * width, values, width, label=name)
    counts = [max(per_model[n].get(label, {}).get("n_users", 0) for n in names) for label in labels]
    axes[0][0].set_xticks(
        x + width * (len(names) - 1) / 2, [f"{lab}\n(n={c})" for lab, c in zip(labels, counts, strict=True)]
    )
    axes[0][0].set_title(f"{metric} by training interactions of the user")
    axes[0][0].legend(fontsize="small")
    if panels == 2:
        reference = results.get("baseline") or names[0]
        for name in [n for n in names if n != reference]:
            gain = [
                per_model[name].get(label, {}).get(metric, np.nan)
                - per_model[reference].get(label, {}).get(metric, np.nan)
                for label in labels
            ]
            axes[0][1].plot(x, gain, marker="o", label=f"{name} - {reference}")
        axes[0][1].axhline(0, color="grey", linewidth=0.8)
        axes[0][1].set_xticks(x, labels)
        axes[0][1].set_title(f"gain in {metric} over {reference}")
        axes[0][1].legend(fontsize="small")
    figure.tight_layout()
    return figure


def _coverage_popularity(
    results: Mapping[str, Any], recommendations: Mapping[str, np.ndarray], popularity: np.ndarray | None
) -> Figure | None:
    models = results["models"]
    k = max(results["ks"]) if results["ks"] else None
    if k is None:
        return None
    figure, axes = _pyplot().subplots(1, 2, figsize=(11, 3.4), squeeze=False)
    names = list(models)
    x = np.arange(len(names))
    for offset, key in ((-0.2, f"coverage@{k}"), (0.2, f"gini@{k}")):
        axes[0][0].bar(x + offset, [models[n]["summary"].get(key, np.nan) for n in names], 0.4, label=key)
    axes[0][0].set_xticks(x, names, rotation=20)
    axes[0][0].set_title("catalogue coverage and Gini of exposure")
    axes[0][0].legend(fontsize="small")
    if popularity is not None and len(popularity):
        order = np.argsort(-popularity, kind="stable")
        share_items = np.arange(1, len(order) + 1) / len(order)
        axes[0][1].plot(
            share_items, np.cumsum(popularity[order]) / max(1, popularity.sum()), "k--", label="training"
        )
        for name in names:
            recs = recommendations.get(name)
            if recs is None:
                continue
            top = recs[:, :k]
            counts = np.bincount(top[top >= 0], minlength=len(popularity))[order]
            axes[0][1].plot(share_items, np.cumsum(counts) / max(1, counts.sum()), label=name)
        axes[0][1].set_xlabel("share of items, most popular first")
        axes[0][1].set_ylabel("cumulative share")
        axes[0][1].set_title(f"concentration of top-{k} recommendations")
        axes[0][1].legend(fontsize="small")
    figure.tight_layout()
    return figure


def render_report(
    results: Mapping[str, Any],
    recommendations: Mapping[str, np.ndarray] | None = None,
    popularity: np.ndarray | None = None,
    title: str = "crossrec evaluation",
) -> str:
    """HTML text of the report for ``results`` (the content of ``results.json``).

    Parameters
    ----------
    results
        Must hold ``models`` (name -> ``summary``, ``intervals``, ``slices``), ``metrics``, ``ks``;
        optionally ``comparison``, ``learning_curves``, ``split``, ``config``.
    recommendations
        Name -> top-K lists, for the popularity-concentration chart.
    popularity
        Training interactions per item.
    """
    models = results["models"]
    ks = results["ks"]
    main = f"{results['metrics'][0]}@{ks[0]}" if results["metrics"] and ks else None
    for preferred in ("ndcg", "recall"):
        if preferred in results["metrics"]:
            main = f"{preferred}@{ks[0]}"
            break
    accuracy = [f"{m}@{k}" for m in results["metrics"] for k in ks]
    others = sorted({c for m in models.values() for c in m["summary"]} - set(accuracy), key=_column_key)
    summary_columns = accuracy + others
    summary_rows = [
        {"model": name} | {c: m["summary"].get(c) for c in summary_columns} for name, m in models.items()
    ]
    parts = [
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        _meta_paragraph(results),
        "<h2>Metrics</h2>",
        "<p>Means over evaluated users; list-level metrics (coverage, gini) and rating errors as defined in "
        "<code>crossrec.evaluation</code>.</p>",
        _table(summary_rows, "metrics", ["model", *summary_columns]),
    ]
    charts = [  # drawn only when matplotlib is installed (the report extra)
        ("Accuracy with 95% bootstrap confidence intervals", lambda: _metric_bars(results)),
        ("Learning curves", lambda: _learning_curves(results.get("learning_curves") or {})),
        (f"{main} by user activity", (lambda: _activity(results, main)) if main else None),
        (
            "Coverage and popularity",
            lambda: _coverage_popularity(results, recommendations or {}, popularity),
        ),
        ("Modality ablation: contribution with 95% CI", lambda: _ablation(results)),
    ]
    parts.append("<h2>Charts</h2>")
    if has_extra("report"):
        drawn = [(caption, draw()) for caption, draw in charts if draw is not None]
        parts.extend(_image(caption, figure) for caption, figure in drawn if figure is not None)
    else:
        parts.append("<p>Charts need matplotlib: <code>pip install 'crossrec[report]'</code>.</p>")
    comparison = results.get("comparison") or []
    if comparison:
        parts.append(
            "<h2>Paired comparison</h2><p>Difference = model - reference, bootstrap 95% CI over users, "
            "two-sided Wilcoxon signed-rank test, Holm-adjusted over pairs when more than two models.</p>"
        )
        parts.append(_table(comparison, "comparison"))
    ablation = (results.get("extra") or {}).get("ablation") or []
    if ablation:
        parts.append(
            "<h2>Modality ablation</h2><p>Each modality masked in turn; contribution = full model - "
            "masked model, paired bootstrap 95% CI over users.</p>"
        )
        parts.append(_table(ablation, "ablation"))
    parts.append("<h2>Slices</h2>")
    for name, model in models.items():
        parts.append(f"<h3>{html.escape(name)}</h3>")
        rows = model["slices"]
        columns = ["slice", "group", "n_users", *[c for c in summary_columns if rows and c in rows[0]]]
        parts.append(_table(rows, f"slices-{html.escape(name)}", columns))
    parts.append("<h2>Configuration</h2><pre>")
    parts.append(
        html.escape(
            json.dumps(
                {
                    k: results.get(k)
                    for k in ("config", "split", "seeds", "timings", "versions", "data_manifest_hash")
                },
                indent=2,
                default=str,
            )
        )
    )
    parts.append("</pre></body></html>")
    return "\n".join(parts)


def _ablation(results: Mapping[str, Any]) -> Figure | None:
    """Bar chart of each modality's contribution (``extra.ablation`` rows of a run)."""
    rows = [r for r in (results.get("extra") or {}).get("ablation") or [] if r.get("modality") != "none"]
    if not rows:
        return None
    names = [str(r["modality"]) for r in rows]
    values = np.array([float(r["contribution"]) for r in rows])
    low = values - np.array([float(r.get("ci_low", r["contribution"])) for r in rows])
    high = np.array([float(r.get("ci_high", r["contribution"])) for r in rows]) - values
    figure, axis = _pyplot().subplots(figsize=(6, 0.4 * len(rows) + 1.2))
    axis.barh(names, values, xerr=np.vstack([low, high]), color="#4c72b0", capsize=3)
    axis.axvline(0, color="black", linewidth=0.8)
    axis.set_xlabel("contribution (full - masked)")
    return figure


def _column_key(column: str) -> tuple[str, int]:
    name, _, k = column.partition("@")
    return (name, int(k) if k.isdigit() else 0)


def _meta_paragraph(results: Mapping[str, Any]) -> str:
    split = results.get("split") or {}
    return (
        f"<p>Part <b>{html.escape(str(results.get('part', '')))}</b> of split "
        f"<code>{html.escape(str(split.get('fingerprint', '')))}</code> "
        f"({html.escape(str(split.get('protocol', '')))}, seed {html.escape(str(split.get('seed', '')))}), "
        f"{len(results['models'])} model(s).</p>"
    )
