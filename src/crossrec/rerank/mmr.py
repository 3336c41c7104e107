"""Maximal marginal relevance: lists whose items differ from each other (intra-list diversity).

Each step adds the candidate maximising ``(1 - strength) * relevance + strength * distance``, where
``distance`` is the candidate's mean distance to the items already chosen: ``1 - cos`` of item
embeddings, or ``0``/``1`` for a same/different category. The mean (not Carbonell and Goldstein's
maximum similarity) is the candidate's marginal gain in intra-list diversity, the quantity
``ild@K`` measures; with categories the maximum saturates after one item of each category.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from crossrec.rerank._base import GreedyReranker
from crossrec.rerank._items import check_categories, check_embeddings, check_pool_items
from crossrec.rerank._kernels import mmr_select

__all__ = ["MMR"]


class MMR(GreedyReranker):
    """Maximal marginal relevance over item categories or item embeddings.

    Parameters
    ----------
    strength
        In ``[0, 1]``: ``0`` is no re-ranking, ``1`` picks for diversity alone (the first item is
        still the model's best).
    item_categories
        One non-negative integer category code per item (e.g. a movie's first genre).
    item_embeddings
        ``(n_items, dim)`` item vectors (cosine distance; zero vectors are at distance 1 from all).
    candidates
        Pool size: the model's best items per user that lists are chosen from.

    Give exactly one of ``item_categories`` and ``item_embeddings``.
    """

    method = "mmr"

    def __init__(
        self,
        strength: float,
        *,
        item_categories: np.ndarray | None = None,
        item_embeddings: np.ndarray | None = None,
        candidates: int = 100,
        relevance: str = "score",
    ) -> None:
        super().__init__(strength, candidates=candidates, relevance=relevance)
        if (item_categories is None) == (item_embeddings is None):
            raise ValueError(
                "MMR needs exactly one of item_categories (one integer code per item) and "
                "item_embeddings ((n_items, dim) vectors)"
            )
        self.item_categories = None if item_categories is None else check_categories(item_categories, "MMR")
        self._unit: np.ndarray | None = None
        self.item_embeddings = None
        if item_embeddings is not None:
            self.item_embeddings = check_embeddings(item_embeddings, "MMR")
            norms = np.linalg.norm(self.item_embeddings, axis=1, keepdims=True)
            self._unit = np.divide(
                self.item_embeddings, norms, out=np.zeros_like(self.item_embeddings), where=norms > 0
            )

    @property
    def similarity(self) -> str:
        """``"category"`` or ``"embedding"``."""
        return "category" if self.item_categories is not None else "embedding"

    @property
    def n_items(self) -> int:
        side = self.item_categories if self.item_categories is not None else self.item_embeddings
        return len(side)

    def get_params(self) -> dict[str, Any]:
        return {**super().get_params(), "similarity": self.similarity}

    def _check_items(self, items: np.ndarray) -> None:
        check_pool_items(items, self.n_items, f"MMR's item {self.similarity}s")

    def _select(
        self, users: np.ndarray, items: np.ndarray, relevance: np.ndarray, valid: np.ndarray, k: int
    ) -> np.ndarray:
        """The compiled greedy (:mod:`crossrec.rerank._kernels`); :meth:`GreedyReranker._select` is
        its array reference."""
        safe = np.ascontiguousarray(np.where(valid, items, 0))
        relevance = np.ascontiguousarray(relevance, dtype=np.float64)
        if self.item_categories is not None:
            codes, unit = np.ascontiguousarray(self.item_categories[safe]), np.zeros((0, 1))
            n_categories = int(self.item_categories.max(initial=0)) + 1
        else:
            codes, unit, n_categories = np.zeros((0, 0), dtype=np.int64), self._unit, 0
        return mmr_select(codes, unit, safe, relevance, valid, self.strength, k, n_categories)

    def _start(self, users: np.ndarray, items: np.ndarray, valid: np.ndarray) -> dict[str, np.ndarray]:
        safe = np.where(valid, items, 0)
        if self.item_categories is not None:
            codes = self.item_categories[safe]
            n_categories = int(self.item_categories.max(initial=0)) + 1
            return {"codes": codes, "counts": np.zeros((len(users), n_categories), dtype=np.float64)}
        vectors = self._unit[safe]
        return {"vectors": vectors, "summed": np.zeros((len(users), vectors.shape[2]), dtype=np.float64)}

    def _gains(self, state: dict[str, np.ndarray], step: int) -> np.ndarray:
        if step == 0:
            shape = state["codes" if "codes" in state else "vectors"].shape[:2]
            return np.zeros(shape)
        if "codes" in state:
            same = np.take_along_axis(state["counts"], state["codes"], axis=1)
        else:
            same = np.einsum("und,ud->un", state["vectors"], state["summed"])
        return 1.0 - same / step

    def _chosen(self, state: dict[str, np.ndarray], best: np.ndarray, has: np.ndarray, step: int) -> None:
        rows = np.flatnonzero(has)
        if "codes" in state:
            state["counts"][rows, state["codes"][rows, best[rows]]] += 1.0
        else:
            state["summed"][rows] += state["vectors"][rows, best[rows]]
