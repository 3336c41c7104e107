"""The ``diversity`` parameter: the same on every recommendation endpoint, validated in [0, 1], the
artifact's saved re-ranking at that strength, and a 409 where the artifact saved none."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from crossrec.artifacts import load_artifact
from crossrec.rerank import RerankConfig
from tests.serving.conftest import make_client, save

ENDPOINTS = [
    ("get", "/v1/users/u0/recommendations", None),
    ("post", "/v1/recommendations", {"item_ids": ["i1", "i2"]}),
    ("get", "/v1/items/i1/similar", None),
]


@pytest.fixture(scope="module")
def mmr_artifact(bpr, tmp_path_factory) -> Path:
    categories = np.arange(len(bpr.items)) % 4
    return save(
        bpr,
        tmp_path_factory.mktemp("diverse") / "mmr",
        rerank=RerankConfig(method="mmr", strength=0.5, candidates=20),
        item_categories=categories,
    )


@pytest.fixture(scope="module")
def diverse(mmr_artifact: Path) -> Iterator[TestClient]:
    with make_client(mmr_artifact) as test_client:
        yield test_client


def _call(client: TestClient, method: str, url: str, body: dict | None, **params: object):
    if method == "get":
        return client.get(url, params=params)
    return client.post(url, params=params, json=body)


@pytest.mark.parametrize(("method", "url", "body"), ENDPOINTS)
def test_diversity_is_the_saved_re_ranking_at_that_strength(diverse, mmr_artifact, method, url, body):
    artifact = load_artifact(mmr_artifact)
    expected = {
        "/v1/users/u0/recommendations": lambda d: artifact.recommend("u0", k=8, diversity=d),
        "/v1/recommendations": lambda d: artifact.recommend_cold(["i1", "i2"], k=8, diversity=d),
        "/v1/items/i1/similar": lambda d: artifact.similar_items("i1", k=8, diversity=d),
    }[url]
    lists = {}
    for strength in (0.0, 1.0):
        response = _call(diverse, method, url, body, k=8, diversity=strength)
        assert response.status_code == 200, response.text
        assert response.json()["diversity"] == strength
        lists[strength] = [item["item_id"] for item in response.json()["items"]]
        assert lists[strength] == expected(strength).item_ids
    assert lists[0.0] != lists[1.0]
    default = _call(diverse, method, url, body, k=8)
    assert default.json()["diversity"] == 0.5  # the saved strength
    assert [item["item_id"] for item in default.json()["items"]] == expected(None).item_ids


@pytest.mark.parametrize(("method", "url", "body"), ENDPOINTS)
@pytest.mark.parametrize("value", ["-0.1", "1.5", "nan", "inf", "much"])
def test_diversity_outside_0_to_1_is_a_validation_error(diverse, method, url, body, value):
    response = _call(diverse, method, url, body, diversity=value)
    assert response.status_code == 422
    assert any(error["loc"][-1] == "diversity" for error in response.json()["detail"])


def test_the_body_may_give_diversity_but_not_a_different_one_than_the_query(diverse):
    body = {"item_ids": ["i1", "i2"], "diversity": 1.0}
    assert diverse.post("/v1/recommendations", json=body).json()["diversity"] == 1.0
    assert diverse.post("/v1/recommendations", json=body, params={"diversity": 1}).status_code == 200
    conflict = diverse.post("/v1/recommendations", json=body, params={"diversity": 0.2})
    assert conflict.status_code == 422 and "diversity" in conflict.text
    for bad in (1.5, -1, "0.3", True):
        assert diverse.post("/v1/recommendations", json={"diversity": bad}).status_code == 422


@pytest.mark.parametrize(("method", "url", "body"), ENDPOINTS)
def test_an_artifact_without_a_setting_refuses_diversity_above_0(client, method, url, body):
    refused = _call(client, method, url, body, diversity=0.3)
    assert refused.status_code == 409 and "re-ranking setting" in refused.json()["detail"]
    plain = _call(client, method, url, body, diversity=0)
    assert plain.status_code == 200 and plain.json()["diversity"] == 0.0


def test_metadata_names_the_saved_setting(diverse):
    setting = diverse.get("/v1/model").json()["capabilities"]["rerank"]
    assert setting["method"] == "mmr" and setting["strength"] == 0.5 and setting["candidates"] == 20


def test_openapi_documents_diversity_on_every_recommendation_endpoint(diverse):
    paths = diverse.get("/openapi.json").json()["paths"]
    for method, url, _ in ENDPOINTS:
        template = next(p for p in paths if p.split("{")[0] == url.split("u0")[0].split("i1")[0])
        operation = paths[template][method]
        (parameter,) = [p for p in operation["parameters"] if p["name"] == "diversity"]
        assert "409" in operation["responses"]
        assert parameter["schema"]["anyOf"][0]["maximum"] == 1.0
