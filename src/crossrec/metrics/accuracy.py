"""Top-K accuracy metrics as pure functions of a per-user hit matrix.

Definitions follow RecBole's (``recbole/evaluator/metrics.py``). For a user with ``n`` relevant
test items and a ranked list whose position ``i`` (1-based) holds ``hit_i`` in {0, 1}:

* ``recall@K``    = sum_{i<=K} hit_i / n
* ``precision@K`` = sum_{i<=K} hit_i / K
* ``hit@K``       = 1 if any hit_i = 1 for i <= K else 0
* ``mrr@K``       = 1 / (first i <= K with hit_i = 1), 0 without a hit
* ``ndcg@K``      = DCG / IDCG with DCG = sum_{i<=K} hit_i / log2(i + 1) and
  IDCG = sum_{i <= min(n, K)} 1 / log2(i + 1)
* ``map@K``       = sum_{i<=K} hit_i * precision@i / min(n, K)

Users with fewer than K relevant items are scored by the same formulas (their recall can still
reach 1, their precision cannot). ``map@K`` divides by ``min(n, K)`` exactly as RecBole's ``MAP``
(``sum_pre / ranges`` with ``ranges`` frozen at ``min(pos_len, K)``). A metric's mean over users is
the reported value, as in RecBole.

For explicit ratings (:func:`rating_errors`), RecBole's ``RMSE`` and ``MAE`` are computed over all
test (user, item) pairs: ``rmse = sqrt(mean((r_hat - r)^2))``, ``mae = mean(|r_hat - r|)``; the
per-user versions (each user's own RMSE/MAE) are kept for significance tests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["ACCURACY_METRICS", "RATING_METRICS", "accuracy_metrics", "parse_metric_names", "rating_errors"]


class _Prefix:
    """Running sums over rank positions for every user, read at each cut-off ``k``.

    One pass over positions (vectorised over users) keeps the hit count, DCG, the sum of
    ``hit * precision@rank`` (for MAP) and the first hit's position, and snapshots them at each ``k``.
    """

    def __init__(self, hits: np.ndarray, ks: Sequence[int]) -> None:
        by_position = np.ascontiguousarray(np.asarray(hits, dtype=bool).T)
        n_positions, n_users = by_position.shape
        count = np.zeros(n_users, dtype=np.int32)
        dcg = np.zeros(n_users)
        precision_sum = np.zeros(n_users)
        self.first = np.full(n_users, n_positions)  #: 0-based position of the first hit (or the length)
        self._at: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        wanted = set(ks)
        for i in range(n_positions):
            row = by_position[i]
            if row.any():
                count += row
                dcg += row * (1.0 / np.log2(i + 2))
                precision_sum += row * (count / (i + 1))
                np.minimum(self.first, np.where(row, i, n_positions), out=self.first)
            if i + 1 in wanted:
                self._at[i + 1] = (count.copy(), dcg.copy(), precision_sum.copy())

    def count(self, k: int) -> np.ndarray:
        """Hits among the first ``k`` positions."""
        return self._at[k][0]

    def dcg(self, k: int) -> np.ndarray:
        """``sum(hit / log2(rank + 1))`` over the first ``k`` positions."""
        return self._at[k][1]

    def precision_sum(self, k: int) -> np.ndarray:
        """``sum(hit * precision@rank)`` over the first ``k`` positions."""
        return self._at[k][2]


def _recall(prefix: _Prefix, n_relevant: np.ndarray, k: int) -> np.ndarray:
    return prefix.count(k) / n_relevant


def _precision(prefix: _Prefix, n_relevant: np.ndarray, k: int) -> np.ndarray:
    return prefix.count(k) / k


def _hit(prefix: _Prefix, n_relevant: np.ndarray, k: int) -> np.ndarray:
    return (prefix.count(k) > 0).astype(np.float64)


def _mrr(prefix: _Prefix, n_relevant: np.ndarray, k: int) -> np.ndarray:
    return np.where(prefix.first < k, 1.0 / (prefix.first + 1), 0.0)


def _ndcg(prefix: _Prefix, n_relevant: np.ndarray, k: int) -> np.ndarray:
    ideal_cumulative = np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))
    return prefix.dcg(k) / ideal_cumulative[np.minimum(n_relevant, k) - 1]


def _map(prefix: _Prefix, n_relevant: np.ndarray, k: int) -> np.ndarray:
    return prefix.precision_sum(k) / np.minimum(n_relevant, k)


#: Metric name -> function(prefix sums of the hits, n_relevant, k) returning one value per user.
ACCURACY_METRICS: dict[str, Callable[[np.ndarray, np.ndarray, int], np.ndarray]] = {
    "recall": _recall,
    "precision": _precision,
    "hit": _hit,
    "mrr": _mrr,
    "ndcg": _ndcg,
    "map": _map,
}


#: Error metrics for explicit ratings (see :func:`rating_errors`).
RATING_METRICS: tuple[str, ...] = ("rmse", "mae")


def parse_metric_names(names: Sequence[str], ks: Sequence[int]) -> list[tuple[str, int]]:
    """Validate metric names and cut-offs, returning ``(name, k)`` pairs in a stable order.

    Raises
    ------
    ValueError
        For an unknown metric name, no metric at all, or a cut-off that is not a positive integer.
    """
    if isinstance(names, str):
        names = [names]
    unknown = [name for name in names if str(name).lower() not in ACCURACY_METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; choose from {sorted(ACCURACY_METRICS)}")
    if not names:
        raise ValueError(f"no metric requested; choose from {sorted(ACCURACY_METRICS)}")
    bad = [k for k in ks if isinstance(k, bool) or not isinstance(k, int | np.integer) or k <= 0]
    if bad or len(ks) == 0:
        raise ValueError(f"cut-offs K must be positive integers, got {list(ks)}")
    unique_names = list(dict.fromkeys(name.lower() for name in names))
    return [(name, int(k)) for name in unique_names for k in sorted({int(k) for k in ks})]


def accuracy_metrics(
    hits: np.ndarray, n_relevant: np.ndarray, names: Sequence[str], ks: Sequence[int]
) -> dict[str, np.ndarray]:
    """Per-user accuracy metrics.

    Parameters
    ----------
    hits
        ``(n_users, max_k)`` boolean matrix: ``hits[u, i]`` is whether the item at rank ``i + 1``
        of user ``u``'s list is relevant.
    n_relevant
        ``(n_users,)`` number of relevant items per user; must be positive.
    names, ks
        Metric names (keys of :data:`ACCURACY_METRICS`) and cut-offs; ``max(ks) <= hits.shape[1]``.

    Returns
    -------
    dict
        ``"ndcg@10"`` -> ``(n_users,)`` float64 array, for every name and cut-off.
    """
    pairs = parse_metric_names(names, ks)
    n_relevant = np.asarray(n_relevant)
    if (n_relevant <= 0).any():
        raise ValueError("every evaluated user needs at least one relevant item")
    if max(k for _, k in pairs) > hits.shape[1]:
        raise ValueError(f"hit matrix has {hits.shape[1]} columns, fewer than the largest K")
    prefix = _Prefix(hits, [k for _, k in pairs])
    return {f"{name}@{k}": ACCURACY_METRICS[name](prefix, n_relevant, k) for name, k in pairs}


def rating_errors(
    predicted: np.ndarray, actual: np.ndarray, user: np.ndarray
) -> tuple[dict[str, float], dict[str, np.ndarray], np.ndarray]:
    """RMSE and MAE of rating predictions, overall (RecBole's definition) and per user.

    Parameters
    ----------
    predicted, actual
        Predicted and true ratings of the test pairs.
    user
        User index of each pair.

    Returns
    -------
    overall
        ``{"rmse": ..., "mae": ...}`` over all pairs.
    per_user
        ``{"rmse": ..., "mae": ...}`` arrays aligned with ``users``.
    users
        Sorted distinct user indices.
    """
    predicted = np.asarray(predicted, dtype=np.float64)
    actual = np.asarray(actual, dtype=np.float64)
    if len(predicted) == 0:
        raise ValueError("no test rating to compute RMSE/MAE on")
    if predicted.shape != actual.shape or len(user) != len(actual):
        raise ValueError(f"predicted {predicted.shape}, actual {actual.shape} and users {len(user)} differ")
    error = predicted - actual
    users, inverse, counts = np.unique(user, return_inverse=True, return_counts=True)
    squared = np.bincount(inverse, weights=error**2) / counts
    absolute = np.bincount(inverse, weights=np.abs(error)) / counts
    overall = {"rmse": float(np.sqrt(np.mean(error**2))), "mae": float(np.mean(np.abs(error)))}
    return overall, {"rmse": np.sqrt(squared), "mae": absolute}, users
