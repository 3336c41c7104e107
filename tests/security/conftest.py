"""Trained toy models for the security tests (session-scoped: trained once)."""

from __future__ import annotations

import pytest

from crossrec.models.item_based import EASE, ItemKNN
from crossrec.models.markov import TransitionRecommender
from crossrec.models.mf import BPRMF
from crossrec.models.popularity import Popularity
from crossrec.models.sequences import Sequences, SequentialRecommender
from tests.artifacts.helpers import Trained
from tests.conftest import make_domain


@pytest.fixture(scope="session")
def toy_domain() -> Trained:
    domain = make_domain(n_users=30, n_items=25)
    train = domain.interactions.to_csr(domain.n_users, domain.n_items)
    return Trained(Popularity().fit(train), domain.users, domain.items, train)


@pytest.fixture(scope="session")
def trained_models(toy_domain: Trained) -> dict[str, Trained]:
    models = {
        "popularity": Popularity(),
        "bpr_mf": BPRMF(dim=4, optim={"epochs": 2, "progress": False, "threads": 1}),
        "ease": EASE(reg=10.0),
        "item_knn": ItemKNN(k=5),
        "markov": TransitionRecommender(),
    }
    train = toy_domain.train
    ordered = Sequences.from_csr(train)  # the markov model fits ordered histories (column order here)
    return {
        name: Trained(
            model.fit(ordered if isinstance(model, SequentialRecommender) else train),
            toy_domain.users,
            toy_domain.items,
            train,
        )  # fmt: skip
        for name, model in models.items()
    }
