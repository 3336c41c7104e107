"""The HTTP API through FastAPI's test client: every endpoint, every error path."""

from __future__ import annotations

import json
import logging
import shutil
import threading
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
from fastapi.testclient import TestClient

from crossrec.artifacts import load_artifact
from crossrec.data.vocabulary import Vocabulary
from crossrec.serving import ModelHolder, ServeSettings, load_api_keys
from tests.artifacts.helpers import Trained, hand_built_mf
from tests.serving.conftest import make_client, save

RECS = "/v1/users/{}/recommendations"
ADMIN = frozenset({"admin-key-123"})
ADMIN_HEADER = {"X-API-Key": "admin-key-123"}


# -- known users -------------------------------------------------------------------------------


def test_recommendations_for_a_known_user(client: TestClient, bpr_artifact: Path) -> None:
    artifact = load_artifact(bpr_artifact)
    response = client.get(RECS.format("u3"), params={"k": 5})
    assert response.status_code == 200
    body = response.json()
    expected = artifact.recommend("u3", k=5)
    assert body["user_id"] == "u3" and body["k"] == 5 and body["path"] == "model"
    assert [item["item_id"] for item in body["items"]] == expected.item_ids
    np.testing.assert_allclose([item["score"] for item in body["items"]], expected.scores, rtol=1e-6)
    seen = set(artifact.items.lookup(artifact.seen[3].indices))
    assert seen.isdisjoint(item["item_id"] for item in body["items"])
    assert body["artifact_id"] == artifact.metadata.artifact_id


def test_exclude_seen_false_can_return_seen_items(client: TestClient, bpr_artifact: Path) -> None:
    artifact = load_artifact(bpr_artifact)
    body = client.get(RECS.format("u3"), params={"k": 25, "exclude_seen": "false"}).json()
    assert len(body["items"]) == 25
    assert set(artifact.items.lookup(artifact.seen[3].indices)) <= {item["item_id"] for item in body["items"]}


@pytest.mark.parametrize("k", ["0", "-1", "1001", "ten", "1.5", ""])
def test_k_outside_1_to_1000_is_a_validation_error(client: TestClient, k: str) -> None:
    response = client.get(RECS.format("u3"), params={"k": k})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "k"]


def test_k_1000_is_allowed_and_returns_what_there_is(client: TestClient) -> None:
    body = client.get(RECS.format("u3"), params={"k": 1000}).json()
    assert 0 < len(body["items"]) <= 25


def test_unknown_user_is_404_with_a_message(client: TestClient) -> None:
    response = client.get(RECS.format("nobody"))
    assert response.status_code == 404
    assert "unknown user 'nobody'" in response.json()["detail"]
    assert "POST" in response.json()["detail"]


def test_overlong_id_is_a_validation_error(client: TestClient) -> None:
    assert client.get(RECS.format("u" * 600)).status_code == 422


# -- new users (cold start) --------------------------------------------------------------------


def test_new_user_is_folded_in_from_their_items(client: TestClient) -> None:
    response = client.post("/v1/recommendations", json={"item_ids": ["i1", "i2", "nope"], "k": 4})
    assert response.status_code == 200
    body = response.json()
    assert body["path"] == "fold_in" and body["user_id"] is None
    assert body["ignored_items"] == ["nope"]
    assert len(body["items"]) == 4
    assert {"i1", "i2"}.isdisjoint(item["item_id"] for item in body["items"])


@pytest.mark.parametrize(
    "payload", [{}, {"attributes": {"age": 31, "gender": "F"}}, {"item_ids": ["unknown-1", "unknown-2"]}]
)
def test_new_user_without_known_items_gets_popularity(client: TestClient, payload: dict) -> None:
    body = client.post("/v1/recommendations", json=payload).json()
    assert body["path"] == "popularity"
    assert len(body["items"]) == 10


