"""Models that score target items for a user from her *source-domain profile* alone, learned on the
users who have both a source profile and target training data (the *warm* linked users). They serve
users with no target history at all (cold users known on a source platform).

Both take the profiles as ``FitInputs(extra_columns=...)``: ``(n_users, n_source_items)``, one row per
target user (zero rows for users without a source profile), which the ``source_profile`` transfer
strategy builds from the user links. A profile row ``x`` becomes a feature row ``f = x w / |x w|``
(``w``: 1, or each source item's IDF), so ``f_c . f_u`` is the cosine similarity of two users'
source profiles.

* :class:`LinkedUserKNN` (the baseline): ``score(c) = sum_{u in top-k(c)} sim(c, u) ** alpha * y_u``
  over the ``k`` warm users most similar to ``c``.
* :class:`ProfileKernelRidge`: kernel ridge regression from source profile to target items,
  ``score(c) = k_c (K_WW + lam I)^-1 Y_W * pop ** -popularity_exponent``, with ``K`` the profile
  cosine kernel over warm users ``W``: the dual form of ``min ||Y_W - F_W B||^2 + lam ||B||^2``, a
  learned cross-domain item-to-item map that, unlike the kNN vote, corrects for neighbours that are
  similar to each other.

Users with an empty profile get target popularity scores. The fitted model keeps the profiles it was
given and the warm users' target rows, so it scores after ``load`` without the training data;
:meth:`SourceProfileRecommender.score_profiles` scores new profiles.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar, Literal, Self

import numpy as np
import scipy.linalg as sl
import scipy.sparse as sp

from crossrec.models._sparse import arrays_to_csr, csr_to_arrays
from crossrec.models.base import NotFittedError, Recommender, register_model
from crossrec.models.inputs import FitInputs

__all__ = ["LinkedUserKNN", "ProfileKernelRidge", "SourceProfileRecommender", "profile_item_weights"]

Weighting = Literal["binary", "idf"]


def profile_item_weights(profiles: sp.csr_matrix, weighting: Weighting) -> np.ndarray:
    """``(n_source_items,)`` column weights of profile rows: ones, or ``log(n_profiles / df)``."""
    if weighting == "binary":
        return np.ones(profiles.shape[1], dtype=np.float64)
    if weighting != "idf":
        raise ValueError(f"weighting must be 'binary' or 'idf', got {weighting!r}")
    document_frequency = np.diff(sp.csc_matrix(profiles).indptr).astype(np.float64)
    n_profiles = max(1, int((np.diff(profiles.indptr) > 0).sum()))
    return np.log(n_profiles / np.maximum(document_frequency, 1.0)) + 1e-6


def _features(profiles: sp.csr_matrix, item_weights: np.ndarray) -> sp.csr_matrix:
    """Unit-norm weighted profile rows (empty rows stay empty)."""
    weighted = sp.csr_matrix(sp.csr_matrix(profiles, dtype=np.float64) @ sp.diags(item_weights))
    norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1)).ravel())
    return sp.csr_matrix(sp.diags(1.0 / np.maximum(norms, 1e-12)) @ weighted)


class SourceProfileRecommender(Recommender):
    """Base of models that score users from their source profile (see the module docstring).

    Learned state: ``profiles_`` (every user's raw profile), ``item_weights_``, ``warm_features_``
    (feature rows of the warm users), ``warm_targets_`` (their target training rows) and
    ``item_counts_`` (target popularity, for users without a profile).
    """

    fit_inputs: ClassVar[frozenset[str]] = frozenset({"extra_columns"})

    weighting: Weighting

    def fit(self, train: sp.csr_matrix, valid: sp.csr_matrix | None = None) -> Self:
        """Refused: these models need source profiles (``fit_with`` and ``extra_columns``)."""
        raise ValueError(
            f"{type(self).__name__} scores users from their source-domain profile: fit it through the "
            "'source_profile' transfer strategy, or call fit_with(train, valid, "
            "FitInputs(extra_columns=profiles)) with one source profile row per target user"
        )

    def fit_with(self, train: sp.csr_matrix, valid: sp.csr_matrix | None, inputs: FitInputs) -> Self:
        """Learn from the warm users: those with target training data and a non-empty profile.

        Parameters
        ----------
        train
            ``(n_users, n_items)`` binary target training matrix.
        valid
            Ignored (closed form).
        inputs
            ``extra_columns``: ``(n_users, n_source_items)`` source profiles, one row per target user.
        """
        self.check_inputs(inputs)
        profiles = inputs.extra_columns
        if profiles is None:
            return self.fit(train, valid)
        train = sp.csr_matrix(train, dtype=np.float32)
        profiles = sp.csr_matrix(profiles, dtype=np.float32)
        if profiles.shape[0] != train.shape[0]:
            raise ValueError(
                f"source profiles have {profiles.shape[0]} rows but the target has {train.shape[0]} users: "
                "give one profile row per target user (zero rows for users without one)"
            )
        if profiles.nnz and profiles.data.min() < 0:
            raise ValueError("source profiles must be non-negative (interaction counts or weights)")
        warm = np.flatnonzero((np.diff(train.indptr) > 0) & (np.diff(profiles.indptr) > 0))
        if len(warm) == 0:
            raise ValueError(
                "no user has both a source profile and target training data: nothing links the source "
                "to the target (check the user links)"
            )
        self._check_params()
        self.n_users_, self.n_items_ = train.shape
        self.profiles_ = profiles
        self.item_weights_ = profile_item_weights(profiles, self.weighting)
        self.warm_users_ = warm
        self.warm_features_ = _features(profiles[warm], self.item_weights_)
        self.warm_targets_ = sp.csr_matrix(train[warm])
        self.item_counts_ = np.asarray(train.sum(axis=0), dtype=np.float32).ravel()
        self._fit_warm()
        return self

    def _check_params(self) -> None:
        """Raise ``ValueError`` on invalid constructor arguments (before any work)."""

    @abstractmethod
    def _fit_warm(self) -> None:
        """Learn from ``warm_features_`` and ``warm_targets_``."""

    @abstractmethod
    def _score_kernel(self, kernel: np.ndarray) -> np.ndarray:
        """``(n_rows, n_items)`` scores from the ``(n_rows, n_warm)`` cosine kernel to warm users."""

    def score_profiles(self, profiles: sp.csr_matrix) -> np.ndarray:
        """``(n_rows, n_items)`` float32 scores of raw source profiles (e.g. new users); empty rows get
        target popularity."""
        if not hasattr(self, "warm_features_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted yet: call fit_with() first")
        profiles = sp.csr_matrix(profiles, dtype=np.float32)
        if profiles.shape[1] != self.profiles_.shape[1]:
            raise ValueError(
                f"profiles have {profiles.shape[1]} source items, the model was fitted on "
                f"{self.profiles_.shape[1]}"
            )
        features = _features(profiles, self.item_weights_)
        kernel = np.asarray((features @ self.warm_features_.T).toarray(), dtype=np.float64)
        scores = np.asarray(self._score_kernel(kernel), dtype=np.float32)
        empty = np.diff(features.indptr) == 0
        scores[empty] = self.item_counts_
        return scores

    def score(self, users: np.ndarray) -> np.ndarray:
        self._check_fitted()
        users = self._check_indices(np.asarray(users, dtype=np.int64), self.n_users_, "user")
        return self.score_profiles(self.profiles_[users])

    def _base_state(self) -> dict[str, np.ndarray]:
        return {
            **csr_to_arrays("profiles", self.profiles_),
            **csr_to_arrays("warm_targets", self.warm_targets_),
            "item_weights": self.item_weights_,
            "warm_users": self.warm_users_,
            "item_counts": self.item_counts_,
        }

    def _set_base_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.profiles_ = arrays_to_csr("profiles", arrays)
        self.warm_targets_ = arrays_to_csr("warm_targets", arrays)
        self.item_weights_ = np.asarray(arrays["item_weights"], dtype=np.float64)
        self.warm_users_ = np.asarray(arrays["warm_users"], dtype=np.int64)
        self.item_counts_ = np.asarray(arrays["item_counts"], dtype=np.float32)
        self.warm_features_ = _features(self.profiles_[self.warm_users_], self.item_weights_)


@register_model
class LinkedUserKNN(SourceProfileRecommender):
    """User-kNN over linked users' source profiles: the ``k`` warm users whose source profiles are
    most similar (cosine) to the user's vote with their target items.

    Parameters
    ----------
    k
        Neighbours per user (``None``: every warm user).
    alpha
        Similarity exponent of the votes (``> 1`` favours the closest neighbours).
    weighting
        ``"binary"`` or ``"idf"`` (rare source items count more in the similarity).
    """

    name = "linked_user_knn"

    def __init__(self, k: int | None = 100, alpha: float = 1.0, weighting: Weighting = "binary") -> None:
        self.k = k
        self.alpha = alpha
        self.weighting = weighting

    def _check_params(self) -> None:
        if self.k is not None and self.k < 1:
            raise ValueError(f"k must be a positive number of neighbours or None, got {self.k}")
        if self.alpha <= 0:
            raise ValueError(f"alpha must be positive, got {self.alpha}")
        profile_item_weights(sp.csr_matrix((0, 0)), self.weighting)

    def _fit_warm(self) -> None:
        self.warm_targets_t_ = sp.csr_matrix(self.warm_targets_.T, dtype=np.float64)

    def _score_kernel(self, kernel: np.ndarray) -> np.ndarray:
        if self.k is not None and self.k < kernel.shape[1]:
            top = np.argpartition(-kernel, self.k - 1, axis=1)[:, : self.k]
            kept = np.zeros_like(kernel)
            np.put_along_axis(kept, top, np.take_along_axis(kernel, top, axis=1), axis=1)
            kernel = kept
        votes = np.power(np.maximum(kernel, 0.0), self.alpha)
        return np.asarray(self.warm_targets_t_ @ votes.T).T

    def state_arrays(self) -> dict[str, np.ndarray]:
        return self._base_state()

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self._set_base_state(arrays)
        self._fit_warm()


@register_model
class ProfileKernelRidge(SourceProfileRecommender):
    """Kernel ridge regression from a user's source profile to her target items (module docstring).

    Parameters
    ----------
    lam
        Ridge penalty (larger: closer to a plain similarity-weighted vote).
    weighting
        ``"binary"`` or ``"idf"`` source-item weights in the profile kernel.
    popularity_exponent
        ``gamma`` in ``score_j / pop_j ** gamma`` (``> 0`` demotes popular target items; 0: off).

    Notes
    -----
    Fitting factorises the ``n_warm x n_warm`` kernel system once (Cholesky, ``n_warm ** 3 / 3``
    flops; about 10 s for 8,000 warm users on one core); scoring a batch solves it against the
    batch's kernel rows. The factor is part of the saved state (``8 * n_warm ** 2`` bytes).
    """

    name = "kernel_ridge"

    def __init__(
        self, lam: float = 3.0, weighting: Weighting = "binary", popularity_exponent: float = 0.0
    ) -> None:
        self.lam = lam
        self.weighting = weighting
        self.popularity_exponent = popularity_exponent

    def _check_params(self) -> None:
        if not self.lam > 0:
            raise ValueError(f"lam must be positive (it keeps the kernel system solvable), got {self.lam}")
        if self.popularity_exponent < 0:
            raise ValueError(f"popularity_exponent must be >= 0, got {self.popularity_exponent}")
        profile_item_weights(sp.csr_matrix((0, 0)), self.weighting)

    def _fit_warm(self) -> None:
        system = np.asarray((self.warm_features_ @ self.warm_features_.T).toarray(), dtype=np.float64)
        system[np.diag_indices_from(system)] += self.lam
        self.cholesky_ = sl.cholesky(system, lower=False, overwrite_a=True, check_finite=False)
        self._prepare()

    def _prepare(self) -> None:
        self.warm_targets_t_ = sp.csr_matrix(self.warm_targets_.T, dtype=np.float64)
        self.item_scale_ = np.maximum(self.item_counts_.astype(np.float64), 1.0) ** -self.popularity_exponent

    def _score_kernel(self, kernel: np.ndarray) -> np.ndarray:
        dual = sl.cho_solve((self.cholesky_, False), kernel.T, check_finite=False)  # (n_warm, n_rows)
        return np.asarray(self.warm_targets_t_ @ dual).T * self.item_scale_

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {**self._base_state(), "cholesky": self.cholesky_.astype(np.float64)}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self._set_base_state(arrays)
        self.cholesky_ = np.asarray(arrays["cholesky"], dtype=np.float64)
        self._prepare()
