"""Popularity penalty: trade relevance for less-exposed items, to spread recommendations (coverage).

Each candidate's value is ``(1 - strength) * relevance - strength * log(1 + pop) / log(1 + max pop)``
with ``pop`` the item's training popularity; lists are the best ``k`` values of the pool.
"""

from __future__ import annotations

import numpy as np

from crossrec.rerank._base import Reranker
from crossrec.rerank._items import check_pool_items, check_popularity

__all__ = ["PopularityPenalty"]


class PopularityPenalty(Reranker):
    """Penalise popular items by their log training popularity scaled to ``[0, 1]``.

    Parameters
    ----------
    strength
        In ``[0, 1]``: ``0`` is no re-ranking, ``1`` takes the pool's least popular items.
    item_popularity
        Training interactions (or distinct users) per item.
    candidates
        Pool size: the model's best items per user that lists are chosen from.
    """

    method = "popularity"

    def __init__(
        self, strength: float, *, item_popularity: np.ndarray, candidates: int = 100, relevance: str = "score"
    ) -> None:
        super().__init__(strength, candidates=candidates, relevance=relevance)
        if item_popularity is None:
            raise ValueError("PopularityPenalty needs item_popularity (training count per item)")
        self.item_popularity = check_popularity(item_popularity, "PopularityPenalty")
        scale = np.log1p(self.item_popularity.max())
        self.penalty = (
            np.log1p(self.item_popularity) / scale if scale > 0 else np.zeros_like(self.item_popularity)
        )

    def _check_items(self, items: np.ndarray) -> None:
        check_pool_items(items, len(self.item_popularity), "item_popularity")

    def _select(
        self, users: np.ndarray, items: np.ndarray, relevance: np.ndarray, valid: np.ndarray, k: int
    ) -> np.ndarray:
        penalty = self.penalty[np.where(valid, items, 0)]
        values = np.where(valid, (1.0 - self.strength) * relevance - self.strength * penalty, -np.inf)
        order = np.argsort(-values, axis=1, kind="stable")[:, :k]  # ties: the better-ranked candidate
        return np.where(np.take_along_axis(valid, order, axis=1), order, -1)