@pytest.mark.parametrize(
    "payload",
    [
        {"item_ids": ["i1"], "unexpected": 1},
        {"item_ids": "i1"},
        {"item_ids": [""]},
        {"item_ids": [f"i{n}" for n in range(1001)]},
        {"k": 0},
        {"k": 1001},
        {"attributes": ["not", "a", "mapping"]},
        {"attributes": {"nested": {"deep": 1}}},
        [],
    ],
)
def test_invalid_bodies_are_validation_errors(client: TestClient, payload: object) -> None:
    assert client.post("/v1/recommendations", json=payload).status_code == 422


def test_malformed_json_is_a_validation_error(client: TestClient) -> None:
    response = client.post(
        "/v1/recommendations", content=b'{"item_ids": [', headers={"content-type": "application/json"}
    )
    assert response.status_code == 422


def test_too_large_body_is_413(bpr_artifact: Path) -> None:
    with make_client(bpr_artifact, max_body_bytes=2048) as small:
        big = {"item_ids": ["i1"] * 600}  # ~4 KB
        declared = small.post("/v1/recommendations", json=big)
        assert declared.status_code == 413
        assert "2048 bytes" in declared.json()["detail"]
        chunked = small.post(
            "/v1/recommendations",
            content=(b"x" * 1024 for _ in range(4)),  # no Content-Length: streamed
            headers={"content-type": "application/json"},
        )
        assert chunked.status_code == 413
        assert small.post("/v1/recommendations", json={"item_ids": ["i1"]}).status_code == 200


# -- similar items -----------------------------------------------------------------------------


def test_similar_items(client: TestClient, bpr_artifact: Path) -> None:
    body = client.get("/v1/items/i4/similar", params={"k": 3}).json()
    expected = load_artifact(bpr_artifact).similar_items("i4", k=3)
    assert body["path"] == "cosine" and body["item_id"] == "i4"
    assert [item["item_id"] for item in body["items"]] == expected.item_ids


def test_similar_items_errors(client: TestClient, popularity_artifact: Path) -> None:
    missing = client.get("/v1/items/nothing/similar")
    assert missing.status_code == 404 and "unknown item 'nothing'" in missing.json()["detail"]
    assert client.get("/v1/items/i4/similar", params={"k": 0}).status_code == 422
    with make_client(popularity_artifact) as popularity:
        response = popularity.get("/v1/items/i4/similar")
        assert response.status_code == 409
        assert "cannot find similar items" in response.json()["detail"]


# -- service endpoints -------------------------------------------------------------------------


def test_health_and_metadata(client: TestClient, bpr_artifact: Path) -> None:
    artifact_id = load_artifact(bpr_artifact).metadata.artifact_id
    assert client.get("/healthz").json() == {"status": "ok", "artifact_id": artifact_id}
    model = client.get("/v1/model").json()
    assert model["model"] == "bpr_mf" and model["n_items"] == 25 and model["dim"] == 8
    assert model["evaluation"] == {"ndcg@10": 0.3}
    assert model["capabilities"]["similar_items"] == "cosine"


def test_openapi_schema_documents_every_endpoint(client: TestClient, bpr_artifact: Path) -> None:
    schema = client.get("/openapi.json").json()
    assert {
        "/healthz",
        "/v1/model",
        "/v1/users/{user_id}/recommendations",
        "/v1/recommendations",
        "/v1/items/{item_id}/similar",
    } <= set(schema["paths"])
    assert "/v1/admin/reload" not in schema["paths"]  # no admin key configured: no admin endpoint
    assert "400" in schema["paths"]["/v1/recommendations"]["post"]["responses"]
    with make_client(bpr_artifact, admin_keys=frozenset({"admin-123"})) as admin:
        assert "/v1/admin/reload" in admin.get("/openapi.json").json()["paths"]
    k = next(
        p for p in schema["paths"]["/v1/items/{item_id}/similar"]["get"]["parameters"] if p["name"] == "k"
    )
    assert (k["schema"]["minimum"], k["schema"]["maximum"]) == (1, 1000)


