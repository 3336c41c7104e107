"""Ordered interaction histories for sequence-aware models.

A user x item CSR matrix forgets the order of events, which sequence-aware models
(:class:`~crossrec.models.markov.TransitionRecommender`, :class:`~crossrec.models.sasrec.SASRec`)
need. :class:`Sequences` keeps every user's items in time order in two flat arrays, the way a
CSR matrix keeps its rows: ``items[indptr[u]:indptr[u + 1]]`` is user ``u``'s history, oldest first.

Build it from :class:`~crossrec.data.Interactions` (ordered by timestamp, ties and missing
timestamps by row order) or from lists; split each user's most recent events off for "next items"
evaluation with :meth:`Sequences.split_last`; hand it to ``model.fit(train, valid)``.

:class:`SequentialRecommender` is the base of models that learn from order. It implements the
:class:`~crossrec.models.base.Recommender` interface with ordered data: ``fit`` takes
:class:`Sequences` and refuses a CSR matrix (which has no time order); ``score``, ``recommend``,
``save``/``load`` work as for every model, from the histories stored at fit time.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Self

import numpy as np
import scipy.sparse as sp

from crossrec.data.interactions import Interactions
from crossrec.models.base import Recommender
from crossrec.models.inputs import FitInputs

if TYPE_CHECKING:
    from crossrec.metrics.ranking import RankingResult

__all__ = ["SequentialRecommender", "Sequences", "evaluate_next_items"]


@dataclass(frozen=True)
class Sequences:
    """Every user's items in time order, stored as ``indptr`` / ``items`` (like a CSR matrix's rows).

    Attributes
    ----------
    indptr
        ``(n_users + 1,)`` int64 offsets: user ``u``'s items are ``items[indptr[u]:indptr[u + 1]]``.
    items
        ``int64`` item indices, oldest first within each user. Repeats are allowed.
    n_items
        Size of the item vocabulary.
    """

    indptr: np.ndarray
    items: np.ndarray
    n_items: int

    def __post_init__(self) -> None:
        indptr = np.asarray(self.indptr, dtype=np.int64)
        items = np.asarray(self.items, dtype=np.int64)
        object.__setattr__(self, "indptr", indptr)
        object.__setattr__(self, "items", items)
        if indptr.ndim != 1 or len(indptr) == 0 or indptr[0] != 0 or indptr[-1] != len(items):
            raise ValueError("indptr must start at 0 and end at len(items)")
        if np.any(np.diff(indptr) < 0):
            raise ValueError("indptr must be non-decreasing")
        if len(items) and (items.min() < 0 or items.max() >= self.n_items):
            raise ValueError(f"item index outside [0, {self.n_items}) in the sequences")

    # -- construction ------------------------------------------------------------------------------
    @classmethod
    def from_interactions(cls, interactions: Interactions, n_users: int, n_items: int) -> Sequences:
        """Order each user's interactions by timestamp (ties, or no timestamps at all: by row order).

        Parameters
        ----------
        interactions
            One domain's events; ``timestamp`` may be ``None`` when the rows are already in time order
            (e.g. files written in time order, like the Canvas Network ones).
        n_users, n_items
            Vocabulary sizes.
        """
        if len(interactions) and interactions.user.max() >= n_users:
            raise ValueError(f"user index {int(interactions.user.max())} outside [0, {n_users})")
        rows = np.arange(len(interactions))
        keys = [rows] if interactions.timestamp is None else [rows, interactions.timestamp]
        order = np.lexsort([*keys, interactions.user])  # by user, then time, then row
        counts = np.bincount(interactions.user, minlength=n_users)
        return cls(np.concatenate([[0], np.cumsum(counts)]), interactions.item[order], n_items)

    @classmethod
    def from_lists(cls, histories: Sequence[Sequence[int] | np.ndarray], n_items: int) -> Sequences:
        """From one list of item indices per user (oldest first)."""
        lengths = np.fromiter((len(h) for h in histories), dtype=np.int64, count=len(histories))
        items = (
            np.concatenate([np.asarray(h, dtype=np.int64) for h in histories])
            if len(histories)
            else np.zeros(0, np.int64)
        )
        return cls(np.concatenate([[0], np.cumsum(lengths)]), items, n_items)

    @classmethod
    def from_csr(cls, matrix: sp.csr_matrix) -> Sequences:
        """Each row's items in column order (a CSR matrix has no time order)."""
        matrix = sp.csr_matrix(matrix, copy=True)
        matrix.sort_indices()
        return cls(matrix.indptr.astype(np.int64), matrix.indices.astype(np.int64), matrix.shape[1])

    # -- views -------------------------------------------------------------------------------------
    @property
    def n_users(self) -> int:
        return len(self.indptr) - 1

    def __len__(self) -> int:
        return len(self.items)

    def lengths(self) -> np.ndarray:
        """Events per user."""
        return np.diff(self.indptr)

    def user_of_event(self) -> np.ndarray:
        """The user of each entry of :attr:`items`."""
        return np.repeat(np.arange(self.n_users, dtype=np.int64), self.lengths())

    def position(self) -> np.ndarray:
        """0-based position of each entry within its user's sequence."""
        return np.arange(len(self.items), dtype=np.int64) - np.repeat(self.indptr[:-1], self.lengths())

    def history(self, user: int) -> np.ndarray:
        """User ``user``'s items, oldest first."""
        return self.items[self.indptr[user] : self.indptr[user + 1]]

    def to_csr(self) -> sp.csr_matrix:
        """Binary user x item matrix (repeats collapse to 1)."""
        matrix = sp.csr_matrix(
            (np.ones(len(self.items), np.float32), self.items, self.indptr),
            shape=(self.n_users, self.n_items),
        )
        matrix.sum_duplicates()
        matrix.data[:] = 1.0
        return matrix

    def to_interactions(self) -> Interactions:
        """Interactions whose timestamp is the position within the user's sequence."""
        return Interactions(
            self.user_of_event(), self.items, np.ones(len(self.items), np.float32), self.position()
        )

    def recent(self, length: int, users: np.ndarray | None = None) -> np.ndarray:
        """The last ``length`` items of each user, ``(n, length)``, most recent in the last column.

        Shorter histories are padded with ``-1`` on the left.
        """
        if length <= 0:
            raise ValueError(f"length must be positive, got {length}")
        users = np.arange(self.n_users) if users is None else np.asarray(users, dtype=np.int64)
        ends = self.indptr[users + 1]
        starts = self.indptr[users]
        columns = ends[:, None] - length + np.arange(length)[None, :]
        valid = columns >= starts[:, None]
        out = np.full((len(users), length), -1, dtype=np.int64)
        out[valid] = self.items[columns[valid]]
        return out

    def transitions(self, gap: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Pairs ``(earlier, later)`` of items ``gap`` steps apart within the same user."""
        if gap <= 0:
            raise ValueError(f"gap must be positive, got {gap}")
        later = np.flatnonzero(self.position() >= gap)
        return self.items[later - gap], self.items[later]

    # -- splitting ---------------------------------------------------------------------------------
    def _take_events(self, keep: np.ndarray) -> Sequences:
        counts = np.bincount(self.user_of_event()[keep], minlength=self.n_users)
        return Sequences(np.concatenate([[0], np.cumsum(counts)]), self.items[keep], self.n_items)

    def split_last(
        self, fraction: float | None = None, *, n: int | None = None
    ) -> tuple[Sequences, Sequences]:
        """Split each user's most recent events off: ``(head, tail)``.

        Give either ``fraction`` (the tail holds ``round(fraction * length)`` events, numpy rounding;
        ``fraction=0.2`` reproduces the published Canvas Network split) or ``n`` (the tail holds the
        last ``n`` events). Every user keeps at least one event in the head.
        """
        if (fraction is None) == (n is None):
            raise ValueError("give exactly one of fraction or n")
        lengths = self.lengths()
        if fraction is not None:
            if not 0 < fraction < 1:
                raise ValueError(f"fraction must be in (0, 1), got {fraction}")
            tail = np.round(fraction * lengths).astype(np.int64)
        else:
            if n is None or n <= 0:
                raise ValueError(f"n must be positive, got {n}")
            tail = np.full(self.n_users, n, dtype=np.int64)
        tail = np.clip(tail, 0, np.maximum(lengths - 1, 0))
        in_tail = self.position() >= np.repeat(lengths - tail, lengths)
        return self._take_events(~in_tail), self._take_events(in_tail)

    def concat(self, later: Sequences) -> Sequences:
        """Each user's events here followed by their events in ``later`` (same users and items)."""
        if later.n_users != self.n_users or later.n_items != self.n_items:
            raise ValueError(
                f"cannot append sequences of {later.n_users} users x {later.n_items} items to "
                f"{self.n_users} x {self.n_items}"
            )
        user = np.concatenate([self.user_of_event(), later.user_of_event()])
        order = np.argsort(user, kind="stable")
        counts = self.lengths() + later.lengths()
        items = np.concatenate([self.items, later.items])[order]
        return Sequences(np.concatenate([[0], np.cumsum(counts)]), items, self.n_items)


class SequentialRecommender(Recommender):
    """A recommender that learns from each user's items in time order.

    Subclasses implement :meth:`_fit` and :meth:`score_histories`; :meth:`score` ranks for
    the histories stored at fit time (or set later by :meth:`set_histories`), so a saved model
    scores its users without the training data.
    """

    #: How many recent items a user's stored history keeps (set by subclasses from their config).
    history_length_: int

    def fit(self, train: Sequences, valid: Sequences | None = None) -> Self:
        """Learn from ordered histories; ``valid`` holds each user's next items (early stopping).

        Raises
        ------
        TypeError
            For a CSR matrix (it has no time order): build :class:`Sequences` instead.
        """
        return self.fit_with(train, valid, FitInputs())

    def fit_sequences(self, train: Sequences, valid: Sequences | None = None) -> Self:
        """The same as :meth:`fit` (the earlier name)."""
        return self.fit(train, valid)

    def fit_with(self, train: Sequences, valid: Sequences | None, inputs: FitInputs) -> Self:
        """:meth:`fit` with the inputs in :attr:`fit_inputs` (e.g. a transferred encoder)."""
        self.check_inputs(inputs)
        train = self._ordered(train, "train")
        if valid is not None:
            valid = self._ordered(valid, "valid")
            if valid.n_users != train.n_users or valid.n_items != train.n_items:
                raise ValueError(
                    f"valid covers {valid.n_users} users x {valid.n_items} items, train "
                    f"{train.n_users} x {train.n_items}: give both for the same users and items"
                )
        return self._fit(train, valid, inputs)

    def _ordered(self, data: object, part: str) -> Sequences:
        if isinstance(data, Sequences):
            return data
        found = "a sparse matrix" if sp.issparse(data) else type(data).__name__
        raise TypeError(
            f"{type(self).__name__}.fit needs each user's items in time order, and {part} is {found} "
            "(no order): pass Sequences.from_interactions(interactions, n_users, n_items) (ordered by "
            "timestamp), Sequences.from_lists(histories, n_items), or Sequences.from_csr(matrix) if the "
            "column order of each row really is its time order"
        )

    @abstractmethod
    def _fit(self, train: Sequences, valid: Sequences | None, inputs: FitInputs) -> Self:
        """Learn from ordered histories (inputs already checked)."""

    @abstractmethod
    def score_histories(self, recent: np.ndarray) -> np.ndarray:
        """Scores ``(n, n_items)`` for histories ``(n, length)`` padded with ``-1`` on the left."""

    def set_histories(self, sequences: Sequences) -> Self:
        """Replace the stored histories (e.g. add events seen after training) without refitting."""
        if sequences.n_items != self.n_items_:
            raise ValueError(f"sequences have {sequences.n_items} items, the model {self.n_items_}")
        self.recent_ = sequences.recent(self.history_length_)
        self.n_users_ = sequences.n_users
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        self._check_fitted()
        return self.score_histories(self.recent_[np.asarray(users, dtype=np.int64)])


def evaluate_next_items(
    model: SequentialRecommender,
    history: Sequences,
    future: Sequences,
    *,
    exclude_history: bool = True,
    metrics: Sequence[str] = ("recall", "precision", "ndcg", "hit"),
    ks: Sequence[int] = (10,),
) -> RankingResult:
    """Rank for each user after ``history`` and score against their ``future`` items ("next items").

    The model scores from the histories it is given (its stored ones are not used), so the same
    fitted model can be evaluated after any prefix. Returns the
    :class:`~crossrec.evaluation.RankingResult` (per-user rows); ``exclude_history`` removes the items
    already in ``history`` from the rankings.
    """
    from crossrec.metrics.ranking import evaluate_ranking

    if history.n_users != future.n_users or history.n_items != future.n_items:
        raise ValueError("history and future must cover the same users and items")
    window = model.history_length_
    return evaluate_ranking(
        lambda users: model.score_histories(history.recent(window, users)),
        future.to_csr(),
        history.to_csr() if exclude_history else None,
        metrics=metrics,
        ks=ks,
    )
