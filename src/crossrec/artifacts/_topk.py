"""Top-K selection with ``numpy.argpartition``: linear in the catalogue, sorted only within K."""

from __future__ import annotations

import numpy as np


def top_k_row(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` highest finite scores of a 1-d array, best first.

    ``-inf`` and ``NaN`` mark inadmissible items and are never returned, so the result can be
    shorter than ``k``. Ties are broken by the lower index.
    """
    n = scores.shape[0]
    k = min(k, n)
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    negated = -scores  # NaN stays NaN and sorts last, like -inf
    candidates = np.arange(n) if k == n else np.argpartition(negated, k - 1)[:k]
    order = candidates[np.lexsort((candidates, negated[candidates]))]
    return order[np.isfinite(scores[order])]


def top_k_rows(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise :func:`top_k_row` of a 2-d array: ``(indices, values)``, padded with ``-1`` / ``NaN``."""
    n_rows, n = scores.shape
    k = min(k, n)
    negated = -scores
    if k < n:
        candidates = np.sort(np.argpartition(negated, k - 1, axis=1)[:, :k], axis=1)
    else:
        candidates = np.broadcast_to(np.arange(n), (n_rows, n)).copy()
    values = np.take_along_axis(negated, candidates, axis=1)
    order = np.argsort(values, axis=1, kind="stable")
    indices = np.take_along_axis(candidates, order, axis=1)
    values = -np.take_along_axis(values, order, axis=1)
    admissible = np.isfinite(values)
    return np.where(admissible, indices, -1), np.where(admissible, values, np.nan)
