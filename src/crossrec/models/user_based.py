"""User-based k-nearest neighbours, optionally blended with the target's popularity.

A user's neighbours are the ``k`` users whose profiles are most similar (shrunk cosine); they vote
with their training items. Profiles may carry extra columns (a linked user's items in a source
domain: users alike there become neighbours here even when they share no target item yet), and
extra rows may join as neighbours that vote without being users of the model (source users mapped
into the target's items). Scores are each user's votes divided by their largest vote, plus
``popularity_weight * log(1 + c_j)``, so a user with no neighbour gets popularity.
"""

from __future__ import annotations

from typing import ClassVar, Self

import numpy as np
import scipy.sparse as sp

from crossrec.models._sparse import arrays_to_csr, csr_to_arrays
from crossrec.models.base import Recommender, register_model
from crossrec.models.inputs import FitInputs

__all__ = ["UserKNN", "user_neighbours"]


def user_neighbours(
    profiles: sp.csr_matrix,
    candidates: sp.csr_matrix,
    k: int,
    shrink: float = 0.0,
    *,
    exclude_self: bool = True,
    block_size: int = 1024,
) -> sp.csr_matrix:
    """``(n_profiles, n_candidates)`` sparse matrix of each profile's ``k`` most similar candidates.

    Similarity is ``p . c / (|p| |c| + shrink)``; only positive similarities are kept. With
    ``exclude_self`` the first ``n_profiles`` candidates are the profiles themselves and a row never
    lists itself. Work is blocked over profiles (``block_size`` dense rows of similarities at once).
    """
    if k < 1:
        raise ValueError(f"UserKNN k must be at least 1, got {k}")
    profiles = sp.csr_matrix(profiles, dtype=np.float32)
    candidates = sp.csr_matrix(candidates, dtype=np.float32)
    profile_norms = np.sqrt(np.asarray(profiles.multiply(profiles).sum(axis=1)).ravel())
    candidate_norms = np.sqrt(np.asarray(candidates.multiply(candidates).sum(axis=1)).ravel())
    candidates_t = sp.csc_matrix(candidates.T)
    n_profiles, n_candidates = profiles.shape[0], candidates.shape[0]
    k = min(k, n_candidates - (1 if exclude_self else 0))
    rows_out, cols_out, vals_out = [], [], []
    for start in range(0, n_profiles, block_size):
        stop = min(start + block_size, n_profiles)
        block = (profiles[start:stop] @ candidates_t).toarray()
        block /= profile_norms[start:stop, None] * candidate_norms[None, :] + shrink + 1e-12
        if exclude_self:
            block[np.arange(stop - start), np.arange(start, stop)] = 0.0
        if k <= 0:
            continue
        top = np.argpartition(-block, k - 1, axis=1)[:, :k]
        values = np.take_along_axis(block, top, axis=1)
        keep = values > 0
        rows_out.append(np.repeat(np.arange(start, stop), k)[keep.ravel()])
        cols_out.append(top[keep])
        vals_out.append(values[keep])
    if not rows_out:
        return sp.csr_matrix((n_profiles, n_candidates), dtype=np.float32)
    return sp.csr_matrix(
        (np.concatenate(vals_out), (np.concatenate(rows_out), np.concatenate(cols_out))),
        shape=(n_profiles, n_candidates),
        dtype=np.float32,
    )


