"""An item-item model blended with the target's popularity: what still helps when a user has only a
few interactions.

``score(u, j) = s(u, j) / max_l |s(u, l)| + popularity_weight * log(1 + c_j)``, where ``s`` is an
item-item model's score (EASE or ItemKNN, learned from the training rows plus any extra rows, e.g.
source users mapped into the target's items) and ``c_j`` counts item ``j``'s training interactions
(target rows only). Dividing by each user's largest score puts users with one item and users with
fifty on the same scale, so one weight serves them all; a user with no history gets popularity.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

from crossrec.models.base import get_model_class, register_model
from crossrec.models.inputs import FitInputs
from crossrec.models.item_based import ItemSimilarityRecommender

__all__ = ["PopularityBlend"]


@register_model
class PopularityBlend(ItemSimilarityRecommender):
    """Per-user normalised item-item scores plus a weighted log-popularity prior.

    Parameters
    ----------
    base
        Registry name of the item-item model whose similarities are learned: ``"ease"`` or
        ``"item_knn"`` (any :class:`~crossrec.models.ItemSimilarityRecommender`).
    base_params
        Constructor arguments of that model, e.g. ``{"reg": 3000.0}``.
    popularity_weight
        Weight of ``log(1 + c_j)`` against the normalised personal score (``0``: the base model's
        ranking; large: popularity). Tune on validation.
    """

    name = "popularity_blend"
    fit_inputs: ClassVar[frozenset[str]] = frozenset({"extra_rows", "extra_columns"})

    item_prior_: np.ndarray

    def __init__(
        self, base: str = "ease", base_params: dict[str, Any] | None = None, popularity_weight: float = 1.0
    ) -> None:
        self.base = base
        self.base_params = base_params
        self.popularity_weight = popularity_weight

    def base_model(self) -> ItemSimilarityRecommender:
        """An unfitted instance of the configured item-item model (errors name what to change)."""
        cls = get_model_class(self.base)
        if not issubclass(cls, ItemSimilarityRecommender) or cls is PopularityBlend:
            raise ValueError(
                f"PopularityBlend base must be an item-item model ('ease' or 'item_knn'), got {self.base!r}"
            )
        try:
            return cls(**(self.base_params or {}))
        except TypeError as error:
            raise ValueError(f"PopularityBlend base_params for {self.base!r}: {error}") from None

    def fit_with(self, train: sp.csr_matrix, valid: sp.csr_matrix | None, inputs: FitInputs) -> Self:
        """Learn the base similarities (with ``extra_rows``/``extra_columns``) and the popularity of
        ``train``'s items; see :meth:`ItemSimilarityRecommender.fit_with`."""
        weight = float(self.popularity_weight)
        if not np.isfinite(weight) or weight < 0:
            raise ValueError(
                f"popularity_weight must be a finite number >= 0, got {self.popularity_weight!r}"
            )
        self._base = self.base_model()
        super().fit_with(train, valid, inputs)
        counts = np.asarray((sp.csr_matrix(train) > 0).sum(axis=0), dtype=np.float64).ravel()
        self.item_prior_ = np.log1p(counts).astype(np.float32)
        return self

    def _learn_similarity(self, matrix: sp.csr_matrix, n_items: int) -> np.ndarray | sp.csr_matrix:
        return self._base._learn_similarity(matrix, n_items)

    def score(self, users: np.ndarray) -> np.ndarray:
        personal = super().score(users)
        scale = np.abs(personal).max(axis=1, keepdims=True)
        scale[scale == 0] = 1.0
        personal /= scale
        personal += np.float32(self.popularity_weight) * self.item_prior_[None, :]
        return personal

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {**super().state_arrays(), "item_prior": self.item_prior_}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        super()._set_state(arrays)
        self.item_prior_ = arrays["item_prior"]
