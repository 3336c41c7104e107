"""The re-ranker interface: a candidate pool per user in, top-k lists out, vectorised over users.

A re-ranker reads each user's ``N`` best candidates (items and scores, best first, as
:func:`crossrec.ranking.rank_users` returns them) and picks ``k`` of them. Its one parameter,
``strength`` in ``[0, 1]``, trades the model's relevance for the re-ranker's objective: ``0`` returns
the plain top-k lists unchanged, ``1`` ignores relevance within the pool.

Relevance inside the pool is the min-max normalised score ``(s - min) / (max - min)`` over the user's
admissible candidates (all ``1`` when they tie), so that a strength means the same for models whose
scores live on different scales; or, with ``relevance="rank"``, the DCG discount of the candidate's
position in the model's ranking, ``1 / log2(2 + position)``, min-max normalised the same way (what an
item's place is worth to NDCG, whatever the shape of the score curve).

Greedy re-rankers choose one item at a time for every user of the
batch at once (a loop over the ``k`` positions, array operations across users and candidates); ties
go to the better-ranked candidate, so the seeded tie order of the ranking kernel is kept.

The chosen *set* is returned in the model's order (by score). Intra-list diversity, calibration and
coverage are properties of the set, while NDCG rewards putting the most relevant items first, so
the set in score order buys the same diversity for less NDCG than the greedy pick order. Metrics at
a cut-off below the list length therefore see the best-scored part of the longer list, not a shorter
re-ranked list.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
import torch

from crossrec.ranking import DEFAULT_TIE_SEED, Scorer, rank_users, recommend, top_k

__all__ = ["RELEVANCE", "GreedyReranker", "Reranker", "check_strength", "pool_relevance", "rank_relevance"]

#: How a pool's scores become relevance in [0, 1]: the min-max scaled scores, or the position's discount.
RELEVANCE = ("score", "rank")

#: Users re-ranked at once inside a batch (bounds the ``(users, N, dim)`` work arrays).
_CHUNK = 1024


def check_strength(strength: float) -> float:
    """``strength`` as a float, or a ``ValueError`` that says the allowed range."""
    try:
        value = float(strength)
    except (TypeError, ValueError):
        raise ValueError(f"strength must be a number in [0, 1], got {strength!r}") from None
    if not 0.0 <= value <= 1.0:  # also rejects NaN
        raise ValueError(f"strength must be in [0, 1] (0 = no re-ranking), got {strength!r}")
    return value


def rank_relevance(valid: np.ndarray) -> np.ndarray:
    """``1 / log2(2 + position)`` of each pool position, min-max scaled over the row's valid positions
    (best first, so the valid ones are a prefix): 1 for the model's best, 0 for its last candidate."""
    discount = 1.0 / np.log2(2.0 + np.arange(valid.shape[1]))
    return pool_relevance(np.broadcast_to(discount, valid.shape), valid)


