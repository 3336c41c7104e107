"""Transfer strategies: the source preference shows up in the target; real slices run end to end;
data that cannot support a strategy fails before training with the reason and the alternatives."""

from __future__ import annotations

import numpy as np
import pytest

from crossrec.models import BPRMF, EASE, ItemKNN, LightGCN, Popularity
from crossrec.transfer import (
    FineTune,
    Joint,
    Mapping,
    TargetOnly,
    TransferNotPossibleError,
    WarmStart,
    guarded_transfer,
    make_strategy,
    possible_strategies,
)


def quick_mf(**optim):
    base = dict(epochs=40, batch_size=256, learning_rate=0.02, patience=5, seed=0, progress=False)
    return BPRMF(dim=16, optim=base | optim)


def own_group_share(model, data, users) -> float:
    """Share of ``users`` whose best unseen item is in their own taste group (``u % 2``)."""
    scores = model.score(users)
    scores[data.train[users].toarray() > 0] = -np.inf
    return float(np.mean(scores.argmax(axis=1) % 2 == users % 2))


# -- the synthetic pair: the source reveals the taste of cold target users -------------------------


def test_target_only_misses_the_cold_users_taste(synthetic):
    data, cold = synthetic
    model = TargetOnly(ItemKNN(k=20, shrink=0.0)).fit(data)
    assert own_group_share(model, data, cold) < 0.2


@pytest.mark.parametrize(
    "strategy",
    [
        Joint(ItemKNN(k=20, shrink=0.0), domain_weight=1.0),
        Joint(EASE(reg=50.0), domain_weight=1.0),
        Mapping(quick_mf(), cold_threshold=1),
        Mapping(quick_mf(), bridge="meta", cold_threshold=1, hidden=16, epochs=30),
    ],
    ids=lambda s: s.label + (":" + s.bridge if hasattr(s, "bridge") else ""),
)
def test_source_preference_shows_up_in_target(synthetic, strategy):
    data, cold = synthetic
    model = strategy.fit(data)
    assert model.score(np.arange(3)).shape == (3, data.n_items)
    assert own_group_share(model, data, cold) >= 0.8


def test_warm_start_with_linked_users_beats_random_start_for_cold_users(synthetic):
    data, cold = synthetic
    transferred = WarmStart(quick_mf(), transferred_lr_scale=0.1).fit(data)
    assert own_group_share(transferred, data, cold) >= 0.7


def test_joint_embedding_model_returns_target_block(synthetic):
    data, cold = synthetic
    model = Joint(quick_mf(), domain_weight=1.0).fit(data)
    assert model.user_vectors().shape == (data.n_users, 16)
    assert model.item_vectors().shape == (data.n_items, 16)
    assert own_group_share(model, data, cold) >= 0.7


def test_multi_source_weights_are_used(synthetic):
    from dataclasses import replace

    data, cold = synthetic
    source = data.sources[0]
    ignored = replace(source, name="noise", weight=0.0)
    two = replace(data, sources=(source, ignored))
    single = Joint(ItemKNN(k=20, shrink=0.0), domain_weight=1.0).fit(data)
    double = Joint(ItemKNN(k=20, shrink=0.0), domain_weight=1.0).fit(two)
    np.testing.assert_allclose(double.score(cold), single.score(cold), rtol=1e-5)


# -- bad input ------------------------------------------------------------------------------------


def test_mapping_without_linked_users_fails_before_training(movielens_slice):
    with pytest.raises(TransferNotPossibleError, match="no source has users linked") as error:
        Mapping(quick_mf()).fit(movielens_slice)
    assert "joint" in str(error.value) and "warm_start" in str(error.value)


def test_vector_strategies_need_an_embedding_model(synthetic):
    data, _ = synthetic
    for strategy in (WarmStart(EASE()), FineTune(ItemKNN()), Mapping(Popularity())):
        assert strategy.check(data) is not None
        with pytest.raises(TransferNotPossibleError, match="embedding model|has none"):
            strategy.fit(data)


def test_no_links_no_transfer(synthetic):
    from dataclasses import replace

    data, _ = synthetic
    unlinked = replace(data, sources=(replace(data.sources[0], user_links=None),))
    assert possible_strategies(unlinked) == ["none"]
    with pytest.raises(TransferNotPossibleError, match="source .source. shares nothing with the target"):
        Joint(ItemKNN()).fit(unlinked)


def test_unknown_strategy_lists_known_ones():
    with pytest.raises(ValueError, match="known: .*joint"):
        make_strategy("telepathy")


# -- real slices ----------------------------------------------------------------------------------


@pytest.mark.realdata
def test_movielens_joint_ease_helps_on_validation(movielens_full):
    """On the demo's data, EASE trained jointly with ML-1M's rows beats EASE alone on validation,
    with the paired 95% interval above zero (and both beat popularity)."""
    data = movielens_full
    result = guarded_transfer(Joint(EASE(reg=300.0), domain_weight=0.1), data)
    assert result.difference > 0 and result.ci_low > 0, result.describe()
    popularity = data.per_user(TargetOnly(Popularity()).fit(data), "ndcg@10")[1].mean()
    assert result.baseline_score > popularity + 0.05


@pytest.mark.realdata
@pytest.mark.parametrize(
    "strategy",
    [
        WarmStart(quick_mf(epochs=2, batch_size=8192)),
        FineTune(quick_mf(epochs=2, batch_size=8192), freeze=("item",)),
        FineTune(quick_mf(epochs=2, batch_size=8192), head_only=True),
        Joint(quick_mf(epochs=2, batch_size=8192), domain_weight=0.3),
        WarmStart(LightGCN(dim=16, layers=1, optim={"epochs": 2, "batch_size": 8192, "progress": False})),
        Joint(ItemKNN(k=50), domain_weight=0.2),
    ],
    ids=lambda s: s.label,
)
def test_movielens_strategies_run(movielens_slice, strategy):
    model = strategy.fit(movielens_slice)
    scores = model.score(np.arange(5))
    assert scores.shape == (5, movielens_slice.n_items) and np.isfinite(scores).all()


@pytest.mark.realdata
@pytest.mark.parametrize("bridge", ["mlp", "meta"])
def test_amazon_mapping_runs_on_linked_users(amazon_slice, bridge):
    strategy = Mapping(
        quick_mf(epochs=3, batch_size=4096), bridge=bridge, cold_threshold=10, epochs=5, hidden=16
    )
    model = strategy.fit(amazon_slice)
    assert model.score(np.arange(4)).shape == (4, amazon_slice.n_items)
    assert len(model.mapped_users_) > 0


@pytest.mark.realdata
def test_amazon_joint_itemknn_uses_source_columns(amazon_slice):
    model = Joint(ItemKNN(k=50), domain_weight=0.5).fit(amazon_slice)
    assert model.user_items_.shape[1] > amazon_slice.n_items
    assert np.isfinite(model.score(np.arange(4))).all()


def test_warm_start_pretrain_params_update_the_optimiser_key_by_key() -> None:
    model = BPRMF(dim=8, optim={"epochs": 7, "learning_rate": 0.02, "progress": False})
    pretrain = WarmStart(model, pretrain_params={"optim": {"batch_size": 512}})._source_model()
    assert pretrain.optim.batch_size == 512
    assert (pretrain.optim.epochs, pretrain.optim.learning_rate) == (7, 0.02)  # kept from the model
    assert model.optim.batch_size != 512  # the target model's own settings are untouched
    with pytest.raises(ValueError, match="go under 'optim'"):
        WarmStart(model, pretrain_params={"batch_size": 512})
