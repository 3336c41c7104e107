"""Small fitted models for artifact tests (session-scoped: trained once)."""

from __future__ import annotations

import pytest

from crossrec.models.mf import BPRMF
from crossrec.models.popularity import Popularity
from tests.artifacts.helpers import Trained, fit_on
from tests.conftest import make_domain


@pytest.fixture(scope="session")
def toy() -> Trained:
    domain = make_domain(n_users=30, n_items=25)
    train = domain.interactions.to_csr(domain.n_users, domain.n_items)
    return Trained(Popularity().fit(train), domain.users, domain.items, train)


@pytest.fixture(scope="session")
def bpr(toy: Trained) -> Trained:
    return fit_on(BPRMF(dim=8, optim={"epochs": 2, "progress": False, "threads": 1}), toy)
