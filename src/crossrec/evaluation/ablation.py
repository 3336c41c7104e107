"""Modality ablation: re-evaluate a multi-modal model with each modality masked in turn.

A modality's contribution is ``metric(full model) - metric(model with that modality treated as
missing for every entity)``, with a paired bootstrap confidence interval over users. Nothing is
retrained: masking replaces the modality by the tower's learned "missing" vector, exactly what
the model does for an entity that lacks it.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import pandas as pd
import scipy.sparse as sp

from crossrec._extras import require_extra
from crossrec.metrics.ranking import evaluate_ranking
from crossrec.metrics.significance import paired_bootstrap_ci
from crossrec.ranking.topk import FactorScorer
from crossrec.splitting.splits import Split

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["MultiModalModel", "ablate_modalities", "plot_ablation"]


class MultiModalModel(Protocol):
    """What ablation needs: modality names and vectors recomputed with some of them masked."""

    @property
    def modalities(self) -> list[str]: ...

    def vectors(self, masked: Collection[str] = ()) -> tuple[np.ndarray, np.ndarray]: ...


def _per_user(
    vectors: tuple[np.ndarray, np.ndarray],
    truth: sp.csr_matrix,
    exclude: sp.csr_matrix,
    metrics: Sequence[str],
    ks: Sequence[int],
) -> pd.DataFrame:
    users, items = vectors
    result = evaluate_ranking(FactorScorer(users, items), truth, exclude, metrics=metrics, ks=ks)
    return result.per_user


def ablate_modalities(
    model: MultiModalModel,
    split: Split,
    *,
    part: str = "test",
    modalities: Sequence[str] | None = None,
    metrics: Sequence[str] = ("ndcg", "recall"),
    ks: Sequence[int] = (10,),
    truth: sp.csr_matrix | None = None,
    exclude: sp.csr_matrix | None = None,
    n_resamples: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Each modality's contribution to ranking quality.

    Parameters
    ----------
    model
        A fitted multi-modal model (e.g. :class:`crossrec.models.two_tower.TwoTower`).
    split
        The split it was trained on.
    part
        ``"test"`` or ``"valid"``.
    modalities
        Modalities to mask one at a time (default: all of ``model.modalities``).
    metrics, ks
        Metrics and cut-offs (the first metric@first k gets the confidence interval).
    truth, exclude
        Override the relevant / excluded matrices (e.g. the cold setting of an
        :class:`crossrec.splitting.cold_items.ItemColdSplit`).
    n_resamples, seed
        Paired bootstrap over users.

    Returns
    -------
    DataFrame
        One row for the full model (``modality == "none"``), then one per masked modality, with
        every ``metric@k``, ``contribution`` (full minus masked, first metric), and ``ci_low`` /
        ``ci_high`` of that contribution; sorted by contribution, largest first.
    """
    if part not in ("test", "valid"):
        raise ValueError(f"part must be 'test' or 'valid', got {part!r}")
    truth = split.matrix(part) if truth is None else truth
    if exclude is None:
        exclude = split.matrix("train")
        if part == "test":
            exclude = (exclude + split.matrix("valid")).tocsr()
    names = list(model.modalities if modalities is None else modalities)
    unknown = sorted(set(names) - set(model.modalities))
    if unknown:
        raise ValueError(f"unknown modalities {unknown}; the model has {model.modalities}")
    full = _per_user(model.vectors(), truth, exclude, metrics, ks)
    columns = [c for c in full.columns if c != "user"]
    key = columns[0]
    rows = [
        {
            "modality": "none",
            **full[columns].mean().to_dict(),
            "contribution": 0.0,
            "ci_low": 0.0,
            "ci_high": 0.0,
        }
    ]
    for name in names:
        masked = _per_user(model.vectors([name]), truth, exclude, metrics, ks)
        low, high = paired_bootstrap_ci(
            full[key].to_numpy(), masked[key].to_numpy(), n_resamples=n_resamples, seed=seed
        )
        rows.append(
            {
                "modality": name,
                **masked[columns].mean().to_dict(),
                "contribution": float(full[key].mean() - masked[key].mean()),
                "ci_low": low,
                "ci_high": high,
            }
        )
    table = pd.DataFrame(rows)
    head, rest = table.iloc[:1], table.iloc[1:].sort_values("contribution", ascending=False)
    out = pd.concat([head, rest], ignore_index=True)
    out.attrs["metric"] = key
    return out


def plot_ablation(table: pd.DataFrame, path: str | Path | None = None, *, title: str | None = None) -> Figure:
    """Horizontal bars of each modality's contribution with its confidence interval.

    Parameters
    ----------
    table
        Output of :func:`ablate_modalities`.
    path
        When given, the chart is also written there (format from the suffix, e.g. ``.png``/``.svg``).
    title
        Chart title (default: the metric).
    """
    require_extra("report", "the ablation chart")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = table.attrs.get("metric", "metric")
    rows = table[table["modality"] != "none"].iloc[::-1]
    figure, axes = plt.subplots(figsize=(6, 0.45 * max(len(rows), 2) + 1.2))
    values = rows["contribution"].to_numpy()
    errors = np.vstack([values - rows["ci_low"].to_numpy(), rows["ci_high"].to_numpy() - values])
    colors = ["#2b8cbe" if v >= 0 else "#e34a33" for v in values]
    axes.barh(rows["modality"], values, xerr=np.clip(errors, 0, None), color=colors, capsize=3)
    axes.axvline(0, color="black", linewidth=0.8)
    axes.set_xlabel(f"drop in {metric} when masked (95% CI)")
    axes.set_title(title or f"modality contributions ({metric})")
    figure.tight_layout()
    if path is not None:
        figure.savefig(path, dpi=100, bbox_inches="tight")
    return figure
