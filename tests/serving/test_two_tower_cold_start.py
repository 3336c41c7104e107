"""A two-tower model's user tower serves new users: from attributes, from items, over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from fastapi.testclient import TestClient

from crossrec.artifacts import ColdStartInputError, load_artifact
from crossrec.features import FeatureTable
from crossrec.features.encoders import FeatureValueError
from crossrec.features.table import FeatureSchemaError
from crossrec.models.inputs import FitInputs
from crossrec.models.two_tower import TwoTower
from tests.artifacts.helpers import Trained
from tests.features.conftest import make_featured_domain
from tests.serving.conftest import make_client, save

N_CLUSTERS = 4  # item i belongs to cluster i % 4; a user's "group" attribute is "c<their cluster>"
SETTINGS = {"epochs": 15, "batch_size": 512, "learning_rate": 1e-2, "patience": 15, "progress": False}


def cluster_share(items: list[str] | np.ndarray, cluster: int) -> float:
    """Share of item ids (``toy-i<n>``) or indices in ``cluster``."""
    numbers = [int(str(item).rsplit("i", 1)[-1]) for item in items]
    return float(np.mean([n % N_CLUSTERS == cluster for n in numbers]))


@pytest.fixture(scope="module")
def trained() -> Trained:
    domain = make_featured_domain()
    train = domain.interactions.to_csr(domain.n_users, domain.n_items)
    inputs = FitInputs(
        item_features=FeatureTable.from_domain(domain, "item"),
        user_features=FeatureTable.from_domain(domain, "user"),
    )
    model = TwoTower(dim=16, id_dropout=0.3, optim={"threads": 1, **SETTINGS}).fit_with(train, None, inputs)
    return Trained(model, domain.users, domain.items, train)


@pytest.fixture(scope="module")
def client(trained: Trained, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with make_client(save(trained, tmp_path_factory.mktemp("two-tower") / "artifact")) as test_client:
        yield test_client


def top(scores: np.ndarray, k: int = 10) -> np.ndarray:
    return np.argsort(-scores, kind="stable")[:k]


def test_user_attributes_alone_place_a_new_user_in_their_cluster(trained: Trained) -> None:
    model = trained.model
    assert model.user_attribute_kinds() == {"group": "category", "age": "number"}
    empty = sp.csr_matrix((N_CLUSTERS, model.n_items_), dtype=np.float32)
    scores = model.score_cold_users(empty, [{"group": f"c{c}"} for c in range(N_CLUSTERS)])
    shares = [cluster_share(top(scores[c]), c) for c in range(N_CLUSTERS)]
    assert min(shares) >= 0.8, shares  # chance is 0.25
    with_age = model.score_cold_users(empty[:1], [{"group": "c1", "age": 30}])
    assert cluster_share(top(with_age[0]), 1) >= 0.8


def test_items_alone_fold_a_new_user_in(trained: Trained) -> None:
    model = trained.model
    liked = [3, 7, 11]  # cluster 3
    row = sp.csr_matrix((np.ones(3, np.float32), liked, [0, 3]), shape=(1, model.n_items_))
    scores = model.score_cold_users(row, None)[0]
    scores[liked] = -np.inf
    assert cluster_share(top(scores), 3) >= 0.8
    nothing = model.score_cold_users(sp.csr_matrix((1, model.n_items_)), [{}])[0]
    np.testing.assert_allclose(nothing, model.user_vectors().mean(axis=0) @ model.item_vectors().T, rtol=1e-5)


def test_unusable_attributes_are_refused_by_name_without_their_values(trained: Trained) -> None:
    model = trained.model
    empty = sp.csr_matrix((1, model.n_items_), dtype=np.float32)
    with pytest.raises(FeatureSchemaError, match="shoe_size"):
        model.score_cold_users(empty, [{"group": "c1", "shoe_size": 42}])
    with pytest.raises(FeatureValueError):
        model.score_cold_users(empty, [{"age": "not-a-number"}])
    with pytest.raises(ValueError, match="2 attribute mappings for 1 users"):
        model.score_cold_users(empty, [{}, {}])


def test_artifact_round_trip_keeps_the_cold_start_scorer(trained: Trained, tmp_path: Path) -> None:
    artifact = load_artifact(save(trained, tmp_path / "artifact"))
    result = artifact.recommend_cold([], {"group": "c2"}, k=10)
    assert result.path == "features"
    assert cluster_share(result.item_ids, 2) >= 0.8
    with pytest.raises(ColdStartInputError, match="shoe_size"):
        artifact.recommend_cold([], {"shoe_size": 42})


def test_http_cold_start_uses_the_user_tower(client: TestClient) -> None:
    response = client.post("/v1/recommendations", json={"attributes": {"group": "c0", "age": 41}, "k": 10})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["path"] == "features"
    assert cluster_share([item["item_id"] for item in body["items"]], 0) >= 0.8
    both = client.post("/v1/recommendations", json={"item_ids": ["toy-i3"], "attributes": {"group": "c3"}})
    assert both.status_code == 200 and "toy-i3" not in [item["item_id"] for item in both.json()["items"]]


def test_http_refuses_attributes_the_model_cannot_encode_with_422(client: TestClient) -> None:
    unknown = client.post("/v1/recommendations", json={"attributes": {"shoe_size": 42}})
    assert unknown.status_code == 422 and "shoe_size" in unknown.json()["detail"]
    bad = client.post("/v1/recommendations", json={"attributes": {"age": "s3cr3t-value"}})
    assert bad.status_code == 422
    assert "s3cr3t-value" not in bad.text and "number" in bad.json()["detail"]
