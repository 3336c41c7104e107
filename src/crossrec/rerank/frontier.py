"""The accuracy-diversity frontier: accuracy against each diversity metric as a re-ranker's strength
sweeps, one line per re-ranker (a pure function: it returns a matplotlib Figure and draws nowhere)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from crossrec._extras import require_extra

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["plot_frontier"]


def _interval(row: Mapping[str, Any], metric: str) -> tuple[float, float] | None:
    low, high = row.get(f"{metric}_low"), row.get(f"{metric}_high")
    if low is None or high is None:
        return None
    return float(low), float(high)


def plot_frontier(
    rows: Sequence[Mapping[str, Any]],
    *,
    accuracy: str = "ndcg@10",
    diversity: Sequence[str] = ("ild@10", "coverage@10"),
    title: str | None = None,
) -> Figure:
    """Accuracy (y) against each diversity metric (x), one panel per metric, one line per re-ranker.

    Parameters
    ----------
    rows
        One mapping per (re-ranker, strength) point with keys ``reranker``, ``strength``,
        ``accuracy`` and the ``diversity`` metrics (as in ``benchmarks/results/diversity.json``);
        optional ``<metric>_low`` / ``<metric>_high`` draw 95% intervals; a true ``chosen`` marks
        the operating point picked on validation.
    accuracy, diversity
        Metric keys of the axes.
    title
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        Not attached to pyplot: save it with ``figure.savefig(...)``.
    """
    require_extra("report", "the accuracy-diversity frontier chart")
    from matplotlib.figure import Figure

    if not rows:
        raise ValueError("plot_frontier needs at least one row (re-ranker, strength, metrics)")
    missing = [key for key in ("reranker", "strength", accuracy, *diversity) if key not in rows[0]]
    if missing:
        raise ValueError(f"frontier rows lack {missing}; a row has {sorted(rows[0])}")
    figure = Figure(figsize=(5.0 * len(diversity), 4.0), layout="constrained")
    axes = figure.subplots(1, len(diversity), squeeze=False)[0]
    methods = list(dict.fromkeys(str(row["reranker"]) for row in rows))
    for axis, metric in zip(axes, diversity, strict=True):
        for index, method in enumerate(methods):
            points = sorted((r for r in rows if str(r["reranker"]) == method), key=lambda r: r["strength"])
            x = [float(r[metric]) for r in points]
            y = [float(r[accuracy]) for r in points]
            color = f"C{index % 10}"
            axis.plot(x, y, marker="o", markersize=3, color=color, label=method)
            for r, xi, yi in zip(points, x, y, strict=True):
                y_interval, x_interval = _interval(r, accuracy), _interval(r, metric)
                if y_interval or x_interval:
                    axis.errorbar(
                        xi,
                        yi,
                        yerr=None if y_interval is None else [[yi - y_interval[0]], [y_interval[1] - yi]],
                        xerr=None if x_interval is None else [[xi - x_interval[0]], [x_interval[1] - xi]],
                        color=color,
                        alpha=0.5,
                        capsize=2,
                        linewidth=0.8,
                    )
                if r.get("chosen"):
                    axis.scatter([xi], [yi], s=80, facecolors="none", edgecolors=color, linewidths=1.5)
            if points:
                axis.annotate(f"{points[-1]['strength']:g}", (x[-1], y[-1]), fontsize=7, color=color)
        axis.set_xlabel(metric)
        axis.set_ylabel(accuracy)
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    if title:
        figure.suptitle(title)
    return figure