def test_openapi_schema_documents_the_api_key_when_keys_are_set(bpr_artifact: Path) -> None:
    with make_client(
        bpr_artifact, api_keys=frozenset({"key-one-123"}), admin_keys=frozenset({"admin-123"})
    ) as secured:
        schema = secured.get("/openapi.json").json()
    assert {"ReadKey", "AdminKey"} <= set(schema["components"]["securitySchemes"])
    assert schema["paths"]["/v1/model"]["get"]["security"] == [{"ReadKey": []}]
    assert schema["paths"]["/v1/admin/reload"]["post"]["security"] == [{"AdminKey": []}]


def test_unknown_route_and_method(client: TestClient) -> None:
    assert client.get("/v2/anything").status_code == 404
    assert client.delete("/v1/recommendations").status_code == 405


# -- authentication ----------------------------------------------------------------------------


def test_api_keys_are_required_when_configured(bpr_artifact: Path) -> None:
    with make_client(bpr_artifact, api_keys=frozenset({"key-one-123", "key-two-456"})) as secured:
        assert secured.get("/healthz").status_code == 200  # liveness stays open
        missing = secured.get(RECS.format("u3"))
        assert missing.status_code == 401 and missing.json()["detail"] == "missing X-API-Key header"
        wrong = secured.get(RECS.format("u3"), headers={"X-API-Key": "key-one-12"})
        assert wrong.status_code == 401 and wrong.json()["detail"] == "invalid API key"
        assert secured.get("/v1/model", headers={"X-API-Key": "ключ".encode()}).status_code == 401
        for key in ("key-one-123", "key-two-456"):
            assert secured.get(RECS.format("u3"), headers={"X-API-Key": key}).status_code == 200
        assert secured.post("/v1/admin/reload").status_code == 404  # no admin key: no endpoint


def test_admin_keys_are_separate_from_read_keys(bpr_artifact: Path) -> None:
    with make_client(
        bpr_artifact, api_keys=frozenset({"read-key-1"}), admin_keys=frozenset({"admin-key-1"})
    ) as secured:
        assert secured.post("/v1/admin/reload").status_code == 401
        assert secured.post("/v1/admin/reload", headers={"X-API-Key": "read-key-1"}).status_code == 401
        assert secured.post("/v1/admin/reload", headers={"X-API-Key": "admin-key-1"}).status_code == 200
        assert secured.get(RECS.format("u3"), headers={"X-API-Key": "admin-key-1"}).status_code == 401
    with pytest.raises(ValueError, match="admin key is also a read key"):
        ServeSettings(artifact=bpr_artifact, api_keys=frozenset({"k1"}), admin_keys=frozenset({"k1"}))


def test_api_keys_come_from_a_file_and_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text("# service keys\nfile-key-1\n\n  file-key-2  \n")
    monkeypatch.setenv("CROSSREC_API_KEYS", "env-key-1, env-key-2,")
    assert load_api_keys(keys) == {"file-key-1", "file-key-2", "env-key-1", "env-key-2"}
    monkeypatch.delenv("CROSSREC_API_KEYS")
    assert load_api_keys(None) == frozenset()
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(ValueError, match="holds no key"):
        load_api_keys(tmp_path / "empty.txt")
    with pytest.raises(ValueError, match="cannot read"):
        load_api_keys(tmp_path / "absent.txt")


# -- access log --------------------------------------------------------------------------------


def test_access_log_is_json_without_ids_or_attributes(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="crossrec.access"):
        client.post(
            "/v1/recommendations", json={"item_ids": ["i1"], "attributes": {"secret": "s3cr3t-value"}}
        )
        client.get(RECS.format("u17"), headers={"X-Request-ID": "req-42"})
        client.get(RECS.format("nobody"))
    records = [json.loads(r.getMessage()) for r in caplog.records if r.name == "crossrec.access"]
    assert [(r["method"], r["route"], r["status"]) for r in records] == [
        ("POST", "/v1/recommendations", 200),
        ("GET", "/v1/users/{user_id}/recommendations", 200),
        ("GET", "/v1/users/{user_id}/recommendations", 404),
    ]
    assert records[1]["request_id"] == "req-42"
    assert all(r["duration_ms"] >= 0 and r["bytes"] > 0 for r in records)
    text = caplog.text
    assert "s3cr3t-value" not in text and "secret" not in text and "u17" not in text and "nobody" not in text


