"""Split protocols: invariants, seed reproducibility, saving, and errors."""

from __future__ import annotations

import numpy as np
import pytest

from crossrec.data.interactions import Interactions
from crossrec.evaluation import (
    Split,
    cold_start_split,
    leave_one_out_split,
    predefined_split,
    random_split,
    temporal_split,
)
from tests.conftest import make_domain


@pytest.fixture(scope="module")
def domain():
    return make_domain(n_users=80, n_items=50, density=0.2, seed=11)


def _pairs(part: Interactions) -> set[tuple[int, int, int]]:
    return set(zip(part.user.tolist(), part.item.tolist(), part.timestamp.tolist(), strict=True))


def _check_partition(split: Split, interactions: Interactions) -> None:
    parts = [_pairs(split.train), _pairs(split.valid), _pairs(split.test)]
    assert sum(len(p) for p in parts) == len(interactions)
    assert set().union(*parts) == _pairs(interactions)
    assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])


def test_random_split_ratios_partition_and_seed(domain) -> None:
    inter = domain.interactions
    split = random_split(inter, domain.n_users, domain.n_items, seed=5)
    _check_partition(split, inter)
    counts = inter.n_per_user(domain.n_users)
    big = counts >= 20
    test_counts = split.test.n_per_user(domain.n_users)
    assert np.all(test_counts[big] == np.floor(0.1 * counts[big]))
    assert np.all(split.train.n_per_user(domain.n_users)[counts > 0] >= 1)
    assert split.fingerprint() == random_split(inter, domain.n_users, domain.n_items, seed=5).fingerprint()
    assert split.fingerprint() != random_split(inter, domain.n_users, domain.n_items, seed=6).fingerprint()


def test_leave_one_out_by_time_holds_out_the_latest(domain) -> None:
    inter = domain.interactions
    split = leave_one_out_split(inter, domain.n_users, domain.n_items)
    _check_partition(split, inter)
    counts = inter.n_per_user(domain.n_users)
    assert np.all(split.test.n_per_user(domain.n_users) == (counts >= 2))
    assert np.all(split.valid.n_per_user(domain.n_users) == (counts >= 3))
    last_train = np.full(domain.n_users, -1)
    np.maximum.at(last_train, split.train.user, split.train.timestamp)
    assert np.all(split.test.timestamp > last_train[split.test.user])
    assert np.all(split.valid.timestamp > last_train[split.valid.user])
    random_a = leave_one_out_split(inter, domain.n_users, domain.n_items, by_time=False, seed=1)
    random_b = leave_one_out_split(inter, domain.n_users, domain.n_items, by_time=False, seed=1)
    assert random_a.fingerprint() == random_b.fingerprint()
    assert random_a.fingerprint() != split.fingerprint()


def test_temporal_split_respects_time_and_errors_on_users_without_training(domain) -> None:
    base = domain.interactions
    rng = np.random.default_rng(0)
    inter = Interactions(base.user, base.item, base.value, rng.integers(0, 10_000, len(base)))
    split = temporal_split(inter, domain.n_users, domain.n_items, drop_users_without_train=True)
    assert split.train.timestamp.max() < split.valid.timestamp.min()
    assert split.valid.timestamp.max() < split.test.timestamp.min()
    assert len(split.train) == pytest.approx(0.8 * len(inter), abs=5)
    newcomer = Interactions(
        np.concatenate([inter.user, [domain.n_users]]),
        np.concatenate([inter.item, [0]]),
        np.concatenate([inter.value, [1.0]]),
        np.concatenate([inter.timestamp, [inter.timestamp.max() + 10]]),
    )
    with pytest.raises(ValueError, match="no training data"):
        temporal_split(newcomer, domain.n_users + 1, domain.n_items)
    kept = temporal_split(newcomer, domain.n_users + 1, domain.n_items, drop_users_without_train=True)
    assert domain.n_users not in set(kept.test.user.tolist())
    assert kept.params["dropped_interactions"] >= 1


def test_cold_start_keeps_exactly_n_training_interactions(domain) -> None:
    inter = domain.interactions
    for n_train in (1, 3, 5):
        split = cold_start_split(
            inter, domain.n_users, domain.n_items, n_train=n_train, fraction=0.25, seed=4
        )
        _check_partition(split, inter)
        cold = np.union1d(split.valid.user, split.test.user)
        assert (
            len(cold)
            == split.params["n_cold_users"]
            == round(0.25 * np.sum(inter.n_per_user(domain.n_users) > n_train))
        )
        assert np.all(split.train.n_per_user(domain.n_users)[cold] == n_train)
        assert not np.intersect1d(split.valid.user, split.test.user).size
        # kept interactions are the earliest of each cold user
        first_held = np.full(domain.n_users, np.iinfo(np.int64).max)
        held = Interactions.concat([split.valid, split.test])
        np.minimum.at(first_held, held.user, held.timestamp)
        train_cold = np.isin(split.train.user, cold)
        assert np.all(split.train.timestamp[train_cold] < first_held[split.train.user[train_cold]])
    again = cold_start_split(inter, domain.n_users, domain.n_items, n_train=3, fraction=0.25, seed=4)
    assert (
        again.fingerprint()
        == cold_start_split(
            inter, domain.n_users, domain.n_items, n_train=3, fraction=0.25, seed=4
        ).fingerprint()
    )


def test_cold_start_candidates_and_bad_arguments(domain) -> None:
    inter = domain.interactions
    pool = np.arange(10)
    split = cold_start_split(inter, domain.n_users, domain.n_items, n_train=1, fraction=1.0, candidates=pool)
    assert set(np.union1d(split.valid.user, split.test.user).tolist()) <= set(pool.tolist())
    with pytest.raises(ValueError, match="n_train"):
        cold_start_split(inter, domain.n_users, domain.n_items, n_train=0)
    with pytest.raises(ValueError, match="no candidate user"):
        cold_start_split(inter, domain.n_users, domain.n_items, n_train=10_000)


def test_predefined_split_rejects_user_without_training_data() -> None:
    train = Interactions(np.array([0, 1]), np.array([0, 1]), np.ones(2))
    test = Interactions(np.array([0, 2]), np.array([1, 0]), np.ones(2))
    with pytest.raises(ValueError, match=r"1 user\(s\) with test interactions but no training data"):
        predefined_split(train, Interactions.empty(), test, 3, 2)
    with pytest.raises(ValueError, match="item index"):
        predefined_split(
            train, Interactions.empty(), Interactions(np.array([0]), np.array([5]), np.ones(1)), 3, 2
        )


def test_empty_input_and_bad_ratios_are_errors(domain) -> None:
    with pytest.raises(ValueError, match="empty"):
        random_split(Interactions.empty(), 3, 3)
    with pytest.raises(ValueError, match="ratios"):
        random_split(domain.interactions, domain.n_users, domain.n_items, ratios=(0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="timestamp"):
        temporal_split(Interactions(np.array([0]), np.array([0]), np.ones(1)), 1, 1)


def test_save_and_load_round_trip(tmp_path, domain) -> None:
    split = cold_start_split(domain.interactions, domain.n_users, domain.n_items, n_train=3, seed=9)
    split.save(tmp_path / "split")
    loaded = Split.load(tmp_path / "split")
    assert loaded.fingerprint() == split.fingerprint()
    assert loaded.protocol == "cold_start_3" and loaded.params["n_train"] == 3
    np.testing.assert_array_equal(loaded.test.timestamp, split.test.timestamp)
