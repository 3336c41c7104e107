"""Users with no target history: the cold-user split keeps them out of training, the source-profile
models recover a planted source -> target mapping for them, and bad inputs are refused clearly."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from crossrec.data.interactions import Interactions
from crossrec.evaluation.cold_users import evaluate_cold_users
from crossrec.metrics.significance import paired_bootstrap_ci
from crossrec.models import EASE, LinkedUserKNN, Popularity, ProfileKernelRidge, Recommender
from crossrec.models.inputs import FitInputs
from crossrec.splitting import UserColdSplit, user_cold_start_split
from crossrec.transfer import (
    Links,
    SourceData,
    SourceProfile,
    TargetOnly,
    TransferData,
    TransferNotPossibleError,
    possible_strategies,
    source_profiles,
)

N_GROUPS = 5


def planted_pair(n_users: int = 400, n_source: int = 60, n_target: int = 50, seed: int = 0):
    """Users in ``N_GROUPS`` taste groups. A user's source items come from her group's source block;
    her target items from the target block her group *maps to* (a fixed permutation), so only the
    source tells a cold user's target taste. Group 0 is three times as large as the others, so
    target popularity points every user at group 0's target block. Users are linked by index, except
    the last 20, who have no source profile."""
    rng = np.random.default_rng(seed)
    weights = np.array([3.0] + [1.0] * (N_GROUPS - 1))
    group = rng.choice(N_GROUPS, size=n_users, p=weights / weights.sum())
    mapping = np.array([2, 4, 1, 0, 3])
    source_block = np.arange(n_source) % N_GROUPS
    target_block = np.arange(n_target) % N_GROUPS
    source = (source_block[None, :] == group[:, None]) & (rng.random((n_users, n_source)) < 0.35)
    source |= rng.random((n_users, n_source)) < 0.02  # noise
    target = (target_block[None, :] == mapping[group][:, None]) & (rng.random((n_users, n_target)) < 0.4)
    target[np.arange(n_users), mapping[group] + N_GROUPS * rng.integers(0, n_target // N_GROUPS, n_users)] = (
        True
    )
    linked = np.arange(n_users - 20)
    users, items = np.nonzero(target)
    target_interactions = Interactions(users, items, np.ones(len(users), np.float32))
    links = Links(linked, linked)
    return target_interactions, sp.csr_matrix(source.astype(np.float32)), links, n_target, group, mapping


@pytest.fixture(scope="module")
def planted():
    interactions, source, links, n_target, group, mapping = planted_pair()
    n_users = source.shape[0]
    cold = user_cold_start_split(interactions, n_users, n_target, linked_users=links.target, seed=7)
    data = TransferData(cold.split, (SourceData("source", source, user_links=links),), seed=0)
    return data, cold, interactions


# -- the protocol ------------------------------------------------------------------------------------


def test_cold_users_have_no_target_training_and_groups_are_disjoint(planted):
    data, cold, interactions = planted
    train_users = np.unique(cold.split.train.user)
    assert len(np.intersect1d(cold.cold_users, train_users)) == 0
    assert len(np.intersect1d(cold.valid_users, cold.test_users)) == 0
    assert len(cold.valid_users) > 10 and len(cold.test_users) > 10
    # only linked users can be cold; the share is the requested one
    assert np.isin(cold.cold_users, data.sources[0].user_links.target).all()
    eligible = np.unique(interactions.user[interactions.user < 380])
    assert len(cold.cold_users) == round(0.2 * len(eligible))
    # every target interaction is in exactly one part; a cold user's go to her group's part only
    parts = [cold.split.train, cold.split.valid, cold.split.test, cold.cold_valid, cold.cold_test]
    keys = np.concatenate([p.user * 1000 + p.item for p in parts])
    assert len(keys) == len(np.unique(keys)) == len(np.unique(interactions.user * 1000 + interactions.item))
    assert np.isin(cold.cold_valid.user, cold.valid_users).all()
    assert np.isin(cold.cold_test.user, cold.test_users).all()
    assert cold.exclude("test").nnz == 0 and cold.exclude("valid").nnz == 0


def test_the_split_is_seeded(planted):
    _, cold, interactions = planted
    again = user_cold_start_split(interactions, 400, 50, linked_users=np.arange(380), seed=7)
    other = user_cold_start_split(interactions, 400, 50, linked_users=np.arange(380), seed=8)
    assert np.array_equal(again.test_users, cold.test_users)
    assert again.split.fingerprint() == cold.split.fingerprint()
    assert not np.array_equal(other.cold_users, cold.cold_users)


def test_interaction_holdout_puts_every_cold_user_in_both_parts(planted):
    _, _, interactions = planted
    cold = user_cold_start_split(
        interactions, 400, 50, linked_users=np.arange(380), holdout="interactions", seed=7
    )
    assert np.array_equal(cold.valid_users, cold.test_users)
    assert np.array_equal(np.unique(cold.cold_valid.user), cold.cold_users)
    assert np.array_equal(np.unique(cold.cold_test.user), cold.cold_users)
    n_valid = np.bincount(cold.cold_valid.user, minlength=400)[cold.cold_users]
    n_test = np.bincount(cold.cold_test.user, minlength=400)[cold.cold_users]
    assert np.abs(n_valid - n_test).max() <= 1
    assert (cold.exclude("test") != cold.truth("valid")).nnz == 0


def test_the_split_refuses_bad_arguments(planted):
    _, cold, interactions = planted
    with pytest.raises(ValueError, match="fraction must be in"):
        user_cold_start_split(interactions, 400, 50, linked_users=np.arange(380), fraction=1.0)
    with pytest.raises(ValueError, match="no linked user has at least"):
        user_cold_start_split(interactions, 400, 50, linked_users=np.array([], dtype=np.int64))
    with pytest.raises(ValueError, match="holdout must be"):
        user_cold_start_split(interactions, 400, 50, linked_users=np.arange(380), holdout="items")
    with pytest.raises(ValueError, match="have target training interactions"):
        UserColdSplit(
            cold.split, cold.cold_valid, cold.cold_test, np.unique(cold.split.train.user)[:3], cold.test_users
        )


# -- the strategy ------------------------------------------------------------------------------------


def test_cold_users_are_not_used_for_fitting(planted):
    data, cold, _ = planted
    model = SourceProfile(ProfileKernelRidge()).fit(data)
    assert len(np.intersect1d(model.warm_users_, cold.cold_users)) == 0
    has_train = np.diff(data.train.indptr) > 0
    has_profile = np.diff(source_profiles(data).indptr) > 0
    assert np.array_equal(model.warm_users_, np.flatnonzero(has_train & has_profile))


@pytest.mark.parametrize("model", [ProfileKernelRidge(lam=1.0), LinkedUserKNN(k=50)], ids=lambda m: m.name)
def test_the_planted_mapping_is_recovered_for_cold_users(planted, model: Recommender):
    data, cold, _ = planted
    fitted = SourceProfile(model).fit(data)
    popularity = TargetOnly(Popularity()).fit(data)
    ours = evaluate_cold_users(fitted, cold, "test").per_user["ndcg@10"].to_numpy()
    base = evaluate_cold_users(popularity, cold, "test").per_user["ndcg@10"].to_numpy()
    low, _ = paired_bootstrap_ci(ours, base, seed=0)
    assert ours.mean() > 0.6 and low > 0.2
    # the best item of a cold user lies in the target block her source group maps to
    _, _, _, _, group, mapping = planted_pair()
    users = cold.test_users
    best = fitted.score(users).argmax(axis=1)
    assert np.mean(best % N_GROUPS == mapping[group[users]]) > 0.9


def test_users_without_a_profile_get_popularity(planted):
    data, _, _ = planted
    model = SourceProfile(ProfileKernelRidge()).fit(data)
    unlinked = np.arange(380, 400)
    assert np.allclose(model.score(unlinked), np.asarray(data.train.sum(axis=0)).ravel()[None, :])


def test_kernel_ridge_survives_save_and_load(planted, tmp_path):
    data, cold, _ = planted
    model = SourceProfile(ProfileKernelRidge(lam=2.0, weighting="idf", popularity_exponent=0.1)).fit(data)
    loaded = Recommender.load(model.save(tmp_path / "krr"))
    users = cold.test_users[:10]
    assert isinstance(loaded, ProfileKernelRidge) and loaded.get_params() == model.get_params()
    np.testing.assert_allclose(loaded.score(users), model.score(users), rtol=1e-4, atol=1e-6)
    knn = SourceProfile(LinkedUserKNN(k=20)).fit(data)
    np.testing.assert_allclose(Recommender.load(knn.save(tmp_path / "knn")).score(users), knn.score(users))


def test_bad_inputs_are_refused_with_what_to_do(planted):
    data, _, _ = planted
    with pytest.raises(TransferNotPossibleError, match="kernel_ridge or linked_user_knn, not EASE"):
        SourceProfile(EASE()).fit(data)
    from dataclasses import replace

    unlinked = replace(data, sources=(replace(data.sources[0], user_links=None),))
    with pytest.raises(TransferNotPossibleError, match="source .source. shares nothing with the target"):
        SourceProfile().fit(unlinked)
    assert "source_profile" in possible_strategies(data) and "source_profile" not in possible_strategies(
        unlinked
    )
    with pytest.raises(ValueError, match="source_profile' transfer strategy"):
        ProfileKernelRidge().fit(data.train)
    with pytest.raises(ValueError, match="one profile row per target user"):
        ProfileKernelRidge().fit_with(data.train, None, FitInputs(extra_columns=source_profiles(data)[:5]))
    with pytest.raises(ValueError, match="lam must be positive"):
        SourceProfile(ProfileKernelRidge(lam=0.0)).fit(data)
    with pytest.raises(ValueError, match="weighting must be"):
        SourceProfile(LinkedUserKNN(weighting="tfidf")).fit(data)
    with pytest.raises(ValueError, match="does not take fit inputs"):
        ProfileKernelRidge().fit_with(data.train, None, FitInputs(extra_rows=data.train))
    model = SourceProfile(ProfileKernelRidge()).fit(data)
    with pytest.raises(ValueError, match="source items"):
        model.score_profiles(sp.csr_matrix((2, 3)))


# -- real data ---------------------------------------------------------------------------------------


def test_kernel_ridge_beats_the_user_knn_on_real_cold_validation_users(shared_data):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from _amazon import load_amazon_pair

    source, target, links = load_amazon_pair(shared_data / "amazon-disencdr", "phone", "electronic")
    cold = user_cold_start_split(
        target.interactions, target.n_users, target.n_items, linked_users=links.target, seed=2022
    )
    data = TransferData(
        cold.split,
        (SourceData("phone", source.interactions.to_csr(source.n_users, source.n_items), user_links=links),),
    )
    assert len(np.intersect1d(cold.cold_users, cold.split.train.user)) == 0
    scores = {}
    for name, model in (("krr", ProfileKernelRidge(lam=1.0)), ("knn", LinkedUserKNN(k=100))):
        fitted = SourceProfile(model).fit(data)
        scores[name] = evaluate_cold_users(fitted, cold, "valid", seed=2022).per_user["ndcg@10"].to_numpy()
    low, _ = paired_bootstrap_ci(scores["krr"], scores["knn"], seed=0)
    assert low > 0, f"kernel ridge {scores['krr'].mean():.4f} vs user-kNN {scores['knn'].mean():.4f}"


def test_an_experiment_file_names_the_strategy_and_its_model(tmp_path):
    from crossrec.experiment.config import load_experiment
    from crossrec.experiment.runner import build_strategy

    path = tmp_path / "cold.toml"
    path.write_text(
        'name = "cold"\n[data]\nbuiltin = "movielens-cdr"\n'
        '[model]\nname = "kernel_ridge"\nparams = { lam = 1.0, weighting = "idf" }\n'
        '[transfer]\nstrategy = "source_profile"\n'
    )
    strategy = build_strategy(load_experiment(path))
    assert isinstance(strategy, SourceProfile) and isinstance(strategy.model, ProfileKernelRidge)
    assert strategy.model.get_params() == {"lam": 1.0, "weighting": "idf", "popularity_exponent": 0.0}
