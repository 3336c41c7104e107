"""Popularity: every user gets the most interacted-with items."""

from __future__ import annotations

from typing import Self

import numpy as np
import scipy.sparse as sp

from crossrec.models.base import Recommender, register_model

__all__ = ["Popularity"]


@register_model
class Popularity(Recommender):
    """Scores each item by its number of training interactions (the same list for every user)."""

    name = "popularity"

    def __init__(self) -> None:
        pass

    def fit(self, train: sp.csr_matrix, valid: sp.csr_matrix | None = None) -> Self:
        train = sp.csr_matrix(train)
        self.n_users_, self.n_items_ = train.shape
        self.item_counts_ = np.asarray((train > 0).sum(axis=0), dtype=np.float32).ravel()
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        self._check_fitted()
        return np.broadcast_to(self.item_counts_, (len(users), self.n_items_)).copy()

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {"item_counts": self.item_counts_}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.item_counts_ = arrays["item_counts"]