def pool_relevance(scores: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Min-max normalised scores per row over the ``valid`` candidates, in ``[0, 1]`` (float64).

    Rows whose valid candidates all tie get relevance 1; invalid candidates get 0.
    """
    scores = np.asarray(scores, dtype=np.float64)
    low = np.where(valid, scores, np.inf).min(axis=1, keepdims=True, initial=np.inf)
    high = np.where(valid, scores, -np.inf).max(axis=1, keepdims=True, initial=-np.inf)
    span = high - low
    with np.errstate(invalid="ignore"):
        relevance = np.divide(scores - low, span, out=np.ones_like(scores), where=span > 0)
    return np.where(valid, relevance, 0.0)


class Reranker(ABC):
    """Picks ``k`` items per user from a pool of the model's ``candidates`` best.

    Parameters
    ----------
    strength
        In ``[0, 1]``: ``0`` is no re-ranking (the plain top-k lists, exactly), ``1`` ignores the
        model's relevance within the pool.
    candidates
        Pool size ``N``: how many of the model's best items per user the re-ranker chooses from.
    relevance
        ``"score"`` (min-max scaled scores) or ``"rank"`` (the DCG discount of the model's position).
    """

    #: Method name used by :class:`~crossrec.rerank.RerankConfig`.
    method: ClassVar[str]

    def __init__(self, strength: float, *, candidates: int = 100, relevance: str = "score") -> None:
        self.strength = check_strength(strength)
        if isinstance(candidates, bool) or not isinstance(candidates, int | np.integer) or candidates < 1:
            raise ValueError(f"candidates (pool size) must be a positive integer, got {candidates!r}")
        if relevance not in RELEVANCE:
            raise ValueError(f"relevance must be one of {RELEVANCE}, got {relevance!r}")
        self.candidates = int(candidates)
        self.relevance = relevance

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"

    def get_params(self) -> dict[str, Any]:
        """The scalar settings (what a config or an artifact records)."""
        return {"strength": self.strength, "candidates": self.candidates, "relevance": self.relevance}

    def with_strength(self, strength: float) -> Reranker:
        """The same stage at another ``strength`` (a shallow copy: item- and user-side data are shared,
        never written, so a server can keep one stage and answer each request at its own strength)."""
        other = copy.copy(self)
        other.strength = check_strength(strength)
        return other

    # -- the core: a pool in, lists out ------------------------------------------------------------
    def rerank(self, users: np.ndarray, items: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:
        """Top-``k`` item lists ``(len(users), k)`` chosen from each user's candidate pool.

        Parameters
        ----------
        users
            User indices (rows of the history a re-ranker may read).
        items, scores
            ``(len(users), N)`` candidates, best first, and their model scores; item ``-1`` marks an
            empty slot (as :func:`crossrec.ranking.rank_users` pads).
        k
            List length; lists are padded with ``-1`` when a pool holds fewer than ``k`` items.
        """
        users, items, scores = self._checked(users, items, scores, k)
        positions = self._positions(users, items, scores, k)
        out = np.full((len(users), k), -1, dtype=np.int64)
        chosen = np.take_along_axis(items, np.maximum(positions, 0), axis=1)
        out[:, : positions.shape[1]] = np.where(positions >= 0, chosen, -1)
        return out

    def _checked(
        self, users: np.ndarray, items: np.ndarray, scores: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if k <= 0:
            raise ValueError(f"k must be positive, got {k}")
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        scores = np.asarray(scores)
        if items.ndim != 2 or scores.shape != items.shape or len(users) != items.shape[0]:
            raise ValueError(
                f"items and scores must both be (n_users, N) for {len(users)} users; "
                f"got {items.shape} and {scores.shape}"
            )
        self._check_items(items)
        return users, items, scores

    def _positions(self, users: np.ndarray, items: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:
        """``(n_users, min(k, N))`` pool positions of the chosen set in pool order (``-1``: none)."""
        width = min(k, items.shape[1])
        if self.strength == 0.0 or items.shape[1] == 0:
            return np.where(items[:, :width] >= 0, np.arange(width), -1)
        out = np.empty((len(users), width), dtype=np.int64)
        for start in range(0, len(users), _CHUNK):
            stop = min(start + _CHUNK, len(users))
            valid = items[start:stop] >= 0
            if self.relevance == "rank":
                relevance = rank_relevance(valid)
            else:
                relevance = pool_relevance(scores[start:stop], valid)
            positions = self._select(users[start:stop], items[start:stop], relevance, valid, width)
            # the chosen set in the model's order (pool order: score, then the kernel's tie order)
            positions = np.sort(np.where(positions >= 0, positions, items.shape[1]), axis=1)
            positions[positions == items.shape[1]] = -1
            out[start:stop] = positions
        return out

    @abstractmethod
    def _select(
        self, users: np.ndarray, items: np.ndarray, relevance: np.ndarray, valid: np.ndarray, k: int
    ) -> np.ndarray:
        """``(n_users, k)`` positions into the pool (``-1``: none left), best first; ``0 < strength``."""

    @abstractmethod
    def _check_items(self, items: np.ndarray) -> None:
        """Raise when ``items`` index past the item-side data the re-ranker holds."""

    # -- ranking entry points (the same shapes as crossrec.ranking) ------------------------------------
    def rank_users(
        self,
        scorer: Scorer,
        users: np.ndarray,
        k: int,
        exclude: sp.csr_matrix | None = None,
        *,
        n_items: int | None = None,
        seed: int | None = DEFAULT_TIE_SEED,
        workspace: torch.Tensor | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(values, items)``: re-ranked top ``k`` of one batch of ``users``, like
        :func:`crossrec.ranking.rank_users` (``values`` are the model's scores of the chosen items,
        ``-inf`` for empty slots)."""
        users = np.asarray(users, dtype=np.int64)
        pool = max(k, self.candidates) if self.strength > 0 else k
        width = n_items if n_items is not None else getattr(scorer, "n_items", None)
        if width is not None:
            pool = max(1, min(pool, width))
        values, items = rank_users(
            scorer, users, pool, exclude, n_items=n_items, seed=seed, workspace=workspace
        )
        return self._finish(users, items, values, k)

    def rerank_scores(
        self,
        scores: np.ndarray,
        k: int,
        exclude: sp.csr_matrix | None = None,
        *,
        users: np.ndarray | None = None,
        seed: int | None = DEFAULT_TIE_SEED,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(items, values)``: re-ranked top ``k`` from dense ``(len(users), n_items)`` scores.

        ``users`` (default: row numbers) are the users of the rows, for the history and the tie order;
        ``exclude`` rows are aligned with the rows of ``scores``.
        """
        scores = np.asarray(scores)
        if scores.ndim != 2:
            raise ValueError(f"scores must be (n_users, n_items), got shape {scores.shape}")
        users = np.arange(scores.shape[0]) if users is None else np.asarray(users, dtype=np.int64)
        pool = max(1, min(max(k, self.candidates) if self.strength > 0 else k, scores.shape[1]))
        items, values = top_k(scores, pool, exclude, users=users, seed=seed)
        values, items = self._finish(users, items, values, k)
        return items, values

    def recommend(
        self,
        scorer: Scorer,
        users: np.ndarray,
        k: int,
        exclude: sp.csr_matrix | None = None,
        *,
        n_items: int | None = None,
        batch_size: int | None = None,
        seed: int | None = DEFAULT_TIE_SEED,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Re-ranked top-``k`` lists for many users, in batches: ``(items, scores)``, like
        :func:`crossrec.ranking.recommend` (which batches them, with this stage's ranking)."""
        return recommend(
            scorer,
            users,
            k,
            exclude,
            n_items=n_items,
            batch_size=batch_size,
            seed=seed,
            ranker=self.rank_users,
        )

    def _finish(
        self, users: np.ndarray, items: np.ndarray, values: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        values = np.asarray(values, dtype=np.float32)
        users, items, values = self._checked(users, items, values, k)
        positions = self._positions(users, items, values, k)
        chosen = np.full((len(users), k), -1, dtype=np.int64)
        out_values = np.full(chosen.shape, -np.inf, dtype=np.float32)
        found = positions >= 0
        safe = np.maximum(positions, 0)
        chosen[:, : positions.shape[1]] = np.where(found, np.take_along_axis(items, safe, axis=1), -1)
        out_values[:, : positions.shape[1]] = np.where(
            found, np.take_along_axis(values, safe, axis=1), -np.inf
        )
        return out_values, chosen


class GreedyReranker(Reranker):
    """A re-ranker that adds one item at a time: the candidate with the best marginal gain.

    Subclasses give the gain of every candidate given what is already chosen (``_gains``) and record
    a choice (``_chosen``); both work on whole batches of users.
    """

    def _select(
        self, users: np.ndarray, items: np.ndarray, relevance: np.ndarray, valid: np.ndarray, k: int
    ) -> np.ndarray:
        n_users = len(users)
        rows = np.arange(n_users)
        state = self._start(users, items, valid)
        available = valid.copy()
        positions = np.full((n_users, k), -1, dtype=np.int64)
        for step in range(k):
            gains = (1.0 - self.strength) * relevance + self.strength * self._gains(state, step)
            gains = np.where(available, gains, -np.inf)
            best = gains.argmax(axis=1)  # the first maximum: ties go to the better-ranked candidate
            has = available[rows, best]
            positions[:, step] = np.where(has, best, -1)
            available[rows[has], best[has]] = False
            self._chosen(state, best, has, step)
        return positions

    @abstractmethod
    def _start(self, users: np.ndarray, items: np.ndarray, valid: np.ndarray) -> dict[str, np.ndarray]:
        """Per-batch work arrays."""

    @abstractmethod
    def _gains(self, state: dict[str, np.ndarray], step: int) -> np.ndarray:
        """``(n_users, N)`` objective gain of adding each candidate after ``step`` chosen items."""

    @abstractmethod
    def _chosen(self, state: dict[str, np.ndarray], best: np.ndarray, has: np.ndarray, step: int) -> None:
        """Record that row ``u`` took pool position ``best[u]`` (where ``has[u]``)."""
