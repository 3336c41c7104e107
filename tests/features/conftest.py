"""Synthetic domains with attributes that carry the users' preferences (the right answer is known)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crossrec.data.domain import Domain
from crossrec.data.interactions import Interactions
from crossrec.data.vocabulary import Vocabulary

WORDS = ["castle dragon", "laser galaxy", "kitchen recipe", "court lawyer"]


def make_featured_domain(
    name: str = "toy", n_users: int = 120, n_items: int = 80, seed: int = 0, density: float = 0.25
) -> Domain:
    """Users like items of their own cluster; items carry the cluster in their genre, tags, title and
    year; users carry it in an attribute. Item ids are prefixed with the domain name."""
    rng = np.random.default_rng(seed)
    n_clusters = len(WORDS)
    user_cluster = rng.integers(0, n_clusters, n_users)
    item_cluster = np.arange(n_items) % n_clusters
    probability = np.where(user_cluster[:, None] == item_cluster[None, :], density, density / 12)
    mask = rng.random((n_users, n_items)) < probability
    mask[np.arange(n_users), rng.choice(np.flatnonzero(item_cluster == 0), n_users)] |= user_cluster == 0
    for user in range(n_users):  # every user has at least 3 items of their cluster
        own = np.flatnonzero(item_cluster == user_cluster[user])
        mask[user, rng.choice(own, 3, replace=False)] = True
    users, items = np.nonzero(mask)
    noise_words = np.array(["red", "blue", "old", "new", "big", "small"])
    item_features = pd.DataFrame(
        {
            "genre": [f"g{c}" for c in item_cluster],
            "tags": [[f"t{c}", f"n{rng.integers(0, 5)}"] for c in item_cluster],
            "title": [
                f"{WORDS[c]} {noise_words[rng.integers(0, 6)]} {i}" for i, c in enumerate(item_cluster)
            ],
            "year": 1950 + 10 * item_cluster + rng.integers(0, 5, n_items),
        }
    )
    user_features = pd.DataFrame(
        {"group": [f"c{c}" for c in user_cluster], "age": rng.integers(18, 60, n_users)}
    )
    return Domain(
        name=name,
        users=Vocabulary([f"{name}-u{i}" for i in range(n_users)]),
        items=Vocabulary([f"{name}-i{i}" for i in range(n_items)]),
        interactions=Interactions(users, items, np.ones(len(users)), np.arange(len(users))),
        item_features=item_features,
        user_features=user_features,
        # deliberately not alphabetical: the saved column order must survive JSON with sorted keys
        item_feature_kinds={"title": "text", "year": "number", "genre": "category", "tags": "tags"},
        user_feature_kinds={"group": "category", "age": "number"},
    )


@pytest.fixture(scope="session")
def featured_domain() -> Domain:
    return make_featured_domain()
