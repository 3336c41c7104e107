"""Artifacts and test clients for the service tests (models trained once per session)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from crossrec.artifacts import save_artifact
from crossrec.models.mf import BPRMF
from crossrec.models.popularity import Popularity
from crossrec.serving import ServeSettings, create_app
from tests.artifacts.helpers import Trained
from tests.conftest import make_domain


def _toy() -> Trained:
    domain = make_domain(n_users=30, n_items=25)
    train = domain.interactions.to_csr(domain.n_users, domain.n_items)
    return Trained(Popularity().fit(train), domain.users, domain.items, train)


def save(trained: Trained, folder: Path, **kwargs: object) -> Path:
    return save_artifact(
        folder, trained.model, users=trained.users, items=trained.items, train=trained.train, **kwargs
    )


@pytest.fixture(scope="session")
def toy() -> Trained:
    return _toy()


@pytest.fixture(scope="session")
def bpr(toy: Trained) -> Trained:
    model = BPRMF(dim=8, optim={"epochs": 2, "progress": False, "threads": 1}).fit(toy.train)
    return Trained(model, toy.users, toy.items, toy.train)


@pytest.fixture(scope="session")
def bpr_artifact(bpr: Trained, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save(bpr, tmp_path_factory.mktemp("serving") / "bpr", evaluation={"ndcg@10": 0.3})


@pytest.fixture(scope="session")
def popularity_artifact(toy: Trained, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save(toy, tmp_path_factory.mktemp("serving") / "popularity")


def make_client(artifact: Path, **settings: object) -> TestClient:
    options = {"reload_on_sighup": False, **settings}
    return TestClient(create_app(artifact, ServeSettings(artifact=artifact, **options)))


@pytest.fixture(scope="module")
def client(bpr_artifact: Path) -> Iterator[TestClient]:
    with make_client(bpr_artifact) as test_client:
        yield test_client
