"""The popularity_blend strategy and its models: sparse targets where the source must carry the taste."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from crossrec.data.interactions import Interactions
from crossrec.metrics.ranking import evaluate_ranking
from crossrec.models import BPRMF, EASE, ItemKNN, Popularity, PopularityBlend, Recommender, UserKNN
from crossrec.splitting.splits import Split
from crossrec.testing.models import RecommenderConformance
from crossrec.transfer import (
    STRATEGY_REGISTRY,
    Links,
    PopularityBlendTransfer,
    SourceData,
    TargetOnly,
    TransferData,
    TransferNotPossibleError,
    make_strategy,
    possible_strategies,
)


class TestPopularityBlendModel(RecommenderConformance):
    @classmethod
    def make_model(cls, seed: int = 0):
        return PopularityBlend("ease", {"reg": 1.0}, popularity_weight=0.1)


class TestPopularityBlendOnItemKNN(RecommenderConformance):
    @classmethod
    def make_model(cls, seed: int = 0):
        return PopularityBlend("item_knn", {"k": 10, "shrink": 0.0}, popularity_weight=0.1)


class TestUserKNN(RecommenderConformance):
    @classmethod
    def make_model(cls, seed: int = 0):
        return UserKNN(k=10, popularity_weight=0.01, block_size=5)


def _interactions(matrix: np.ndarray) -> Interactions:
    users, items = np.nonzero(matrix)
    return Interactions(users, items, np.ones(len(users), np.float32))


def planted_item_linked(seed: int = 0) -> TransferData:
    """Items in 4 blocks of 10, linked by index. Source users each hold 6 items of one block. Target
    users each have ONE training item of their block (no co-occurrence in the target at all), and
    held-out items from the same block; half the target users favour block 0, so popularity is a
    real but weak baseline. Only the source's co-occurrences reveal the rest of a user's block."""
    rng = np.random.default_rng(seed)
    n_items, n_blocks, n_source, n_target = 40, 4, 400, 200
    block_of_item = np.arange(n_items) // 10
    source = np.zeros((n_source, n_items), bool)
    for_source = rng.integers(0, n_blocks, n_source)
    keys = rng.random((n_source, n_items)) + (block_of_item[None, :] != for_source[:, None])
    source[np.arange(n_source)[:, None], np.argsort(keys, axis=1)[:, :6]] = True
    for_target = np.where(rng.random(n_target) < 0.5, 0, rng.integers(1, n_blocks, n_target))
    keys = rng.random((n_target, n_items)) + (block_of_item[None, :] != for_target[:, None])
    order = np.argsort(keys, axis=1)
    parts = [np.zeros((n_target, n_items), bool) for _ in range(3)]
    for part, columns in zip(parts, (order[:, :1], order[:, 1:3], order[:, 3:5]), strict=True):
        part[np.arange(n_target)[:, None], columns] = True
    split = Split(*(_interactions(p) for p in parts), n_target, n_items, protocol="planted")
    links = Links(np.arange(n_items), np.arange(n_items))
    return TransferData(
        split, (SourceData("source", sp.csr_matrix(source, dtype=np.float32), item_links=links),)
    )


def test_ndcg(model: Recommender, data: TransferData, users: np.ndarray | None = None) -> float:
    test, exclude = data.split.matrix("test"), data.train + data.valid
    return evaluate_ranking(model.scorer(), test, exclude, metrics=["ndcg"], ks=[10], users=users).mean()[
        "ndcg@10"
    ]


test_ndcg.__test__ = False  # a helper, not a test


def test_item_linked_blend_beats_popularity_and_its_target_only_baseline():
    data = planted_item_linked()
    strategy = PopularityBlendTransfer(EASE(reg=10.0), domain_weight=1.0, popularity_weight=0.1)
    transferred = test_ndcg(strategy.fit(data), data)
    popularity = test_ndcg(TargetOnly(Popularity()).fit(data), data)
    target_only = test_ndcg(strategy.baseline().fit(data), data)
    assert transferred > 1.5 * popularity, (transferred, popularity)
    assert transferred > 1.5 * target_only, (transferred, target_only)
    assert isinstance(strategy.baseline().model, PopularityBlend)


def test_domain_weight_zero_is_the_target_only_blend():
    data = planted_item_linked(seed=1)
    strategy = PopularityBlendTransfer(EASE(reg=10.0), domain_weight=0.0, popularity_weight=0.5)
    users = np.arange(data.n_users)
    np.testing.assert_allclose(
        strategy.fit(data).score(users), strategy.baseline().fit(data).score(users), rtol=1e-6, atol=1e-6
    )


def test_users_without_history_get_popularity():
    train = sp.csr_matrix(np.array([[1, 1, 0, 0], [0, 0, 0, 0], [1, 0, 1, 0]], dtype=np.float32))
    for model in (PopularityBlend("ease", {"reg": 1.0}, 2.0), UserKNN(k=2, popularity_weight=2.0)):
        model.fit(train)
        np.testing.assert_allclose(model.score(np.array([1]))[0], 2.0 * np.log1p([2, 1, 1, 0]), rtol=1e-6)


def test_user_linked_blend_finds_the_cold_users_taste(synthetic):
    data, cold = synthetic
    strategy = PopularityBlendTransfer(UserKNN(k=20), domain_weight=3.0, popularity_weight=0.01)
    transferred = test_ndcg(strategy.fit(data), data, users=cold)
    popularity = test_ndcg(TargetOnly(Popularity()).fit(data), data, users=cold)
    target_only = test_ndcg(strategy.baseline().fit(data), data, users=cold)
    assert transferred > popularity + 0.2, (transferred, popularity)
    assert transferred > target_only + 0.2, (transferred, target_only)


def test_registered_and_offered_where_links_exist(synthetic):
    data, _ = synthetic
    assert STRATEGY_REGISTRY["popularity_blend"] is PopularityBlendTransfer
    built = make_strategy("popularity_blend", model=ItemKNN(k=5), domain_weight=0.5)
    assert isinstance(built, PopularityBlendTransfer) and built.domain_weight == 0.5
    assert "popularity_blend" in possible_strategies(data)
    assert built.clone().get_params()["domain_weight"] == 0.5


def test_bad_configurations_fail_before_training(synthetic):
    data, _ = synthetic
    with pytest.raises(TypeError, match="EASE, ItemKNN or UserKNN"):
        PopularityBlendTransfer(BPRMF(dim=4))
    with pytest.raises(TransferNotPossibleError, match="popularity_weight must be"):
        PopularityBlendTransfer(UserKNN(), popularity_weight=-1.0).fit(data)
    with pytest.raises(TransferNotPossibleError, match="domain_weight must be"):
        PopularityBlendTransfer(UserKNN(), domain_weight=float("nan")).fit(data)
    unlinked = TransferData(data.split, (SourceData("source", data.sources[0].interactions),))
    with pytest.raises(TransferNotPossibleError, match="source .source. shares nothing with the target"):
        PopularityBlendTransfer(UserKNN()).fit(unlinked)
    with pytest.raises(ValueError, match="item-item model"):
        PopularityBlend("bpr_mf").fit(data.train)
    with pytest.raises(ValueError, match="popularity_weight"):
        UserKNN(popularity_weight=-0.5).fit(data.train)


def test_ease_with_linked_users_beyond_max_columns_names_itemknn(synthetic):
    data, _ = synthetic
    with pytest.raises(TransferNotPossibleError, match="use ItemKNN"):
        PopularityBlendTransfer(EASE(max_columns=10)).fit(data)
