"""The sampled protocol of the EMCDR / PTUPCDR / CDRIB family of papers, exactly: every held-out
interaction is ranked against its *own* ``n_negatives`` items drawn uniformly **with replacement**
from the items its user never interacted with, and the metrics are per interaction, untruncated.

For a positive ``(u, i)`` with score ``s`` and negatives with scores ``t_1..t_n``, its rank is
``#{t_j > s}`` plus a uniform (seeded) position among the ``#{t_j = s}`` tied ones (so a constant
scorer lands at chance), and

* ``mrr = 1 / (rank + 1)`` (not truncated at any K),
* ``ndcg@k = 1 / log2(rank + 2)`` when ``rank < k``, else 0,
* ``hit@k = rank < k``.

Means are over interactions. Full ranking (:func:`crossrec.metrics.evaluate_ranking`) stays the
default and the honest number; this exists to compare with published figures.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from crossrec.ranking.recommend import Scorer, to_scratch

__all__ = ["draw_negatives", "sampled_interaction_metrics"]


def _keys(matrix: sp.csr_matrix) -> np.ndarray:
    coo = matrix.tocoo()
    return np.sort(coo.row.astype(np.int64) * matrix.shape[1] + coo.col)


def draw_negatives(
    users: np.ndarray, forbidden: sp.csr_matrix, n_negatives: int, rng: np.random.Generator
) -> np.ndarray:
    """``(len(users), n_negatives)`` items drawn uniformly with replacement, for each entry of
    ``users``, among the items not in that user's row of ``forbidden`` (redrawn until none is)."""
    n_users, n_items = forbidden.shape
    users = np.asarray(users, dtype=np.int64)
    allowed = n_items - np.diff(sp.csr_matrix(forbidden).indptr)[users]
    if len(users) and allowed.min() <= 0:
        raise ValueError("a user has interacted with every item: no negative can be drawn for her")
    keys = _keys(sp.csr_matrix(forbidden))
    negatives = rng.integers(0, n_items, (len(users), n_negatives))
    if len(keys) == 0:
        return negatives
    bad = np.ones(negatives.shape, dtype=bool)
    while bad.any():
        query = users[:, None] * n_items + negatives
        position = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
        bad = keys[position] == query
        negatives[bad] = rng.integers(0, n_items, int(bad.sum()))
    return negatives


def sampled_interaction_metrics(
    scorer: Scorer,
    truth: sp.csr_matrix,
    forbidden: sp.csr_matrix,
    *,
    n_negatives: int = 999,
    k: int = 10,
    seed: int = 0,
    batch_size: int | None = None,
) -> pd.DataFrame:
    """Per-interaction sampled metrics (see the module docstring).

    Parameters
    ----------
    scorer
        Users -> dense ``(len(users), n_items)`` scores (a fitted model's ``scorer()``).
    truth
        ``(n_users, n_items)`` held-out positives; each non-zero is one ranked interaction.
    forbidden
        Items that are never negatives of a user: everything she interacted with in any part
        (train, valid and test). Positives are added to it.
    n_negatives
        Negatives per interaction (999 in the papers).
    k
        Cut-off of NDCG and Hit.
    seed
        Seed of the negatives and of the tie positions (the same seed gives every scorer the same
        negatives).
    batch_size
        Users scored at once (default: about 16 MB of float32 scores).

    Returns
    -------
    DataFrame
        One row per interaction: ``user``, ``item``, ``rank`` (0-based), ``mrr``, ``ndcg@k``,
        ``hit@k``.
    """
    if n_negatives <= 0 or k <= 0:
        raise ValueError(f"n_negatives and k must be positive, got {n_negatives} and {k}")
    truth = sp.csr_matrix(truth)
    forbidden = sp.csr_matrix(forbidden)
    if forbidden.shape != truth.shape:
        raise ValueError(f"forbidden has shape {forbidden.shape}, truth has {truth.shape}")
    forbidden = sp.csr_matrix(((forbidden + truth) > 0).astype(np.float32))
    n_users, n_items = truth.shape
    coo = truth.tocoo()
    order = np.lexsort((coo.col, coo.row))
    users, items = coo.row[order].astype(np.int64), coo.col[order].astype(np.int64)
    if len(users) == 0:
        raise ValueError("truth holds no interaction: nothing to evaluate")
    rng = np.random.default_rng([seed, 999])
    negatives = draw_negatives(users, forbidden, n_negatives, rng)
    tie_position = rng.random(len(users))
    evaluated = np.unique(users)
    if batch_size is None:
        batch_size = max(16, min(4096, 4_000_000 // max(1, n_items)))
    rank = np.empty(len(users), dtype=np.int64)
    bounds = np.searchsorted(users, evaluated)
    for start in range(0, len(evaluated), batch_size):
        batch = evaluated[start : start + batch_size]
        scores = to_scratch(scorer(batch)).numpy()
        if scores.shape != (len(batch), n_items):
            raise ValueError(f"scorer returned shape {scores.shape}, expected {(len(batch), n_items)}")
        if np.isnan(scores).any():
            raise ValueError("scorer returned NaN scores")
        lo = bounds[start]
        hi = bounds[start + len(batch)] if start + len(batch) < len(evaluated) else len(users)
        rows = np.searchsorted(batch, users[lo:hi])
        positive = scores[rows, items[lo:hi]]
        negative = scores[rows[:, None], negatives[lo:hi]]
        above = (negative > positive[:, None]).sum(axis=1)
        tied = (negative == positive[:, None]).sum(axis=1)
        rank[lo:hi] = above + np.floor(tie_position[lo:hi] * (tied + 1)).astype(np.int64)
    hit = rank < k
    return pd.DataFrame(
        {
            "user": users,
            "item": items,
            "rank": rank,
            "mrr": 1.0 / (rank + 1.0),
            f"ndcg@{k}": np.where(hit, 1.0 / np.log2(rank + 2.0), 0.0),
            f"hit@{k}": hit.astype(np.float64),
        }
    )