@register_model
class UserKNN(Recommender):
    """Users vote for their neighbours' items (shrunk cosine neighbours), plus a popularity prior.

    Parameters
    ----------
    k
        Neighbours per user.
    shrink
        Shrinkage of the cosine (damps similarities of users with few items).
    popularity_weight
        Weight of ``log(1 + c_j)`` against the per-user normalised votes (``0``: plain user kNN).
    block_size
        Users whose similarities are computed at once (memory: ``block_size * n_candidates`` floats).
    """

    name = "user_knn"
    fit_inputs: ClassVar[frozenset[str]] = frozenset({"extra_rows", "extra_columns"})

    neighbours_: sp.csr_matrix
    votes_: sp.csr_matrix
    item_prior_: np.ndarray

    def __init__(
        self, k: int = 200, shrink: float = 0.0, popularity_weight: float = 0.0, block_size: int = 1024
    ) -> None:
        self.k = k
        self.shrink = shrink
        self.popularity_weight = popularity_weight
        self.block_size = block_size

    def fit(self, train: sp.csr_matrix, valid: sp.csr_matrix | None = None) -> Self:
        """Find every user's neighbours in ``train`` (``valid`` is not needed: no training loop)."""
        return self.fit_with(train, valid, FitInputs())

    def fit_with(self, train: sp.csr_matrix, valid: sp.csr_matrix | None, inputs: FitInputs) -> Self:
        """:meth:`fit` with ``extra_columns`` (more profile columns per user, e.g. a linked user's
        source items, already weighted) and ``extra_rows`` (neighbours in the target's item space
        that are not users of the model, e.g. source users through item links, already weighted)."""
        self.check_inputs(inputs)
        weight = float(self.popularity_weight)
        if not np.isfinite(weight) or weight < 0:
            raise ValueError(
                f"popularity_weight must be a finite number >= 0, got {self.popularity_weight!r}"
            )
        if self.shrink < 0:
            raise ValueError(f"UserKNN shrink must be >= 0, got {self.shrink}")
        train = sp.csr_matrix(train, dtype=np.float32)
        train.data[:] = 1.0
        self.n_users_, self.n_items_ = train.shape
        profiles, votes = train, train
        if inputs.extra_columns is not None:
            extra_columns = sp.csr_matrix(inputs.extra_columns, dtype=np.float32)
            if extra_columns.shape[0] != train.shape[0]:
                raise ValueError(
                    f"extra_columns has {extra_columns.shape[0]} rows but the training matrix has "
                    f"{train.shape[0]} users: give one row per target user"
                )
            profiles = sp.hstack([train, extra_columns], format="csr")
        candidates = profiles
        if inputs.extra_rows is not None:
            extra_rows = sp.csr_matrix(inputs.extra_rows, dtype=np.float32)
            if extra_rows.shape[1] != train.shape[1]:
                raise ValueError(
                    f"extra_rows has {extra_rows.shape[1]} columns but the training matrix has "
                    f"{train.shape[1]} items: map extra rows into the target item space first"
                )
            padding = sp.csr_matrix(
                (extra_rows.shape[0], profiles.shape[1] - train.shape[1]), dtype=np.float32
            )
            candidates = sp.vstack([profiles, sp.hstack([extra_rows, padding], format="csr")], format="csr")
            votes = sp.vstack([train, extra_rows], format="csr")
        self.neighbours_ = user_neighbours(
            profiles, candidates, self.k, self.shrink, block_size=self.block_size
        )
        self.votes_ = sp.csr_matrix(votes)
        counts = np.asarray(train.sum(axis=0), dtype=np.float64).ravel()
        self.item_prior_ = np.log1p(counts).astype(np.float32)
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        self._check_fitted()
        votes = np.asarray((self.neighbours_[np.asarray(users, dtype=np.int64)] @ self.votes_).toarray())
        scale = np.abs(votes).max(axis=1, keepdims=True)
        scale[scale == 0] = 1.0
        votes /= scale
        votes += np.float32(self.popularity_weight) * self.item_prior_[None, :]
        return votes.astype(np.float32, copy=False)

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {
            **csr_to_arrays("neighbours", self.neighbours_),
            **csr_to_arrays("votes", self.votes_),
            "item_prior": self.item_prior_,
        }

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.neighbours_ = arrays_to_csr("neighbours", arrays)
        self.votes_ = arrays_to_csr("votes", arrays)
        self.item_prior_ = arrays["item_prior"]