# -- hot reload --------------------------------------------------------------------------------


def test_reload_swaps_in_a_new_artifact(bpr_artifact: Path, toy, tmp_path: Path) -> None:
    folder = tmp_path / "served"
    shutil.copytree(bpr_artifact, folder)
    with make_client(folder, admin_keys=ADMIN) as served:
        before = served.get("/healthz").json()["artifact_id"]
        save(toy, folder, overwrite=True)  # a popularity model replaces the BPR one
        response = served.post("/v1/admin/reload", headers=ADMIN_HEADER)
        assert response.status_code == 200
        assert response.json()["previous_artifact_id"] == before
        assert response.json()["artifact_id"] != before
        assert served.get("/v1/model").json()["model"] == "popularity"
        assert served.get("/v1/items/i4/similar").status_code == 409


def test_failed_reload_keeps_serving_the_old_artifact(bpr_artifact: Path, tmp_path: Path) -> None:
    folder = tmp_path / "served"
    shutil.copytree(bpr_artifact, folder)
    with make_client(folder, admin_keys=ADMIN) as served:
        before = served.get("/healthz").json()["artifact_id"]
        weights = folder / "model" / "weights.safetensors"
        weights.write_bytes(weights.read_bytes()[:-10])
        response = served.post("/v1/admin/reload", headers=ADMIN_HEADER)
        assert response.status_code == 409
        assert "reload refused" in response.json()["detail"] and "truncated" in response.json()["detail"]
        assert str(tmp_path) not in response.text  # no server paths in answers
        assert served.get("/healthz").json()["artifact_id"] == before
        assert served.get(RECS.format("u3")).status_code == 200


def test_reload_never_breaks_concurrent_readers(
    bpr_artifact: Path, popularity_artifact: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "served"
    shutil.copytree(bpr_artifact, folder)
    holder = ModelHolder(folder)
    errors: list[BaseException] = []
    seen_ids: set[str] = set()
    stop = threading.Event()

    def read() -> None:
        for _ in range(5000):  # bounded
            if stop.is_set():
                return
            try:
                loaded = holder.current
                result = loaded.artifact.recommend("u3", k=5)
                assert len(result.item_ids) == 5
                seen_ids.add(loaded.artifact.metadata.artifact_id)
            except BaseException as error:
                errors.append(error)
                return

    readers = [threading.Thread(target=read) for _ in range(3)]
    for thread in readers:
        thread.start()
    for source in (popularity_artifact, bpr_artifact, popularity_artifact):
        staged = tmp_path / "staged"
        shutil.copytree(source, staged)
        shutil.rmtree(folder)
        staged.rename(folder)
        holder.reload()
    stop.set()
    for thread in readers:
        thread.join(timeout=30)
    assert not errors
    assert holder.current.artifact.metadata.model == "popularity"
    assert len(seen_ids) >= 1


# -- awkward ids -------------------------------------------------------------------------------


def test_ids_with_slashes_spaces_and_unicode_work(tmp_path: Path) -> None:
    trained = hand_built_mf()
    trained = Trained(
        trained.model,
        Vocabulary(["user/1", "ü 2"]),
        Vocabulary(["Face/Off (1997)", "Victor/Victoria (1982)", "Amélie (2001)", "?#%"]),
        trained.train,
    )
    with make_client(save(trained, tmp_path / "titles")) as titles:
        similar = titles.get(f"/v1/items/{quote('Face/Off (1997)', safe='')}/similar", params={"k": 1})
        assert similar.status_code == 200
        assert similar.json()["item_id"] == "Face/Off (1997)"
        assert similar.json()["items"][0]["item_id"] == "Victor/Victoria (1982)"
        for user in ("user/1", "ü 2"):
            response = titles.get(RECS.format(quote(user, safe="")))
            assert response.status_code == 200 and response.json()["user_id"] == user
        assert titles.get(f"/v1/items/{quote('?#%', safe='')}/similar").status_code == 200
        assert titles.get(RECS.format(quote("user/2", safe=""))).status_code == 404
