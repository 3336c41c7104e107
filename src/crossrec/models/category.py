"""Category transitions: what learners take next, at the level of item categories.

When a target platform has almost no sequences of its own (a learner keeps one or two enrolments),
item-to-item transitions cannot be counted, but a transition between *categories* (a course's
discipline) can be borrowed: from a prior (uniform, "stay in the same category", or a matrix learned
on another platform whose items were mapped to the target's categories by content) shrunk toward
the target's own category transitions as they accumulate. :class:`CategoryTransition` scores item
``i`` for a user whose recent items have category distribution ``h`` as

    ``log(1 + popularity_i) + category_weight * (h @ T)[category_i] + markov_weight * markov_i``

with ``T = (C + prior_strength * P) / (C.sum(1) + prior_strength)`` (``C``: the target's category
transition counts, ``P``: the row-stochastic prior) and ``markov_i`` an item-level
:class:`~crossrec.models.markov.TransitionRecommender` (0 when ``markov_weight = 0``).
:func:`category_transition_prior` learns ``P`` from a source's sequences.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Self

import numpy as np
import scipy.sparse as sp

from crossrec.models.base import register_model
from crossrec.models.inputs import FitInputs
from crossrec.models.markov import TransitionRecommender
from crossrec.models.sequences import Sequences, SequentialRecommender

__all__ = ["CategoryTransition", "category_transition_prior"]


def category_transition_prior(
    source: Sequences, item_categories: np.ndarray, *, sharpness: float = 1.0, smoothing: float = 1.0
) -> np.ndarray:
    """A row-stochastic ``(n_categories, n_categories)`` prior learned on a source's sequences.

    Parameters
    ----------
    source
        The source platform's ordered histories.
    item_categories
        ``(source.n_items, n_categories)`` weights of each source item on the *target's* categories
        (a one-hot row per mapped item, zeros for an item that could not be mapped: it is ignored).
    sharpness
        Exponent on the lift ``P(next category | category) / P(next category)``: the source's own
        catalogue mix is divided out (the target's popularity carries the target's), and larger
        values make the prior more decided.
    smoothing
        Pseudo-count added to every category pair before the lift is taken.

    Raises
    ------
    ValueError
        When the weights do not have one row per source item, are negative, or no source
        transition joins two mapped items.
    """
    weights = np.asarray(item_categories, dtype=np.float64)
    if weights.ndim != 2 or weights.shape[0] != source.n_items or weights.shape[1] == 0:
        raise ValueError(
            f"item_categories must be (source items = {source.n_items}, categories), got {weights.shape}"
        )
    if (weights < 0).any() or smoothing < 0 or sharpness <= 0:
        raise ValueError("item_categories must be >= 0, smoothing >= 0 and sharpness > 0")
    earlier, later = source.transitions(1)
    counts = weights[earlier].T @ weights[later]
    if counts.sum() == 0:
        raise ValueError("no source transition joins two items mapped to a target category")
    counts = counts + smoothing
    conditional = counts / counts.sum(axis=1, keepdims=True)
    marginal = counts.sum(axis=0) / counts.sum()
    lift = (conditional / marginal[None, :]) ** sharpness
    return lift / lift.sum(axis=1, keepdims=True)


@register_model
class CategoryTransition(SequentialRecommender):
    """Popularity plus category transitions (plus, optionally, item transitions).

    Parameters
    ----------
    categories
        One integer category per item (``0 .. n_categories - 1``), e.g. a course's discipline.
    prior
        ``"uniform"`` (no preference: popularity alone until the target has transitions),
        ``"identity"`` (learners stay in the category they are in) or a row-stochastic matrix
        (lists of floats, e.g. from :func:`category_transition_prior`).
    prior_strength
        Pseudo-transitions of the prior per category row; the target's own counts take over as
        they outnumber it.
    category_weight
        Weight of the category term against ``log(1 + popularity)``.
    history, decay
        The ``history`` most recent items form the user's category distribution, the ``k``-th
        most recent with weight ``decay ** (k - 1)``.
    markov_weight, markov_history, markov_horizon, markov_preference
        Weight and settings of the item-level transition term (0: none); ``markov_preference`` is
        that term's order-free EASE preference weight (``TransitionRecommender.preference_weight``).
    """

    name = "category_transition"

    def __init__(
        self,
        categories: Sequence[int] = (),
        prior: str | Sequence[Sequence[float]] = "uniform",
        prior_strength: float = 10.0,
        category_weight: float = 10.0,
        history: int = 10,
        decay: float = 1.0,
        markov_weight: float = 0.0,
        markov_history: int = 4,
        markov_horizon: int = 4,
        markov_preference: float = 0.0,
    ) -> None:
        self.categories = categories
        self.prior = prior
        self.prior_strength = prior_strength
        self.category_weight = category_weight
        self.history = history
        self.decay = decay
        self.markov_weight = markov_weight
        self.markov_history = markov_history
        self.markov_horizon = markov_horizon
        self.markov_preference = markov_preference

    def _category_array(self, n_items: int) -> np.ndarray:
        categories = np.asarray(self.categories, dtype=np.int64)
        if categories.shape != (n_items,) or (len(categories) and categories.min() < 0):
            raise ValueError(
                f"categories must give one category >= 0 per item ({n_items}), got shape {categories.shape}"
            )
        return categories

    def _prior_matrix(self, n_categories: int) -> np.ndarray:
        if isinstance(self.prior, str):
            if self.prior == "uniform":
                return np.full((n_categories, n_categories), 1.0 / n_categories)
            if self.prior == "identity":
                return np.eye(n_categories)
            raise ValueError(f"prior must be 'uniform', 'identity' or a matrix, got {self.prior!r}")
        matrix = np.asarray(self.prior, dtype=np.float64)
        if matrix.shape != (n_categories, n_categories) or (matrix < 0).any():
            raise ValueError(
                f"a prior matrix must be ({n_categories}, {n_categories}) with entries >= 0 (one row and "
                f"column per category), got shape {matrix.shape}"
            )
        return matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1e-12)

    def _fit(self, train: Sequences, valid: Sequences | None, inputs: FitInputs) -> Self:
        """Count category transitions of ``train`` and shrink them toward the prior."""
        if self.history < 1 or not 0 < self.decay <= 1 or self.prior_strength < 0:
            raise ValueError("history must be >= 1, decay in (0, 1] and prior_strength >= 0")
        if self.category_weight < 0 or self.markov_weight < 0:
            raise ValueError("category_weight and markov_weight must be >= 0")
        categories = self._category_array(train.n_items)
        n_categories = int(categories.max()) + 1 if len(categories) else 1
        earlier, later = train.transitions(1)
        counts = np.zeros((n_categories, n_categories))
        np.add.at(counts, (categories[earlier], categories[later]), 1.0)
        prior = self._prior_matrix(n_categories)
        self.transitions_ = (counts + self.prior_strength * prior) / np.maximum(
            counts.sum(axis=1, keepdims=True) + self.prior_strength, 1e-12
        )
        popularity = np.bincount(train.items, minlength=train.n_items).astype(np.float64)
        self.log_popularity_ = np.log1p(popularity).astype(np.float32)
        self.categories_ = categories
        self.n_users_, self.n_items_ = train.n_users, train.n_items
        self.markov_ = self._markov().fit(train) if self.markov_weight > 0 else None
        self.history_length_ = self._window()
        self.recent_ = train.recent(self.history_length_)
        return self

    def _markov(self) -> TransitionRecommender:
        return TransitionRecommender(
            history=self.markov_history, horizon=self.markov_horizon, popularity_weight=0.0,
            preference_weight=self.markov_preference,
        )  # fmt: skip

    def _window(self) -> int:
        return max(self.history, self._markov()._window() if self.markov_weight > 0 else 1)

    def score_histories(self, recent: np.ndarray) -> np.ndarray:
        self._check_fitted()
        recent = np.asarray(recent, dtype=np.int64)
        if recent.ndim != 2:
            raise ValueError(f"histories must be (n, length), got shape {recent.shape}")
        n_categories = self.transitions_.shape[0]
        window = recent[:, -self.history :]
        rows, columns = np.nonzero(window >= 0)
        age = window.shape[1] - 1 - columns  # 0 for the most recent item
        mix = sp.csr_matrix(
            (self.decay**age, (rows, self.categories_[window[rows, columns]])),
            shape=(len(recent), n_categories),
        ).toarray()
        mix /= np.maximum(mix.sum(axis=1, keepdims=True), 1e-12)
        scores = np.tile(self.log_popularity_, (len(recent), 1))
        scores += (self.category_weight * (mix @ self.transitions_))[:, self.categories_].astype(np.float32)
        if self.markov_ is not None:
            window = self.markov_.history_length_
            scores += self.markov_weight * self.markov_.score_histories(recent[:, -window:])
        return scores

    # -- persistence -------------------------------------------------------------------------------
    def state_arrays(self) -> dict[str, np.ndarray]:
        arrays = {
            "transitions": self.transitions_,
            "log_popularity": self.log_popularity_,
            "categories": self.categories_,
            "recent": self.recent_,
        }
        if self.markov_ is not None:
            arrays |= {f"markov.{key}": value for key, value in self.markov_.state_arrays().items()}
        return arrays

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.transitions_ = arrays["transitions"]
        self.log_popularity_ = arrays["log_popularity"]
        self.categories_ = arrays["categories"]
        self.recent_ = arrays["recent"]
        self.history_length_ = self._window()
        self.markov_ = None
        if self.markov_weight > 0:
            markov = self._markov()
            markov.n_users_, markov.n_items_ = self.n_users_, self.n_items_
            markov._set_state(
                {k.removeprefix("markov."): v for k, v in arrays.items() if k.startswith("markov.")}
            )
            self.markov_ = markov
