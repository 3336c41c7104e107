"""Transition (Markov) recommender: what learners take after the courses they took last.

First-order Markov chains score item ``j`` for a user whose last item is ``i`` by the share of
``i -> j`` transitions in the training sequences. This model generalises that in two directions that
matter for "next items" protocols where several future items are held out:

* ``history``: the ``history`` most recent items all vote, the ``k``-th most recent with weight
  ``decay ** (k - 1)``;
* ``horizon``: an item votes for what followed it 1, 2, ... ``horizon`` steps later, step ``g`` with weight
  ``horizon_decay ** (g - 1)`` (the held-out items are the next *few* items, not only the next one).

With ``history=1, horizon=1`` it is the classic first-order chain. Optionally (``preference_weight > 0``),
a long-term preference term is added, as FPMC adds a user factor to a Markov chain: an EASE item-item
model (closed-form ridge regression, Steck 2019) applied to the user's whole recent window of
``preference_length`` items, order ignored. The ``k``-th most recent item is
``k`` steps before the first unseen one, so it votes with the transitions of gaps ``k .. k+horizon-1``.
Scores are sums of rows of sparse row-normalised gap-transition matrices: fitting and scoring are
vectorised (no loop per user or per event).
"""

from __future__ import annotations

from typing import Literal, Self

import numpy as np
import scipy.sparse as sp

from crossrec.models.base import register_model
from crossrec.models.inputs import FitInputs
from crossrec.models.sequences import Sequences, SequentialRecommender

__all__ = ["TransitionRecommender"]


