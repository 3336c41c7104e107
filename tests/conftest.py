"""Shared fixtures: the real-data folder (skips when absent) and small synthetic domains."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from crossrec.data.domain import Domain
from crossrec.data.interactions import Interactions
from crossrec.data.vocabulary import Vocabulary

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """``../shared/data`` next to the checkout, or ``$CROSSREC_SHARED_DATA``."""
    return Path(os.environ.get("CROSSREC_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"real test data not found at {path} (set CROSSREC_SHARED_DATA to its folder)")
    return path


def make_domain(
    name: str = "toy", n_users: int = 50, n_items: int = 40, density: float = 0.2, seed: int = 0
) -> Domain:
    """A random domain with latent structure: users prefer items in their own cluster."""
    rng = np.random.default_rng(seed)
    user_cluster = rng.integers(0, 4, n_users)
    item_cluster = rng.integers(0, 4, n_items)
    probability = np.where(user_cluster[:, None] == item_cluster[None, :], density * 3, density / 3)
    mask = rng.random((n_users, n_items)) < np.clip(probability, 0, 1)
    mask[np.arange(n_users), rng.integers(0, n_items, n_users)] = True  # no empty user
    users, items = np.nonzero(mask)
    return Domain(
        name=name,
        users=Vocabulary([f"u{i}" for i in range(n_users)]),
        items=Vocabulary([f"i{i}" for i in range(n_items)]),
        interactions=Interactions(users, items, np.ones(len(users)), np.arange(len(users))),
    )


@pytest.fixture
def toy_domain() -> Domain:
    return make_domain()


DEMO_ARGS = ["--max-users", "150", "--epochs", "15", "--no-progress"]
"""``crossrec demo`` on a sample: what the demo test and the README-commands test both run (once)."""


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory):
    """``(CliRunner result, runs folder)`` of ``crossrec demo`` with :data:`DEMO_ARGS`, run once per
    session (skips where movielens-cdr cannot be had)."""
    from typer.testing import CliRunner

    from crossrec.cli.main import app
    from crossrec.data.builtin import DatasetUnavailableError, movielens_cdr_dir

    try:
        movielens_cdr_dir()
    except DatasetUnavailableError as error:
        pytest.skip(f"movielens-cdr not available here: {error}")
    runs = tmp_path_factory.mktemp("demo-runs")
    result = CliRunner().invoke(app, ["demo", *DEMO_ARGS, "--runs-dir", str(runs)], env={"COLUMNS": "100"})
    return result, runs
