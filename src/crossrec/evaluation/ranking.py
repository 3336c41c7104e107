"""Full ranking over all items, vectorised in batches of users."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from crossrec.evaluation.metrics import accuracy_metrics, parse_metric_names

__all__ = ["DEFAULT_KS", "DEFAULT_METRICS", "RankingResult", "evaluate_ranking", "top_k"]

DEFAULT_METRICS: tuple[str, ...] = ("recall", "precision", "ndcg", "hit", "mrr", "map")
DEFAULT_KS: tuple[int, ...] = (10, 20)

#: A scorer maps an array of user indices to a dense ``(len(users), n_items)`` score matrix.
Scorer = Callable[[np.ndarray], np.ndarray]


def top_k(scores: np.ndarray, k: int, exclude: sp.csr_matrix | None = None) -> np.ndarray:
    """Indices of the ``k`` best items per row, best first; excluded items are never returned
    unless a row has fewer than ``k`` admissible items (then they come last).

    ``scores`` is modified in place when ``exclude`` is given.
    """
    n_items = scores.shape[1]
    k = min(k, n_items)
    if exclude is not None and exclude.nnz:
        rows, cols = exclude.nonzero()
        scores[rows, cols] = -np.inf
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


@dataclass(frozen=True)
class RankingResult:
    """Per-user results of a full-ranking evaluation.

    Attributes
    ----------
    per_user
        One row per evaluated user (column ``user`` holds the user index), one column per metric.
    recommendations
        ``(n_evaluated_users, max_k)`` item indices, best first, aligned with ``per_user``.
    """

    per_user: pd.DataFrame
    recommendations: np.ndarray

    def mean(self) -> dict[str, float]:
        """Mean of every metric over evaluated users."""
        return {c: float(self.per_user[c].mean()) for c in self.per_user.columns if c != "user"}


def evaluate_ranking(
    scorer: Scorer,
    truth: sp.csr_matrix,
    exclude: sp.csr_matrix | None = None,
    *,
    metrics: Sequence[str] = DEFAULT_METRICS,
    ks: Sequence[int] = DEFAULT_KS,
    batch_size: int = 1024,
    users: np.ndarray | None = None,
) -> RankingResult:
    """Rank all items for every user with test items and compute per-user metrics.

    Parameters
    ----------
    scorer
        Function from user indices to dense scores over all items.
    truth
        Binary user x item matrix of relevant (held-out) items.
    exclude
        User x item matrix of items never to recommend (the user's training items, and
        validation items when testing).
    metrics, ks
        Metric names and cut-offs (see :mod:`crossrec.evaluation.metrics`).
    batch_size
        Users scored at once; memory is ``batch_size * n_items`` floats.
    users
        Restrict evaluation to these users (default: every user with at least one relevant item).
    """
    pairs = parse_metric_names(metrics, ks)
    max_k = max(k for _, k in pairs)
    truth = sp.csr_matrix(truth)
    n_relevant_all = np.diff(truth.indptr)
    candidates = np.flatnonzero(n_relevant_all > 0)
    if users is not None:
        candidates = np.intersect1d(candidates, np.asarray(users, dtype=np.int64))
    if len(candidates) == 0:
        raise ValueError("no user has a relevant item in the evaluation set: nothing to evaluate")
    exclude = sp.csr_matrix(exclude) if exclude is not None else None

    columns: dict[str, list[np.ndarray]] = {}
    all_recs = []
    for start in range(0, len(candidates), batch_size):
        batch = candidates[start : start + batch_size]
        scores = np.array(scorer(batch), dtype=np.float32, copy=True)
        if scores.shape != (len(batch), truth.shape[1]):
            raise ValueError(f"scorer returned shape {scores.shape}, expected {(len(batch), truth.shape[1])}")
        recs = top_k(scores, max_k, exclude[batch] if exclude is not None else None)
        batch_truth = truth[batch]
        hits = _hits(recs, batch_truth)
        values = accuracy_metrics(hits, n_relevant_all[batch], metrics, ks)
        for name, value in values.items():
            columns.setdefault(name, []).append(value)
        all_recs.append(recs)
    per_user = pd.DataFrame({"user": candidates, **{n: np.concatenate(v) for n, v in columns.items()}})
    return RankingResult(per_user=per_user, recommendations=np.concatenate(all_recs))


def _hits(recs: np.ndarray, truth: sp.csr_matrix) -> np.ndarray:
    """Boolean matrix: is ``recs[u, i]`` in row ``u`` of ``truth``? (vectorised via sorted keys)."""
    n_items = truth.shape[1]
    rows = np.repeat(np.arange(truth.shape[0]), np.diff(truth.indptr))
    truth_keys = rows.astype(np.int64) * n_items + truth.indices
    truth_keys.sort()
    rec_keys = np.arange(recs.shape[0], dtype=np.int64)[:, None] * n_items + recs
    found = np.searchsorted(truth_keys, rec_keys)
    found = np.minimum(found, len(truth_keys) - 1)
    return truth_keys[found] == rec_keys
