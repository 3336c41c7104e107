"""Fixtures for evaluation tests: a small split and two scorers of different quality."""

from __future__ import annotations

import numpy as np
import pytest

from crossrec.evaluation import Split, random_split
from tests.conftest import make_domain


@pytest.fixture(scope="session")
def small_split() -> Split:
    domain = make_domain(n_users=120, n_items=60, density=0.15, seed=3)
    return random_split(domain.interactions, domain.n_users, domain.n_items, seed=7)


def oracle_scorer(split: Split, noise: float, seed: int):
    """Scores that put the user's test items on top, blurred by ``noise``."""
    truth = split.matrix("test").toarray()
    rng = np.random.default_rng(seed)
    scores = truth + noise * rng.standard_normal(truth.shape)
    return lambda users: scores[users].copy()
