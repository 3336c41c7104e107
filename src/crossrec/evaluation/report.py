"""Self-contained HTML report of a run or a comparison: tables plus base64-embedded PNG charts.

:func:`render_report` is a pure function of the content of ``results.json``, the per-model
top-K lists and the training item popularity; it returns the HTML text. Charts use matplotlib's
Agg backend: metric bars with bootstrap confidence intervals, learning curves, the metric by user
activity bucket (and the gain over the reference model), catalogue coverage / popularity, and, for a
run with ``--curve``, the data-efficiency curve (best target-only vs kept model by fraction of target
training data, with its table).
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

__all__ = ["ACCURACY_METRICS", "baseline_pairs", "main_metric", "render_report"]

ACCURACY_METRICS = ("recall", "ndcg", "hit", "precision", "mrr", "map")
"""Per-user accuracy metrics; every other column of a summary is beyond accuracy (or a rating error)."""


def main_metric(metrics: Sequence[str], ks: Sequence[int]) -> str | None:
    """The headline metric of a run: NDCG (else recall, else the first metric) at the first K."""
    if not metrics or not ks:
        return None
    chosen = next((m for m in ("ndcg", "recall") if m in metrics), metrics[0])
    return f"{chosen}@{ks[0]}"


def baseline_pairs(results: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(model, its baseline)`` pairs of a run: each family's transfer against its target-only
    model, every model against ``results["baseline"]``, else (a comparison of runs) every pair
    that ``results["comparison"]`` holds."""
    names = list(results.get("models") or {})
    families = (results.get("extra") or {}).get("families") or []
    if families:
        return [
            (str(transfer), str(base)) for base, transfer in families if transfer in names and base in names
        ]
    baseline = results.get("baseline")
    if baseline in names:
        return [(name, baseline) for name in names if name != baseline]
    seen = dict.fromkeys((row["model"], row["reference"]) for row in results.get("comparison") or [])
    return list(seen)


_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:1rem 0;font-size:.85rem;max-width:100%}
#decision{border:2px solid #075;border-radius:6px;padding:.5rem 1rem;background:#f4fbf7}
#decision.baseline{border-color:#a60;background:#fdf8f0}
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


def _axis_labels(figure: Figure) -> str:
    """``x: ..., y: ...`` of every panel (the chart's alt text names what its axes show)."""
    labels = [
        f"x: {axis.get_xlabel() or '-'}, y: {axis.get_ylabel() or '-'}"
        for axis in figure.axes
        if axis.get_xlabel() or axis.get_ylabel()
    ]
    return "; ".join(labels)


