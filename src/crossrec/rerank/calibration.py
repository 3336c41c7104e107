"""Calibrated lists (Steck, RecSys 2018): the list's category mix follows the user's history mix.

``p(c | u)`` is the share of the user's history items in category ``c``; ``q(c | L)`` the share of the
list ``L``, smoothed as ``q~ = (1 - a) q + a p`` with ``a = 0.01`` so that the divergence stays finite.
Each step adds the candidate ``i`` maximising ``(1 - strength) * relevance(i) - strength *
KL(p || q~(L + i))``; Steck's greedy maximises the same objective summed over the list, whose
increment differs from this one by a constant per user. Users without history are not re-ranked.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from crossrec.rerank._base import GreedyReranker
from crossrec.rerank._items import check_categories, check_history, check_pool_items
from crossrec.rerank._kernels import calibration_select

__all__ = ["Calibration"]


class Calibration(GreedyReranker):
    """Category calibration against each user's history, by Kullback-Leibler divergence.

    Parameters
    ----------
    strength
        In ``[0, 1]``: ``0`` is no re-ranking, ``1`` minimises the divergence alone.
    item_categories
        One non-negative integer category code per item.
    history
        ``(n_users, n_items)`` matrix of the items each user interacted with (the training part;
        values are weights, e.g. 1): their categories give the target mix.
    candidates
        Pool size: the model's best items per user that lists are chosen from.
    smoothing
        ``a`` in ``q~ = (1 - a) q + a p`` (Steck's 0.01).
    """

    method = "calibration"

    def __init__(
        self,
        strength: float,
        *,
        item_categories: np.ndarray,
        history: sp.spmatrix,
        candidates: int = 100,
        smoothing: float = 0.01,
        relevance: str = "score",
    ) -> None:
        super().__init__(strength, candidates=candidates, relevance=relevance)
        if item_categories is None:
            raise ValueError("Calibration needs item_categories (one integer code per item)")
        if history is None:
            raise ValueError("Calibration needs history (users x items: each user's training items)")
        if not 0.0 < smoothing < 1.0:
            raise ValueError(f"smoothing must be in (0, 1), got {smoothing}")
        self.item_categories = check_categories(item_categories, "Calibration")
        self.history = check_history(history, len(self.item_categories), "Calibration")
        self.smoothing = float(smoothing)
        n_categories = int(self.item_categories.max()) + 1
        one_hot = sp.csr_matrix(
            (
                np.ones(len(self.item_categories)),
                (np.arange(len(self.item_categories)), self.item_categories),
            ),
            shape=(len(self.item_categories), n_categories),
        )
        mix = np.asarray((abs(self.history) @ one_hot).todense(), dtype=np.float64)
        total = mix.sum(axis=1, keepdims=True)
        self._target = np.divide(mix, total, out=np.zeros_like(mix), where=total > 0)

    def get_params(self) -> dict[str, Any]:
        return {**super().get_params(), "smoothing": self.smoothing}

    def target_mix(self, users: np.ndarray) -> np.ndarray:
        """``(len(users), n_categories)``: each user's history category shares ``p(c | u)``."""
        users = np.asarray(users, dtype=np.int64)
        if users.size and (users.min() < 0 or users.max() >= len(self._target)):
            raise ValueError(
                f"user {int(users.max())} is outside the calibration history ({len(self._target)} users)"
            )
        return self._target[users]

    def miscalibration(self, users: np.ndarray, recommendations: np.ndarray, k: int) -> np.ndarray:
        """Per user: ``KL(p || q~)`` of the top-``k`` of ``recommendations`` (``-1`` slots ignored;
        0 for users without history or with an empty list): Steck's miscalibration."""
        if k <= 0:
            raise ValueError(f"k must be positive, got {k}")
        target = self.target_mix(users)
        top = np.asarray(recommendations)[:, :k]
        self._check_items(top)
        filled = top >= 0
        counts = np.zeros_like(target)
        rows = np.repeat(np.arange(len(top)), filled.sum(axis=1))
        np.add.at(counts, (rows, self.item_categories[top[filled]]), 1.0)
        size = counts.sum(axis=1, keepdims=True)
        mix = np.divide(counts, size, out=np.zeros_like(counts), where=size > 0)
        smoothed = (1 - self.smoothing) * mix + self.smoothing * target
        present = target > 0
        terms = np.where(
            present, target * np.log(np.where(present, target / np.where(present, smoothed, 1), 1)), 0
        )
        return np.where(size[:, 0] > 0, terms.sum(axis=1), 0.0)

    def _check_items(self, items: np.ndarray) -> None:
        check_pool_items(items, len(self.item_categories), "Calibration's item categories")

    def _select(
        self, users: np.ndarray, items: np.ndarray, relevance: np.ndarray, valid: np.ndarray, k: int
    ) -> np.ndarray:
        """The compiled greedy (:mod:`crossrec.rerank._kernels`); :meth:`GreedyReranker._select` is
        its array reference."""
        state = self._start(users, items, valid)
        return calibration_select(
            np.ascontiguousarray(state["codes"]), np.ascontiguousarray(state["target"]), state["entropy"],
            np.ascontiguousarray(relevance, dtype=np.float64), valid, self.strength, k, self.smoothing,
        )  # fmt: skip

    def _start(self, users: np.ndarray, items: np.ndarray, valid: np.ndarray) -> dict[str, np.ndarray]:
        target = self.target_mix(users)
        with np.errstate(divide="ignore"):
            entropy = np.where(target > 0, target * np.log(np.where(target > 0, target, 1.0)), 0.0).sum(1)
        return {
            "target": target,
            "entropy": entropy,
            "codes": self.item_categories[np.where(valid, items, 0)],
            "counts": np.zeros_like(target),
        }

    def _gains(self, state: dict[str, np.ndarray], step: int) -> np.ndarray:
        """``-KL(p || q~(L + i))`` for every candidate ``i``."""
        target, counts, codes = state["target"], state["counts"], state["codes"]
        a = self.smoothing
        present = target > 0
        size = step + 1.0
        # log q~ of every category when the candidate is of another category, and of its own
        log_other = np.log(np.where(present, (1 - a) * counts / size + a * target, 1.0))
        log_own = np.log(np.where(present, (1 - a) * (counts + 1.0) / size + a * target, 1.0))
        cross_other = (target * log_other).sum(axis=1, keepdims=True)  # sum_c p_c log q~_c
        change = np.take_along_axis(target * (log_own - log_other), codes, axis=1)
        return cross_other + change - state["entropy"][:, None]

    def _chosen(self, state: dict[str, np.ndarray], best: np.ndarray, has: np.ndarray, step: int) -> None:
        rows = np.flatnonzero(has)
        state["counts"][rows, state["codes"][rows, best[rows]]] += 1.0
