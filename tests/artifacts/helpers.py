"""Models with exactly known answers, shared by the artifact and serving tests."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import scipy.sparse as sp

from crossrec.data.vocabulary import Vocabulary
from crossrec.models.base import Recommender, register_model
from crossrec.models.mf import BPRMF
from crossrec.models.popularity import Popularity


@dataclass
class Trained:
    """A fitted model with the vocabularies and training matrix an artifact needs."""

    model: Recommender
    users: Vocabulary
    items: Vocabulary
    train: sp.csr_matrix


def hand_built_mf() -> Trained:
    """Two users, four items with known vectors: cosine and dot-product answers are exact.

    Items i0 = (1, 0), i1 = (0.9, 0.1), i2 = (0, 1), i3 = (-1, 0); users u0 = (1, 0), u1 = (0, 1).
    u0 has seen i0; u1 has seen i2 and i3.
    """
    model = BPRMF(dim=2, optim={"progress": False})
    model.n_users_, model.n_items_ = 2, 4
    model._set_state(
        {
            "user_vectors": np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32),
            "item_vectors": np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [-1.0, 0.0]], dtype=np.float32),
        }
    )
    train = sp.csr_matrix(np.array([[1, 0, 0, 0], [0, 0, 1, 1]], dtype=np.float32))
    return Trained(model, Vocabulary(["u0", "u1"]), Vocabulary(["i0", "i1", "i2", "i3"]), train)


@register_model
class ToyItemItem(Recommender):
    """Item-item co-occurrence model (no item vectors): exposes ``item_similarities()``."""

    name = "toy_item_item"

    def __init__(self) -> None:
        pass

    def fit(self, train: sp.csr_matrix, valid: sp.csr_matrix | None = None) -> Self:
        train = sp.csr_matrix(train, dtype=np.float32)
        self.n_users_, self.n_items_ = train.shape
        similarity = (train.T @ train).toarray()
        np.fill_diagonal(similarity, 0)
        self.similarity_ = similarity.astype(np.float32)
        self.history_ = train.toarray()
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        return self.history_[users] @ self.similarity_

    def item_similarities(self) -> np.ndarray:
        return self.similarity_

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {"similarity": self.similarity_, "history": self.history_}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.similarity_, self.history_ = arrays["similarity"], arrays["history"]


@register_model
class ToyFeatures(Popularity):
    """Popularity with a cold-start scorer: attribute ``favourite`` = an item index it puts first."""

    name = "toy_features"

    def score_cold_users(
        self, interactions: sp.csr_matrix, attributes: list[Mapping[str, Any]] | None
    ) -> np.ndarray:
        scores = np.broadcast_to(self.item_counts_, (interactions.shape[0], self.n_items_)).copy()
        for row, values in enumerate(attributes or []):
            if "favourite" in values:
                scores[row, int(values["favourite"])] = 1e6
        return scores


def fit_on(model: Recommender, source: Trained) -> Trained:
    return Trained(model.fit(source.train), source.users, source.items, source.train)