def _image(title: str, figure: Figure) -> str:
    axes = _axis_labels(figure)
    alt = f"{title} ({axes})" if axes else title
    return (
        f'<figure><img class="chart" alt="{html.escape(alt)}" data-axes="{html.escape(axes)}" '
        f'src="data:image/png;base64,{_png(figure)}">'
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
        axis.set_xlabel("cut-off K (list length)")
    axes[0][0].set_ylabel("mean over test users (0-1)")
    _legend_below(figure, axes[0][0])
    return figure


def _legend_below(figure: Figure, axis: Any) -> None:
    """One legend under the panels, so that it never covers bars or lines."""
    handles, labels = axis.get_legend_handles_labels()
    figure.tight_layout()
    if handles:
        figure.legend(
            handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=min(len(labels), 4),
            fontsize="small", frameon=False,
        )  # fmt: skip


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
        axis.set_ylabel(_curve_label(key))
        axis.set_title(key)
    _legend_below(figure, axes[0][0])
    return figure


def _curve_label(key: str) -> str:
    if key == "loss":
        return "training loss (mean per batch)"
    if key == "seconds":
        return "seconds per epoch (s)"
    if key.startswith("valid_"):
        return f"validation {key[len('valid_') :]} (0-1)"
    return key


def _activity(results: Mapping[str, Any], metric: str) -> Figure | None:
    per_model = {
        name: {row["group"]: row for row in model["slices"] if row["slice"] == "activity"}
        for name, model in results["models"].items()
    }
    labels = bucket_order([label for rows in per_model.values() for label in rows])
    if not labels:
        return None
    intervals = results.get("activity_intervals") or {}
    if intervals.get("metric") not in (None, metric):
        intervals = {}
    names = list(per_model)
    gains = intervals.get("gains") or {}
    panels = 2 if gains or len(names) > 1 else 1
    figure, axes = _pyplot().subplots(1, panels, figsize=(6 * panels, 3.6), squeeze=False)
    width = 0.8 / len(names)
    x = np.arange(len(labels))
    for m, name in enumerate(names):
        values = np.array([per_model[name].get(label, {}).get(metric, np.nan) for label in labels], float)
        bounds = (intervals.get("models") or {}).get(name, {})
        low = np.array([bounds.get(label, [v, v])[0] for label, v in zip(labels, values, strict=True)])
        high = np.array([bounds.get(label, [v, v])[1] for label, v in zip(labels, values, strict=True)])
        error = np.clip(np.nan_to_num(np.vstack([values - low, high - values])), 0, None)
        axes[0][0].bar(x + m * width, values, width, yerr=error, capsize=2, label=name)
    counts = [max(per_model[n].get(label, {}).get("n_users", 0) for n in names) for label in labels]
    ticks = [f"{lab}\n(n={c})" for lab, c in zip(labels, counts, strict=True)]
    axes[0][0].set_xticks(x + width * (len(names) - 1) / 2, ticks)
    axes[0][0].set_title(f"{metric} by user activity, 95% bootstrap CI")
    axes[0][0].set_xlabel("training interactions of the user (n = test users in the bucket)")
    axes[0][0].set_ylabel(f"{metric}, mean over users (0-1)")
    if panels == 2:
        axis = axes[0][1]
        if gains:
            for offset, (pair, rows) in enumerate(gains.items()):
                shift = (offset - (len(gains) - 1) / 2) * 0.1
                mean = np.array([rows.get(label, [np.nan] * 3)[0] for label in labels], float)
                low = np.array([rows.get(label, [np.nan] * 3)[1] for label in labels], float)
                high = np.array([rows.get(label, [np.nan] * 3)[2] for label in labels], float)
                error = np.clip(np.nan_to_num(np.vstack([mean - low, high - mean])), 0, None)
                axis.errorbar(x + shift, mean, yerr=error, marker="o", capsize=3, label=pair)
            axis.set_title(f"paired gain in {metric}, 95% bootstrap CI")
        else:  # an older results.json without intervals: differences of the bucket means only
            reference = results.get("baseline") or names[0]
            for name in [n for n in names if n != reference]:
                gain = [
                    per_model[name].get(label, {}).get(metric, np.nan)
                    - per_model[reference].get(label, {}).get(metric, np.nan)
                    for label in labels
                ]
                axis.plot(x, gain, marker="o", label=f"{name} - {reference}")
            axis.set_title(f"gain in {metric} over {reference} (no intervals recorded)")
        axis.axhline(0, color="grey", linewidth=0.8)
        axis.set_xticks(x, ticks)
        axis.set_xlabel("training interactions of the user")
        axis.set_ylabel(f"difference in {metric} (model - reference)")
        handles, pair_labels = axis.get_legend_handles_labels()
        if handles:
            axis.legend(handles, pair_labels, fontsize="x-small", loc="upper center",
                        bbox_to_anchor=(0.5, -0.38), frameon=False)  # fmt: skip
    _legend_below(figure, axes[0][0])
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
    axes[0][0].set_xlabel("model")
    axes[0][0].set_ylabel(f"share of the catalogue / Gini index at K={k} (0-1)")
    axes[0][0].legend(fontsize="small", loc="upper left", bbox_to_anchor=(0.0, -0.35), frameon=False)
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
        axes[0][1].set_xlabel("share of items, most popular in training first (0-1)")
        axes[0][1].set_ylabel("cumulative share of interactions / recommendations (0-1)")
        axes[0][1].set_title(f"concentration of top-{k} recommendations")
        axes[0][1].legend(fontsize="small", loc="lower right")
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
    main = main_metric(results["metrics"], ks)
    present = {c for m in models.values() for c in m["summary"]}
    accuracy = [f"{m}@{k}" for m in results["metrics"] for k in ks if f"{m}@{k}" in present]
    others = sorted(present - set(accuracy), key=_column_key)

    def rows(columns: Sequence[str]) -> list[dict[str, Any]]:
        return [{"model": name} | {c: m["summary"].get(c) for c in columns} for name, m in models.items()]

    parts = [
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        _decision_section(results),
        _meta_paragraph(results),
        "<h2>Accuracy</h2>",
        "<p>Means over evaluated test users, full ranking over all items excluding each user's training "
        "(and validation) items; definitions in the README (they follow RecBole).</p>",
        _table(rows(accuracy), "metrics-accuracy", ["model", *accuracy]),
        "<h2>Beyond accuracy</h2>",
        "<p>Coverage and Gini are list-level; novelty, avg_pop, tail and intra-list diversity are means "
        "over users (crossrec's definitions, in the README); rating errors where a model predicts "
        "ratings.</p>",
        *_beyond_tables(others, rows),
        _curve_section(results),
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
    parts += [*_frontier_section(results), *_transfer_diversity_section(results, recommendations or {})]
    comparison = results.get("comparison") or []
    if comparison:
        pairs = set(baseline_pairs(results))
        shown = [
            _oriented(row, pairs) for row in comparison
            if row["metric"] in accuracy and {(row["model"], row["reference"]),
                                              (row["reference"], row["model"])} & pairs
        ]  # fmt: skip
        parts.append(
            "<h2>Paired comparison</h2><p>Each model against its baseline, accuracy metrics: difference = "
            "model - reference, bootstrap 95% CI over users, two-sided Wilcoxon signed-rank test, "
            f"Holm-adjusted over pairs when more than two models. {len(shown)} of {len(comparison)} rows "
            "shown; <code>results.json</code> holds every pair and metric.</p>"
        )
        columns = ["model", "reference", "metric", "mean_model", "mean_reference", "difference", "ci_low",
                   "ci_high", "p_adjusted", "significant"]  # fmt: skip
        parts.append(_table(shown, "comparison", [c for c in columns if shown and c in shown[0]]))
    ablation = (results.get("extra") or {}).get("ablation") or []
    if ablation:
        parts.append(
            "<h2>Modality ablation</h2><p>Each modality masked in turn; contribution = full model - "
            "masked model, paired bootstrap 95% CI over users.</p>"
        )
        parts.append(_table(ablation, "ablation"))
    parts.append(_source_contribution_section(results))
    parts.append(
        f"<h2>Slices</h2><p>Accuracy at K = {ks[0] if ks else ''} by user activity, user group and head/tail "
        "test items (every metric of every slice is in <code>results.json</code>).</p>"
    )
    for name, model in models.items():
        parts.append(f"<h3>{html.escape(name)}</h3>")
        rows = model["slices"]
        first_k = [c for c in accuracy if c.endswith(f"@{ks[0]}")] if ks else accuracy
        columns = ["slice", "group", "n_users", *[c for c in first_k if rows and c in rows[0]]]
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
    axis.set_xlabel("contribution to the metric, full - masked (95% bootstrap CI)")
    axis.set_ylabel("masked modality")
    return figure


def _oriented(row: Mapping[str, Any], pairs: set[tuple[str, str]]) -> dict[str, Any]:
    """``row`` as model - its baseline (a row stored the other way round has its sign flipped)."""
    if (row["model"], row["reference"]) in pairs:
        return dict(row)
    flipped = dict(row, model=row["reference"], reference=row["model"])
    flipped.update(
        mean_model=row.get("mean_reference"), mean_reference=row.get("mean_model"),
        difference=-row["difference"], ci_low=-row["ci_high"], ci_high=-row["ci_low"],
    )  # fmt: skip
    return flipped


def _beyond_tables(columns: Sequence[str], rows: Any) -> list[str]:
    """One beyond-accuracy table per cut-off (plus one for metrics without one), so each fits the page."""
    if not columns:
        return ["<p>(none)</p>"]
    by_k: dict[str, list[str]] = {}
    for column in columns:
        by_k.setdefault(column.partition("@")[2], []).append(column)
    out = []
    for k, group in by_k.items():
        heading = f"<h3>at K = {html.escape(k)}</h3>" if k else "<h3>over all pairs</h3>"
        out += [heading, _table(rows(group), f"metrics-beyond-{k or 'all'}", ["model", *group])]
    return out


def _decision_section(results: Mapping[str, Any]) -> str:
    """What the run kept and why: the negative-transfer guard's decision(s), the interval and the
    validation data it was decided on (empty for a comparison of runs)."""
    extra = results.get("extra") or {}
    kept = extra.get("kept")
    dataset = extra.get("dataset") or {}
    target = dataset.get("target") or {}
    on = (
        f"decided on the <b>validation</b> part of the target {html.escape(str(target.get('name', '')))} "
        f"({target.get('users', '?')} users, {target.get('items', '?')} items); the test part was read "
        "only for the tables below"
    )
    decisions: list[dict[str, Any]] = []
    if extra.get("guard"):
        guard = dict(extra["guard"])
        guard.setdefault("baseline", "target_only")
        guard.setdefault("candidate", "transfer")
        guard["chosen"] = "transfer" if guard.get("kept") == "transfer" else "target_only"
        decisions.append(guard)
    decisions += list((extra.get("negative_transfer_guard") or {}).get("families") or [])
    if not decisions:
        if kept is None:
            return ""
        return (
            f'<section id="decision" class="baseline"><h2>What was kept and why</h2><p>Kept '
            f"<b>{html.escape(str(kept))}</b>: no transfer was guarded in this run (target-only)."
            "</p></section>"
        )
    items = []
    for d in decisions:
        took = d.get("chosen") == d.get("candidate")
        verdict = "kept the transfer" if took else "kept the target-only baseline"
        items.append(
            f"<li><b>{html.escape(str(d.get('candidate')))}</b> vs "
            f"<b>{html.escape(str(d.get('baseline')))}</b> "
            f"({html.escape(str(d.get('strategy', '')))}): validation {html.escape(str(d.get('metric')))} "
            f"{_fmt(d.get('transfer_valid'))} vs {_fmt(d.get('baseline_valid'))}, paired difference "
            f"{float(d.get('difference', np.nan)):+.4f} [95% CI {float(d.get('ci_low', np.nan)):+.4f}, "
            f"{float(d.get('ci_high', np.nan)):+.4f}] over {d.get('n_users', '?')} validation users "
            f"&rarr; <b>{verdict}</b></li>"
        )
    auto = extra.get("auto") or {}
    auto_note = ""
    if auto:
        auto_note = (
            f"<p><code>auto</code> tried {len(auto.get('tried') or [])} candidate(s) and skipped "
            f"{len(auto.get('skipped') or [])} (reasons in <code>results.json</code>).</p>"
        )
    families = extra.get("negative_transfer_guard") or {}
    chosen = families.get("chosen", kept)
    any_transfer = any(d.get("chosen") == d.get("candidate") for d in decisions)
    css = "" if any_transfer else ' class="baseline"'
    return (
        f'<section id="decision"{css}><h2>What was kept and why</h2>'
        f"<p>Kept <b>{html.escape(str(chosen))}</b>. The negative-transfer guard {on}:</p>"
        f"<ul>{''.join(items)}</ul>{auto_note}</section>"
    )


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


# -- diversity: the re-ranking frontier, and whether transfer changed diversity ------------------------

_FRONTIER_AXES = {
    "ndcg": "NDCG (0-1, higher = more accurate)",
    "ild": "intra-list diversity (share of item pairs of different categories, 0-1)",
    "coverage": "catalogue coverage (share of items in any list, 0-1)",
}


def _axis_name(metric: str) -> str:
    name, _, k = metric.partition("@")
    return f"{metric}: {_FRONTIER_AXES.get(name, name)}" if k else metric


def _frontier_section(results: Mapping[str, Any]) -> list[str]:
    """The accuracy-diversity frontier of ``extra["frontier"]``: NDCG@K against ILD@K and coverage@K as
    the re-ranker's strength sweeps, with 95% intervals, as a chart and a table."""
    frontier = (results.get("extra") or {}).get("frontier") or {}
    rows = frontier.get("rows") or []
    if not rows:
        return []
    k = frontier.get("k", 10)
    accuracy = f"ndcg@{k}"
    diversity = [m for m in (f"ild@{k}", f"coverage@{k}") if m in rows[0]]
    ild_note = {"category": "over item categories", "embedding": "over the model's item vectors (cosine)"}
    parts = [
        '<section id="frontier"><h2>Accuracy-diversity frontier</h2>',
        f"<p>The {html.escape(str(frontier.get('model')))} model's {frontier.get('part', 'test')} lists "
        f"re-ranked by {html.escape(str(rows[0]['reranker']))} (pool of {frontier.get('candidates')} "
        f"candidates) at each strength from 0 (the plain lists) to 1: {accuracy} against "
        f"{' and '.join(diversity)}, bootstrap 95% intervals over users (coverage: users resampled); ILD "
        f"{ild_note.get(str(frontier.get('ild')), '')}. The circled point is the strength the run was "
        f"configured with ({_fmt(frontier.get('strength'))}); it was set in the experiment file, not "
        "chosen on this chart, which describes the test part.</p>",
    ]
    if has_extra("report"):
        from crossrec.rerank import plot_frontier

        figure = plot_frontier(rows, accuracy=accuracy, diversity=diversity)
        for axis, metric in zip(figure.axes, diversity, strict=False):
            axis.set_xlabel(_axis_name(metric), fontsize=8)
            axis.set_ylabel(_axis_name(accuracy), fontsize=8)
        parts.append(_image(f"{accuracy} against {' and '.join(diversity)} as the strength sweeps", figure))
    table = []
    for row in rows:
        entry: dict[str, Any] = {"strength": row["strength"]}
        for metric in (accuracy, *diversity):
            entry[metric] = row[metric]
            if f"{metric}_low" in row:
                entry[f"{metric} 95% CI"] = f"[{row[f'{metric}_low']:.4f}, {row[f'{metric}_high']:.4f}]"
        entry |= {m: row.get(m) for m in (f"gini@{k}", f"novelty@{k}")}
        entry["configured"] = "yes" if row.get("chosen") else ""
        table.append(entry)
    parts += [_table(table, "frontier-table"), "</section>"]
    return parts


def _list_level_interval(
    lists: np.ndarray, reference: np.ndarray, metric: str, n_items: int, seed: int = 0, n_resamples: int = 300
) -> tuple[float, float] | None:
    """Bootstrap 95% interval of ``metric(lists) - metric(reference)`` (coverage or Gini, list-level)
    over users resampled in pairs (rows of both are the same users), recentred on the estimate."""
    from crossrec.metrics import catalog_coverage, gini_index

    name, _, k = metric.partition("@")
    function = {"coverage": catalog_coverage, "gini": gini_index}.get(name)
    if function is None or lists.shape[0] != reference.shape[0] or not len(lists):
        return None
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_resamples):
        draw = rng.integers(0, len(lists), len(lists))
        values.append(function(lists[draw], n_items, int(k)) - function(reference[draw], n_items, int(k)))
    # recentred on the estimate: a resample holds fewer distinct users, which biases list-level metrics
    shift = function(lists, n_items, int(k)) - function(reference, n_items, int(k)) - float(np.mean(values))
    low, high = np.quantile(values, [0.025, 0.975]) + shift
    return float(low), float(high)


def _transfer_diversity_section(
    results: Mapping[str, Any], recommendations: Mapping[str, np.ndarray]
) -> list[str]:
    """For every transfer run (a target-only baseline, or families): target-only vs transfer on
    coverage, ILD, novelty and Gini at each K, with the paired difference and its 95% interval."""
    extra = results.get("extra") or {}
    if not (results.get("baseline") or extra.get("families")):
        return []
    pairs = [(m, b) for m, b in baseline_pairs(results) if "+rerank" not in m and "+rerank" not in b]
    if not pairs:
        return []
    models = results["models"]
    comparison = results.get("comparison") or []
    n_items = int((results.get("split") or {}).get("n_items") or 0)
    table = []
    for model, base in pairs:
        for k in results["ks"]:
            ild = next(
                (
                    f"{m}@{k}"
                    for m in ("ild_category", "ild_embedding")
                    if f"{m}@{k}" in models[model]["summary"]
                ),
                None,
            )
            for metric in (f"coverage@{k}", ild, f"novelty@{k}", f"gini@{k}"):
                if (
                    metric is None
                    or metric not in models[model]["summary"]
                    or metric not in models[base]["summary"]
                ):
                    continue
                value, reference = models[model]["summary"][metric], models[base]["summary"][metric]
                interval = None
                paired = next(
                    (
                        row
                        for row in comparison
                        if row["metric"] == metric and {row["model"], row["reference"]} == {model, base}
                    ),
                    None,
                )
                if paired is not None:
                    oriented = _oriented(paired, {(model, base)})
                    interval = (oriented["ci_low"], oriented["ci_high"])
                elif n_items and model in recommendations and base in recommendations:
                    interval = _list_level_interval(
                        recommendations[model], recommendations[base], metric, n_items
                    )
                table.append(
                    {
                        "transfer": model, "target-only": base, "metric": metric,
                        "target-only value": reference, "transfer value": value,
                        "difference": value - reference,
                        "95% CI": "" if interval is None else f"[{interval[0]:+.4f}, {interval[1]:+.4f}]",
                        "relative": (value - reference) / reference if reference else float("nan"),
                    }
                )  # fmt: skip
    if not table:
        return []
    return [
        '<section id="transfer-diversity"><h2>Did transfer change diversity?</h2>',
        "<p>Each transfer model against its target-only model on the test lists: catalogue coverage and "
        "Gini (list-level; interval: users resampled in pairs), intra-list diversity and novelty (means "
        "over users; paired bootstrap 95% interval). Higher coverage, ILD and novelty and lower Gini "
        "mean more diverse recommendations.</p>",
        _table(table, "transfer-diversity-table"),
        "</section>",
    ]


def _curve_metric(point: Mapping[str, Any]) -> str:
    """The metric a curve point was decided and scored on (``ndcg@10`` in older results)."""
    if point.get("metric"):
        return str(point["metric"])
    keys = [k for k in point if k.startswith("best_target_only_") and not k.endswith("_ci")]
    return keys[0].removeprefix("best_target_only_") if keys else "ndcg@10"


def _efficiency_curve(points: Sequence[Mapping[str, Any]]) -> Figure | None:
    """Test metric of the best target-only model and of the kept model against the share of target
    training data kept (``extra.curve`` of a run), with each mean's bootstrap 95% interval."""
    if not points:
        return None
    metric = _curve_metric(points[0])
    fractions = np.array([float(p["fraction"]) for p in points])
    figure, axis = _pyplot().subplots(figsize=(7, 3.6))
    for offset, (key, label, marker) in enumerate(
        (("best_target_only", "best target-only (chosen on validation)", "o"),
         ("kept", "kept by the guard (chosen on validation)", "s"))
    ):  # fmt: skip
        means = np.array([float(p.get(f"{key}_{metric}", np.nan)) for p in points])
        bounds = np.array([p.get(f"{key}_{metric}_ci") or [np.nan, np.nan] for p in points], float)
        error = np.clip(np.nan_to_num(np.vstack([means - bounds[:, 0], bounds[:, 1] - means])), 0, None)
        shifted = fractions * (1 + 0.02 * (offset - 0.5))  # side by side where the two coincide
        axis.errorbar(shifted, means, yerr=error, marker=marker, capsize=3, label=label)
    axis.set_xscale("log")
    axis.set_xticks(fractions, [f"{100 * f:g}%" for f in fractions])
    axis.minorticks_off()
    axis.set_xlabel("share of each target user's training interactions kept (log scale)")
    axis.set_ylabel(f"test {metric}, mean over users (0-1)")
    axis.set_title(f"data-efficiency curve: test {metric} with 95% bootstrap CI")
    _legend_below(figure, axis)
    return figure


def _curve_section(results: Mapping[str, Any]) -> str:
    """The data-efficiency curve of a ``--curve`` run: chart and table (empty for other runs)."""
    points = list((results.get("extra") or {}).get("curve") or [])
    if not points:
        return ""
    metric = _curve_metric(points[0])

    def interval(point: Mapping[str, Any], key: str) -> str:
        bounds = point.get(f"{key}_{metric}_ci")
        return f"[{float(bounds[0]):.4f}, {float(bounds[1]):.4f}]" if bounds else ""

    rows = [
        {
            "target train kept": f"{100 * float(p['fraction']):g}%",
            "train interactions": p.get("train_interactions"),
            "best target-only": p.get("best_target_only"),
            metric: p.get(f"best_target_only_{metric}"),
            "95% CI": interval(p, "best_target_only"),
            "kept": p.get("kept"),
            f"kept {metric}": p.get(f"kept_{metric}"),
            "kept 95% CI": interval(p, "kept"),
            "gain 95% CI": f"[{float(p['gain_ci_low']):+.4f}, {float(p['gain_ci_high']):+.4f}]",
        }
        for p in points
    ]
    chart = ""
    if has_extra("report"):
        figure = _efficiency_curve(points)
        chart = _image(f"Data-efficiency curve: test {metric} by share of target training data", figure)
    return (
        '<section id="efficiency-curve"><h2>Data-efficiency curve</h2>'
        "<p>The run repeated with each share of every target user's training interactions kept "
        "(validation and test unchanged, so every point is scored on the same users and items). At "
        "each point the best target-only model and the kept model are chosen on validation and scored "
        f"once on test; gain = paired per-user test {html.escape(metric)} difference, kept - best "
        "target-only, bootstrap 95% CI.</p>" + _table(rows, "efficiency-curve-table") + chart + "</section>"
    )


def _source_contribution_section(results: Mapping[str, Any]) -> str:
    """Each source's contribution (``extra.source_contribution`` of a multi-source run): a chart of the
    validation and test differences with their 95% intervals, and the table (empty otherwise)."""
    table = (results.get("extra") or {}).get("source_contribution") or {}
    rows = table.get("rows") or []
    if not rows:
        return ""
    metric = str(table.get("metric", ""))
    weights = table.get("kept_weights") or {}
    kept = ", ".join(f"{html.escape(str(n))} {float(w):g}" for n, w in weights.items())
    parts = [
        '<section id="source-contribution"><h2>Source contribution</h2>',
        f"<p>What each source adds to {html.escape(metric)}: <b>leave-one-out</b> = the mix of every source "
        "minus the mix without this source; <b>alone</b> = this source alone minus the target-only model. "
        "Paired per-user differences with bootstrap 95% intervals, on validation (where the weights were "
        f"chosen) and on test. Kept weights: {kept or '(none)'}; a source at weight 0 was dropped.</p>",
    ]
    if has_extra("report"):
        parts.append(
            _image(f"Source contribution to {metric} with 95% CI", _contribution_chart(rows, metric))
        )
    columns = ["source", "effect", "weight", "valid_difference", "valid_ci_low", "valid_ci_high",
               "test_difference", "test_ci_low", "test_ci_high"]  # fmt: skip
    parts.append(_table(rows, "source-contribution-table", [c for c in columns if c in rows[0]]))
    parts.append("</section>")
    return "\n".join(parts)


def _contribution_chart(rows: Sequence[Mapping[str, Any]], metric: str) -> Figure:
    """Horizontal bars per (source, effect): validation and test differences with their intervals."""
    labels = [f"{r['source']} ({str(r['effect']).replace('_', '-')})" for r in rows]
    figure, axis = _pyplot().subplots(figsize=(7, 0.55 * len(rows) + 1.4))
    positions = np.arange(len(rows))
    for offset, part, color in ((-0.2, "valid", "#4c72b0"), (0.2, "test", "#dd8452")):
        if f"{part}_difference" not in rows[0]:
            continue
        values = np.array([float(r[f"{part}_difference"]) for r in rows])
        low = values - np.array([float(r[f"{part}_ci_low"]) for r in rows])
        high = np.array([float(r[f"{part}_ci_high"]) for r in rows]) - values
        axis.barh(positions + offset, values, height=0.38, xerr=np.vstack([low, high]), color=color,
                  capsize=3, label=part)  # fmt: skip
    axis.set_yticks(positions, labels)
    axis.invert_yaxis()
    axis.axvline(0, color="black", linewidth=0.8)
    axis.set_xlabel(f"{metric} difference (95% bootstrap CI)")
    axis.set_ylabel("source (effect)")
    axis.legend(loc="best")
    return figure
