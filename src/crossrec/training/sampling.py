"""Vectorised negative sampling: uniform items a user has not interacted with."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["NegativeSampler"]


class NegativeSampler:
    """Draws items uniformly, redrawing (in whole-array rounds) those the user already has.

    Parameters
    ----------
    train
        Binary user x item matrix of positives.
    rounds
        Redraw rounds for collisions; after them a rare collision is kept (harmless for BPR).
    """

    def __init__(self, train: sp.csr_matrix, rounds: int = 4) -> None:
        train = sp.csr_matrix(train)
        self.n_items = train.shape[1]
        rows = np.repeat(np.arange(train.shape[0], dtype=np.int64), np.diff(train.indptr))
        self._keys = np.sort(rows * self.n_items + train.indices.astype(np.int64))
        self.rounds = rounds

    def _is_positive(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        if len(self._keys) == 0:
            return np.zeros(items.shape, dtype=bool)
        keys = users * self.n_items + items
        where = np.minimum(np.searchsorted(self._keys, keys), len(self._keys) - 1)
        return self._keys[where] == keys

    def sample(self, users: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        """``(len(users), n)`` negative item indices for each user."""
        users = np.asarray(users, dtype=np.int64)[:, None]
        items = rng.integers(0, self.n_items, size=(len(users), n), dtype=np.int64)
        for _ in range(self.rounds):
            clash = self._is_positive(users, items)
            if not clash.any():
                break
            items[clash] = rng.integers(0, self.n_items, size=int(clash.sum()), dtype=np.int64)
        return items