@register_model
class TransitionRecommender(SequentialRecommender):
    """Sparse multi-gap transition model over each user's recent items.

    Parameters
    ----------
    history
        Number of most recent items that vote (1 = only the last one).
    decay
        Weight ratio between the votes of consecutive recent items (``0 < decay <= 1``).
    horizon
        Number of future steps each item votes for (1 = only the next item).
    horizon_decay
        Weight ratio between consecutive future steps.
    normalize
        ``"row"``: each item's transitions sum to 1 (probabilities); ``"none"``: raw counts.
    popularity_weight
        Weight of item popularity (scaled to [0, 1]) added to every score; a small value breaks ties
        between items no recent item leads to.
    preference_weight
        Weight of the order-free EASE preference term (0 disables it).
    preference_l2
        Ridge penalty of the EASE term.
    preference_length
        Most recent items the preference term reads per user.
    """

    name = "markov"

    def __init__(
        self,
        history: int = 3,
        decay: float = 0.5,
        horizon: int = 3,
        horizon_decay: float = 0.6,
        normalize: Literal["row", "none"] = "row",
        popularity_weight: float = 1e-3,
        preference_weight: float = 0.0,
        preference_l2: float = 50.0,
        preference_length: int = 50,
    ) -> None:
        self.history = history
        self.decay = decay
        self.horizon = horizon
        self.horizon_decay = horizon_decay
        self.normalize = normalize
        self.popularity_weight = popularity_weight
        self.preference_weight = preference_weight
        self.preference_l2 = preference_l2
        self.preference_length = preference_length

    def _validate(self) -> None:
        if self.history < 1 or self.horizon < 1:
            raise ValueError(f"history and horizon must be >= 1, got {self.history} and {self.horizon}")
        if not 0 < self.decay <= 1 or not 0 <= self.horizon_decay <= 1:
            raise ValueError(
                f"decay must be in (0, 1] and horizon_decay in [0, 1], got {self.decay}, {self.horizon_decay}"
            )
        if self.preference_weight < 0 or self.preference_l2 <= 0 or self.preference_length < 1:
            raise ValueError("preference_weight must be >= 0, preference_l2 > 0 and preference_length >= 1")
        if self.normalize not in ("row", "none"):
            raise ValueError(f"normalize must be 'row' or 'none', got {self.normalize!r}")

    def _fit(self, train: Sequences, valid: Sequences | None, inputs: FitInputs) -> Self:
        """Count gap transitions in ``train`` (``valid`` is not needed: there is nothing to stop)."""
        self._validate()
        n_items = train.n_items
        self.n_users_, self.n_items_ = train.n_users, n_items
        self.history_length_ = self._window()
        gaps = {}
        for gap in range(1, self.history + self.horizon):
            earlier, later = train.transitions(gap)
            counts = sp.csr_matrix(
                (np.ones(len(earlier), np.float32), (earlier, later)), shape=(n_items, n_items)
            )
            counts.sum_duplicates()
            if self.normalize == "row":
                totals = np.asarray(counts.sum(axis=1)).ravel()
                counts = sp.diags(1.0 / np.maximum(totals, 1.0)).astype(np.float32) @ counts
            gaps[gap] = counts
        # votes_[k] = what the (k+1)-th most recent item predicts: gaps k+1 .. k+horizon, weighted
        self.votes_ = [
            sum(
                (self.decay**k * self.horizon_decay**step) * gaps[k + 1 + step]
                for step in range(self.horizon)
            ).tocsr()
            for k in range(self.history)
        ]
        popularity = np.bincount(train.items, minlength=n_items).astype(np.float32)
        self.popularity_ = popularity / max(float(popularity.max()), 1.0)
        self.preference_ = (
            _ease(train.to_csr(), self.preference_l2)
            if self.preference_weight > 0
            else np.zeros((0, n_items), np.float32)
        )
        self.recent_ = train.recent(self.history_length_)
        return self

    def _window(self) -> int:
        return max(self.history, self.preference_length) if self.preference_weight > 0 else self.history

    def score_histories(self, recent: np.ndarray) -> np.ndarray:
        self._check_fitted()
        recent = np.asarray(recent, dtype=np.int64)
        if recent.ndim != 2:
            raise ValueError(f"histories must be (n, length), got shape {recent.shape}")
        scores = np.tile(self.popularity_weight * self.popularity_, (len(recent), 1))
        length = min(recent.shape[1], self.history)
        for k in range(length):
            items = recent[:, -1 - k]
            has = items >= 0
            if has.any():
                scores[has] += self.votes_[k][items[has]].toarray()
        if self.preference_weight > 0:
            window = recent[:, -self.preference_length :]
            rows, columns = np.nonzero(window >= 0)
            seen = sp.csr_matrix(
                (np.ones(len(rows), np.float32), (rows, window[rows, columns])),
                shape=(len(recent), self.n_items_),
            )
            seen.sum_duplicates()
            seen.data[:] = 1.0  # repeats count once
            scores += self.preference_weight * (seen @ self.preference_)
        return scores

    # -- persistence -------------------------------------------------------------------------------
    def state_arrays(self) -> dict[str, np.ndarray]:
        arrays = {"popularity": self.popularity_, "recent": self.recent_, "preference": self.preference_}
        for k, matrix in enumerate(self.votes_):
            arrays[f"votes{k}_indptr"] = matrix.indptr.astype(np.int64)
            arrays[f"votes{k}_indices"] = matrix.indices.astype(np.int64)
            arrays[f"votes{k}_data"] = matrix.data.astype(np.float32)
        return arrays

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.popularity_ = arrays["popularity"]
        self.recent_ = arrays["recent"]
        self.preference_ = arrays["preference"]
        self.history_length_ = self._window()
        self.votes_ = [
            sp.csr_matrix(
                (arrays[f"votes{k}_data"], arrays[f"votes{k}_indices"], arrays[f"votes{k}_indptr"]),
                shape=(self.n_items_, self.n_items_),
            )
            for k in range(self.history)
        ]


def _ease(matrix: sp.csr_matrix, l2: float) -> np.ndarray:
    """EASE item-item weights ``B`` (zero diagonal) of a binary user x item matrix."""
    gram = (matrix.T @ matrix).toarray().astype(np.float64)
    gram[np.diag_indices_from(gram)] += l2
    inverse = np.linalg.inv(gram)
    weights = -inverse / np.diag(inverse)
    np.fill_diagonal(weights, 0.0)
    return weights.astype(np.float32)
