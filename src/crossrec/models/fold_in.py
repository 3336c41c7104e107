"""Fold-in: vectors for users a model was not trained on, from the items they interacted with and the
model's fixed item vectors (used by warm starts, serving of new users and the two-tower model)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["fold_in_users"]


def fold_in_users(
    item_vectors: np.ndarray,
    interactions: sp.csr_matrix,
    *,
    regularization: float = 0.1,
    unobserved_weight: float = 0.05,
    batch_size: int = 4096,
) -> np.ndarray:
    """User vectors that explain each user's interactions given fixed item vectors.

    Solves the implicit-ALS user step for every user at once (Hu, Koren & Volinsky 2008):
    ``(w0 * Q'Q + Q_u'Q_u + lambda I) p_u = Q_u' 1``, where ``Q_u`` are the vectors of the
    items user ``u`` interacted with and ``w0`` the weight of unobserved items. Used to start
    target users next to the transferred item vectors instead of at random.
    """
    interactions = sp.csr_matrix(interactions)
    dim = item_vectors.shape[1]
    items = item_vectors.astype(np.float64)
    base = unobserved_weight * (items.T @ items) + regularization * np.eye(dim)
    out = np.zeros((interactions.shape[0], dim), dtype=np.float32)
    for start in range(0, interactions.shape[0], batch_size):
        block = interactions[start : start + batch_size]
        rows = np.repeat(np.arange(block.shape[0]), np.diff(block.indptr))
        vectors = items[block.indices]
        gram = np.zeros((block.shape[0], dim, dim))
        np.add.at(gram, rows, vectors[:, :, None] * vectors[:, None, :])
        rhs = np.asarray(block @ items)
        out[start : start + block.shape[0]] = np.linalg.solve(gram + base, rhs[:, :, None])[:, :, 0]
    return out
