"""TwoTower: zero-shot scoring of unseen items from attributes, fusions, save/load without pickle."""

from __future__ import annotations

import numpy as np
import pytest

from crossrec.evaluation import evaluate_ranking
from crossrec.features import FeatureTable
from crossrec.models.base import Recommender
from crossrec.models.inputs import FitInputs
from crossrec.models.two_tower import TwoTower
from crossrec.splitting import item_cold_start_split

FAST = {
    "dim": 16,
    "optim": {"epochs": 15, "batch_size": 512, "learning_rate": 1e-2, "patience": 15, "progress": False,
              "threads": 1},
}  # fmt: skip


@pytest.fixture(scope="module")
def cold(featured_domain):
    return item_cold_start_split(
        featured_domain.interactions, featured_domain.n_users, featured_domain.n_items, fraction=0.25, seed=1
    )


@pytest.fixture(scope="module")
def fitted(featured_domain, cold):
    items = FeatureTable.from_domain(featured_domain, "item")
    users = FeatureTable.from_domain(featured_domain, "user")
    split = cold.split
    return TwoTower(id_dropout=0.3, **FAST).fit_with(
        split.matrix("train"), split.matrix("valid"), FitInputs(item_features=items, user_features=users)
    )


def cold_ndcg(scores_or_model, cold) -> float:
    scorer = scores_or_model.score if isinstance(scores_or_model, Recommender) else scores_or_model
    result = evaluate_ranking(scorer, cold.truth("cold"), cold.exclude("cold"), metrics=["ndcg"], ks=[5])
    return result.mean()["ndcg@5"]


def test_item_cold_split_holds_cold_items_out_of_training(cold):
    train = cold.split.matrix("train")
    assert train[:, cold.cold_items].nnz == 0
    assert cold.split.matrix("valid")[:, cold.cold_items].nnz == 0
    assert cold.truth("cold").nnz > 0 and cold.truth("warm").nnz > 0
    assert cold.truth("cold")[:, ~cold.is_cold].nnz == 0
    excluded = cold.exclude("cold").toarray().astype(bool)
    assert excluded[:, ~cold.is_cold].all()


def test_unseen_items_are_ranked_by_their_attributes(fitted, cold):
    rng = np.random.default_rng(0)
    random_ndcg = cold_ndcg(lambda users: rng.random((len(users), cold.split.n_items)), cold)
    assert cold_ndcg(fitted, cold) > random_ndcg + 0.2


def test_modalities_and_masking_change_only_the_masked_side(fitted):
    assert fitted.modalities == [
        "user:id",
        "user:group",
        "user:age",
        "item:id",
        "item:title",
        "item:year",
        "item:genre",
        "item:tags",
    ]
    users, items = fitted.vectors()
    np.testing.assert_allclose(users, fitted.user_vectors(), atol=1e-5)
    masked_users, masked_items = fitted.vectors(["item:genre"])
    np.testing.assert_allclose(masked_users, users, atol=1e-6)
    assert not np.allclose(masked_items, items)
    with pytest.raises(ValueError, match="unknown modalities"):
        fitted.vectors(["item:nope"])


def test_save_load_roundtrip_keeps_scores_and_zero_shot_encoding(fitted, featured_domain, tmp_path):
    fitted.save(tmp_path / "model")
    assert not list((tmp_path / "model").glob("*.pkl"))
    loaded = Recommender.load(tmp_path / "model")
    assert isinstance(loaded, TwoTower)
    users = np.arange(10)
    np.testing.assert_allclose(loaded.score(users), fitted.score(users), atol=1e-5)
    items = FeatureTable.from_domain(featured_domain, "item")
    np.testing.assert_allclose(loaded.encode_items(items), fitted.encode_items(items), atol=1e-5)
    np.testing.assert_allclose(
        loaded.vectors(["item:title"])[1], fitted.vectors(["item:title"])[1], atol=1e-5
    )


@pytest.mark.parametrize("fusion", ["gated", "attention"])
def test_every_fusion_trains_and_scores_unseen_items(fusion, featured_domain, cold):
    items = FeatureTable.from_domain(featured_domain, "item")
    model = TwoTower(fusion=fusion, id_dropout=0.3, user_modalities=[], **FAST).fit_with(
        cold.split.matrix("train"), cold.split.matrix("valid"), FitInputs(item_features=items)
    )
    assert np.isfinite(model.score(np.arange(5))).all()
    assert cold_ndcg(model, cold) > 0.3


def test_ids_only_model_and_wrong_table_sizes(featured_domain, cold):
    model = TwoTower(**FAST).fit(cold.split.matrix("train"))
    assert model.modalities == ["user:id", "item:id"]
    items = FeatureTable.from_domain(featured_domain, "item")
    with pytest.raises(ValueError, match="rows but the training matrix"):
        TwoTower(**FAST).fit_with(cold.split.matrix("train")[:, :10], None, FitInputs(item_features=items))
