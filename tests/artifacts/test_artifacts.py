"""Artifacts: round trip, recommendations without training data, and refusal of damaged folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from crossrec import __version__
from crossrec.artifacts import (
    Artifact,
    ArtifactCapabilityError,
    ArtifactIntegrityError,
    ArtifactVersionError,
    EncoderState,
    UnknownIdError,
    load_artifact,
    save_artifact,
    verify_artifact,
)
from crossrec.artifacts._manifest import sha256_file, write_manifest
from crossrec.models.base import NotFittedError
from crossrec.models.fold_in import fold_in_users
from crossrec.models.item_based import ItemKNN
from crossrec.models.mf import BPRMF
from crossrec.ranking import NaNScoresError, top_k
from tests.artifacts.helpers import ToyFeatures, ToyItemItem, Trained, fit_on, hand_built_mf


def save(trained: Trained, folder: Path, **kwargs: object) -> Path:
    return save_artifact(
        folder, trained.model, users=trained.users, items=trained.items, train=trained.train, **kwargs
    )


@pytest.fixture
def mf_artifact(tmp_path: Path) -> Artifact:
    return load_artifact(save(hand_built_mf(), tmp_path / "artifact"))


# -- round trip ---------------------------------------------------------------------------------


def test_round_trip_recommends_exactly_like_the_trained_model(bpr: Trained, tmp_path: Path) -> None:
    artifact = load_artifact(save(bpr, tmp_path / "a", config={"dim": 8}, evaluation={"ndcg@10": 0.5}))
    user = 3
    scores = bpr.model.score(np.array([user]))[0]
    scores[bpr.train[user].indices] = -np.inf
    expected = np.argsort(-scores, kind="stable")[:5]

    result = artifact.recommend("u3", k=5)

    assert result.path == "model"
    assert result.item_ids == bpr.items.lookup(expected).tolist()
    np.testing.assert_allclose(result.scores, scores[expected], rtol=1e-6)


def test_artifact_carries_seen_items_popularity_and_metadata(bpr: Trained, tmp_path: Path) -> None:
    folder = save(bpr, tmp_path / "a", config={"seed": 1}, evaluation={"ndcg@10": 0.25}, bundle_hash="abc123")
    artifact = load_artifact(folder)
    assert artifact.users == bpr.users and artifact.items == bpr.items
    assert (artifact.seen != (bpr.train > 0)).nnz == 0
    np.testing.assert_array_equal(artifact.item_popularity, np.asarray((bpr.train > 0).sum(axis=0)).ravel())
    meta = artifact.metadata
    assert (meta.model, meta.n_users, meta.n_items, meta.dim) == ("bpr_mf", 30, 25, 8)
    assert meta.bundle_hash == "abc123"
    assert dict(meta.config) == {"seed": 1} and dict(meta.evaluation) == {"ndcg@10": 0.25}
    assert meta.crossrec_version == __version__
    assert meta.capabilities == {"similar_items": "cosine", "cold_start": ["fold_in", "popularity"]}
    assert meta.artifact_id == sha256_file(folder / "manifest.json")


def test_manifest_lists_every_file_with_its_sha256(bpr: Trained, tmp_path: Path) -> None:
    folder = save(bpr, tmp_path / "a")
    manifest = json.loads((folder / "manifest.json").read_text())
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert sorted(manifest["files"]) == [name for name in files if name != "manifest.json"]
    assert {"model/weights.safetensors", "vocab/users.parquet", "index.safetensors"} <= set(manifest["files"])
    for name, entry in manifest["files"].items():
        assert entry["sha256"] == sha256_file(folder / name)
    assert manifest["crossrec_version"] == __version__
    assert not any(p.suffix in {".pkl", ".pickle", ".pt"} for p in folder.rglob("*"))


# -- recommending with exact answers --------------------------------------------------------------


def test_recommend_excludes_seen_items_unless_asked(mf_artifact: Artifact) -> None:
    unseen = mf_artifact.recommend("u0", k=10)
    assert unseen.item_ids == ["i1", "i2", "i3"]  # i0 was seen; fewer than k are left
    np.testing.assert_allclose(unseen.scores, [0.9, 0.0, -1.0])
    assert mf_artifact.recommend("u0", k=2, exclude_seen=False).item_ids == ["i0", "i1"]


def test_similar_items_is_cosine_over_item_vectors(mf_artifact: Artifact) -> None:
    result = mf_artifact.similar_items("i0", k=3)
    assert result.path == "cosine"
    assert result.item_ids == ["i1", "i2", "i3"]
    np.testing.assert_allclose(result.scores, [0.9 / np.hypot(0.9, 0.1), 0.0, -1.0], rtol=1e-6)


def test_cold_start_folds_the_user_in_from_their_items(mf_artifact: Artifact) -> None:
    result = mf_artifact.recommend_cold(["i2", "not-an-item"], k=2)
    assert result.path == "fold_in"
    assert result.ignored_items == ["not-an-item"]
    assert "i2" not in result.item_ids
    assert result.item_ids[0] == "i1"  # the only other item with a positive component along i2


def test_fold_in_matches_the_transfer_fold_in(bpr: Trained, tmp_path: Path) -> None:
    artifact = load_artifact(save(bpr, tmp_path / "a"))
    items = np.array([1, 4, 9, 16])
    row = sp.csr_matrix((np.ones(4, dtype=np.float32), items, [0, 4]), shape=(1, 25))
    expected = fold_in_users(bpr.model.item_vectors(), row)[0]
    np.testing.assert_allclose(artifact.fold_in(items), expected, rtol=1e-4, atol=1e-6)
    cold = artifact.recommend_cold(bpr.items.lookup(items), k=3, exclude_seen=False)
    np.testing.assert_allclose(cold.scores, np.sort(bpr.model.item_vectors() @ expected)[::-1][:3], rtol=1e-4)


def test_cold_start_without_known_items_falls_back_to_popularity(mf_artifact: Artifact) -> None:
    for result in (mf_artifact.recommend_cold([], k=4), mf_artifact.recommend_cold(["x"], {"age": 30}, k=4)):
        assert result.path == "popularity"
        assert result.item_ids[:3] == ["i0", "i2", "i3"]  # counts 1, 1, 1; i1 never seen (0)


def test_popularity_model_cannot_find_similar_items(toy: Trained, tmp_path: Path) -> None:
    artifact = load_artifact(save(toy, tmp_path / "p"))
    assert artifact.metadata.capabilities == {"similar_items": None, "cold_start": ["popularity"]}
    with pytest.raises(ArtifactCapabilityError, match="no item vectors"):
        artifact.similar_items("i1")
    assert artifact.recommend_cold(["i1"]).path == "popularity"


def test_item_item_model_scores_similar_and_cold_users_by_its_rows(toy: Trained, tmp_path: Path) -> None:
    trained = fit_on(ToyItemItem(), toy)
    artifact = load_artifact(save(trained, tmp_path / "ii"))
    similarity = trained.model.item_similarities()

    similar = artifact.similar_items("i4", k=3)
    assert similar.path == "item_item"
    assert similar.scores == sorted(similarity[4][np.arange(25) != 4], reverse=True)[:3]

    cold = artifact.recommend_cold(["i1", "i2"], k=25)
    expected = similarity[[1, 2]].sum(axis=0)
    assert cold.path == "item_item"
    assert {"i1", "i2"}.isdisjoint(cold.item_ids)
    assert cold.scores == sorted(np.delete(expected, [1, 2]).tolist(), reverse=True)


def test_item_knn_artifact_uses_its_item_rows(toy: Trained, tmp_path: Path) -> None:
    trained = fit_on(ItemKNN(k=10), toy)
    artifact = load_artifact(save(trained, tmp_path / "knn"))
    assert artifact.metadata.capabilities == {
        "similar_items": "item_item",
        "cold_start": ["item_item", "popularity"],
    }
    row = trained.model.similarity_[4].toarray().ravel()
    row[4] = -np.inf
    similar = artifact.similar_items("i4", k=3)
    np.testing.assert_allclose(similar.scores, np.sort(row)[::-1][:3], rtol=1e-6)
    assert artifact.recommend_cold(["i1"], k=3).path == "item_item"
    assert artifact.recommend("u2", k=3).item_ids == artifact.recommend_batch(["u2"], k=3)["item_id"].tolist()


def test_model_with_a_cold_start_scorer_uses_attributes(toy: Trained, tmp_path: Path) -> None:
    artifact = load_artifact(save(fit_on(ToyFeatures(), toy), tmp_path / "f"))
    result = artifact.recommend_cold([], {"favourite": 7}, k=3)
    assert result.path == "features"
    assert result.item_ids[0] == "i7"


def test_batch_recommendations_match_single_ones(bpr: Trained, tmp_path: Path) -> None:
    artifact = load_artifact(save(bpr, tmp_path / "a"))
    frame = artifact.recommend_batch(["u0", "u7", "stranger", "u29"], k=4, batch_size=2)
    for user in ("u0", "u7", "u29"):
        rows = frame[frame["user_id"] == user]
        single = artifact.recommend(user, k=4)
        assert rows["item_id"].tolist() == single.item_ids
        assert rows["rank"].tolist() == [1, 2, 3, 4]
        np.testing.assert_allclose(rows["score"], single.scores, rtol=1e-6)
    stranger = frame[frame["user_id"] == "stranger"]
    assert set(stranger["path"]) == {"popularity"}
    assert stranger["item_id"].tolist() == artifact.recommend_cold([], k=4).item_ids


def test_unknown_ids_and_bad_k_are_refused_clearly(mf_artifact: Artifact) -> None:
    with pytest.raises(UnknownIdError, match="unknown user 'nobody'"):
        mf_artifact.recommend("nobody")
    with pytest.raises(KeyError):
        mf_artifact.similar_items("nothing")
    with pytest.raises(ValueError, match="k must be a positive integer"):
        mf_artifact.recommend("u0", k=0)


def test_artifact_is_immutable(mf_artifact: Artifact) -> None:
    with pytest.raises(AttributeError, match="immutable"):
        mf_artifact.model = None  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        mf_artifact.item_popularity[0] = 5
    with pytest.raises(TypeError):
        mf_artifact.metadata.capabilities["x"] = 1  # type: ignore[index]


# -- refusing damaged, truncated and incompatible artifacts ---------------------------------------


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _rewrite_json(path: Path, **changes: object) -> None:
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


DAMAGE = {
    "modified weights": (lambda f: _flip_byte(f / "model/weights.safetensors"), "sha256"),
    "truncated index": (
        lambda f: (f / "index.safetensors").write_bytes((f / "index.safetensors").read_bytes()[:-7]),
        "truncated",
    ),
    "edited metadata": (lambda f: _rewrite_json(f / "metadata.json", bundle_hash="evil"), "truncated|sha256"),
    "missing vocabulary": (lambda f: (f / "vocab/items.parquet").unlink(), "missing"),
    "extra file": (lambda f: (f / "model/extra.bin").write_bytes(b"x"), "does not list"),
    "no manifest": (lambda f: (f / "manifest.json").unlink(), "no manifest.json"),
    "garbled manifest": (lambda f: (f / "manifest.json").write_text("{not json"), "not valid JSON"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damaged_artifact_is_refused(damage: str, tmp_path: Path) -> None:
    folder = save(hand_built_mf(), tmp_path / "a")
    change, message = DAMAGE[damage]
    change(folder)
    with pytest.raises(ArtifactIntegrityError, match=message):
        load_artifact(folder)


def test_newer_format_is_refused_as_incompatible(tmp_path: Path) -> None:
    folder = save(hand_built_mf(), tmp_path / "a")
    _rewrite_json(folder / "manifest.json", format_version=99)
    with pytest.raises(ArtifactVersionError, match="format 99"):
        load_artifact(folder)


def test_unknown_model_class_is_refused_as_incompatible(tmp_path: Path) -> None:
    folder = save(hand_built_mf(), tmp_path / "a")
    _rewrite_json(folder / "model/model.json", model="model_from_the_future")
    _rewrite_json(folder / "metadata.json", model="model_from_the_future")
    write_manifest(folder)  # consistent hashes: only the model class is unknown
    with pytest.raises(ArtifactVersionError, match="model_from_the_future"):
        load_artifact(folder)


def test_parts_that_do_not_fit_together_are_refused(tmp_path: Path) -> None:
    folder = save(hand_built_mf(), tmp_path / "a")
    pq.write_table(pa.table({"id": ["u0", "u1", "u2"]}), folder / "vocab/users.parquet")
    write_manifest(folder)
    with pytest.raises(ArtifactIntegrityError, match="vocabularies"):
        load_artifact(folder)


def test_verify_artifact_returns_the_manifest(tmp_path: Path) -> None:
    folder = save(hand_built_mf(), tmp_path / "a")
    assert verify_artifact(folder)["format_version"] == 1


# -- saving ------------------------------------------------------------------------------------


def test_save_refuses_to_overwrite_unless_asked(tmp_path: Path) -> None:
    trained = hand_built_mf()
    folder = save(trained, tmp_path / "a", evaluation={"run": 1})
    with pytest.raises(FileExistsError, match="overwrite=True"):
        save(trained, folder)
    save(trained, folder, evaluation={"run": 2}, overwrite=True)
    assert load_artifact(folder).metadata.evaluation == {"run": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["a"]  # no temporary or retired folders left


def test_failed_save_leaves_nothing_behind(tmp_path: Path) -> None:
    class Broken:
        def state_arrays(self) -> dict[str, np.ndarray]:
            raise RuntimeError("encoder exploded")

    with pytest.raises(RuntimeError, match="exploded"):
        save(hand_built_mf(), tmp_path / "a", encoders={"broken": Broken()})
    assert list(tmp_path.iterdir()) == []


def test_save_checks_the_model_against_the_vocabularies(bpr: Trained, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="vocabularies"):
        save_artifact(tmp_path / "a", bpr.model, users=bpr.items, items=bpr.items, train=bpr.train)
    with pytest.raises(NotFittedError):
        save_artifact(tmp_path / "a", BPRMF(), users=bpr.users, items=bpr.items, train=bpr.train)


def test_encoders_are_saved_and_come_back_with_their_state(tmp_path: Path) -> None:
    class Scaler:
        def __init__(self) -> None:
            self.mean_ = np.array([1.0, 2.0])

        def state_arrays(self) -> dict[str, np.ndarray]:
            return {"mean": self.mean_}

        def get_config(self) -> dict[str, object]:
            return {"columns": ["age", "year"]}

    artifact = load_artifact(save(hand_built_mf(), tmp_path / "a", encoders={"user_numbers": Scaler()}))
    state = artifact.encoders["user_numbers"]
    assert isinstance(state, EncoderState)
    assert state.config == {"columns": ["age", "year"]}
    np.testing.assert_array_equal(state.arrays["mean"], [1.0, 2.0])
    assert artifact.metadata.encoders == ("user_numbers",)


# -- top-K (the ranking kernel artifacts share with evaluation) -------------------------------

scores_strategy = arrays(
    np.float32,
    st.integers(1, 40),
    elements=st.one_of(st.floats(-5, 5, width=32), st.just(-np.inf)),
)


@settings(max_examples=200, deadline=None)
@given(scores=scores_strategy, k=st.integers(1, 50))
def test_top_k_returns_the_best_finite_items_in_order(scores: np.ndarray, k: int) -> None:
    best, values = top_k(scores, k)
    finite = np.flatnonzero(np.isfinite(scores))
    expected = finite[np.lexsort((finite, -scores[finite]))][:k]
    found = best[best >= 0]
    np.testing.assert_array_equal(scores[found], scores[expected])  # same values; ties may swap
    assert len(found) == min(k, len(finite))
    np.testing.assert_array_equal(values[: len(found)], scores[found])
    assert (best[len(found) :] == -1).all()


def test_top_k_refuses_nan_scores() -> None:
    with pytest.raises(NaNScoresError):
        top_k(np.array([0.1, np.nan, 0.3], dtype=np.float32), 2)
