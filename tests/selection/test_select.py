"""The one selection loop: validation only, every trial recorded, subsets, confirmation, budget."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import scipy.sparse as sp

from crossrec.models import EASE, ItemKNN, Popularity
from crossrec.selection import (
    Candidate,
    Holdout,
    NoTrialSucceededError,
    compare,
    select,
    split_users,
)


def block_holdout(n_users: int = 60, n_items: int = 30, seed: int = 0) -> Holdout:
    """Two taste blocks: validation holds one unseen item of the user's own block."""
    rng = np.random.default_rng(seed)
    own = (np.arange(n_users) % 2)[:, None] == (np.arange(n_items) % 2)[None, :]
    train = own & (rng.random((n_users, n_items)) < 0.5)
    valid = np.zeros_like(train)
    for user in range(n_users):
        unseen = np.flatnonzero(own[user] & ~train[user])
        valid[user, rng.choice(unseen)] = True
    return Holdout(sp.csr_matrix(train.astype(np.float32)), sp.csr_matrix(valid.astype(np.float32)))


class Slow(Popularity):
    """Popularity that takes a while to fit."""

    name = "slow_popularity"

    def fit(self, train, valid=None):
        time.sleep(0.05)
        return super().fit(train, valid)


class Broken(Popularity):
    name = "broken"

    def fit(self, train, valid=None):
        raise ValueError("cannot fit this\nsecond line")


def test_select_keeps_the_best_on_validation_and_records_every_trial():
    data = block_holdout()
    candidates = [Popularity(), ItemKNN(k=10), EASE(reg=1.0)]
    chosen = select(candidates, data)
    scores = [t.score for t in chosen.trials]
    assert chosen.best_index == int(np.argmax(scores)) and chosen.score == max(scores)
    assert chosen.model is chosen.best.model and chosen.candidate is candidates[chosen.best_index]
    assert [t.name for t in chosen.trials] == ["popularity", "item_knn", "ease"]
    assert chosen.trials[1].params["k"] == 10 and all(t.seconds >= 0 for t in chosen.trials)
    assert chosen.seconds >= chosen.fit_seconds
    # the recorded score is the validation metric of that fitted model
    for trial, candidate in zip(chosen.trials, candidates, strict=True):
        fitted = candidate.clone().fit(data.train)
        assert trial.score == pytest.approx(data.per_user(fitted, "ndcg@10")[1].mean())
    assert all(not hasattr(c, "n_items_") for c in candidates)  # templates stay unfitted
    assert [t.model is None for t in chosen.trials] == [i != chosen.best_index for i in range(3)]
    json.dumps(chosen.to_dict())  # the trial table is JSON-ready


def test_ties_go_to_the_earliest_candidate():
    chosen = select([ItemKNN(k=10), ItemKNN(k=10)], block_holdout())
    assert chosen.best_index == 0


def test_selection_on_a_user_subset_scores_only_those_users():
    data = block_holdout()
    cold = np.arange(0, 60, 3)
    chosen = select([Popularity(), ItemKNN(k=10)], data, users=cold)
    np.testing.assert_array_equal(chosen.users, cold)
    assert len(chosen.best.values) == len(cold)
    assert chosen.score == pytest.approx(data.per_user(chosen.model, "ndcg@10", cold)[1].mean())
    with pytest.raises(ValueError, match="none of the chosen users"):
        select([Popularity()], data, users=np.array([], dtype=np.int64))


def test_a_confirmation_part_is_held_out_from_choosing():
    data = block_holdout()
    chosen = select([Popularity(), ItemKNN(k=10)], data, confirm=0.5, seed=3)
    assert len(chosen.users) == len(chosen.confirmation_users) == 30
    assert not np.intersect1d(chosen.users, chosen.confirmation_users).size
    np.testing.assert_array_equal(np.union1d(chosen.users, chosen.confirmation_users), np.arange(60))
    expected = data.per_user(chosen.model, "ndcg@10", chosen.confirmation_users)[1]
    np.testing.assert_allclose(chosen.confirmation_values, expected)
    assert chosen.confirmation_score == pytest.approx(expected.mean())
    same = select([Popularity(), ItemKNN(k=10)], data, confirm=0.5, seed=3)
    np.testing.assert_array_equal(same.confirmation_users, chosen.confirmation_users)
    with pytest.raises(ValueError, match="confirm must be in"):
        split_users(np.arange(10), 1.0)


def test_a_time_budget_stops_starting_trials():
    chosen = select([Slow() for _ in range(20)], block_holdout(), budget_seconds=0.12)
    assert chosen.budget_exhausted and 1 <= len(chosen.trials) < 20
    everything = select([Slow(), Slow()], block_holdout(), budget_seconds=60)
    assert not everything.budget_exhausted and len(everything.trials) == 2


def test_progress_callback_and_a_lazy_generator_see_each_trial_in_turn():
    seen: list[tuple[str, float]] = []
    produced: list[int] = []

    def proposals():
        for k in (2, 5, 10):
            assert len(seen) == len(produced)  # the previous trial was reported before the next one
            produced.append(k)
            yield Candidate(ItemKNN(k=k), name=f"trial {k}", params={"k": k})

    chosen = select(proposals(), block_holdout(), on_trial=lambda t: seen.append((t.name, t.score)))
    assert [name for name, _ in seen] == ["trial 2", "trial 5", "trial 10"]
    assert chosen.best.params == {"k": [2, 5, 10][chosen.best_index]}


def test_failures_are_recorded_only_for_the_errors_asked_for():
    data = block_holdout()
    chosen = select([Broken(), Popularity()], data, skip=(ValueError,))
    assert chosen.trials[0].status == "failed" and chosen.trials[0].reason == "cannot fit this"
    assert chosen.best_index == 1 and np.isnan(chosen.trials[0].score)
    with pytest.raises(NoTrialSucceededError, match="broken: cannot fit this") as error:
        select([Broken()], data, skip=(ValueError,))
    assert len(error.value.trials) == 1
    with pytest.raises(ValueError, match="cannot fit this"):
        select([Broken()], data)
    with pytest.raises(ValueError, match="no candidate"):
        select([], data)


def test_bad_settings_fail_before_fitting():
    data = block_holdout()
    with pytest.raises(ValueError, match="metric must look like"):
        select([Broken()], data, metric="ndcg")
    with pytest.raises(ValueError, match="budget_seconds"):
        select([Broken()], data, budget_seconds=0)
    empty = Holdout(data.train, sp.csr_matrix(data.valid.shape, dtype=np.float32))
    with pytest.raises(ValueError, match="validation part is empty"):
        select([Broken()], empty)


def test_compare_gives_the_paired_difference_and_interval():
    data = block_holdout()
    knn, popularity = ItemKNN(k=10).fit(data.train), Popularity().fit(data.train)
    comparison = compare(knn, popularity, data)
    assert comparison.difference == pytest.approx(comparison.score - comparison.reference_score)
    assert comparison.ci_low <= comparison.difference <= comparison.ci_high
    assert comparison.n_users == 60 and comparison.significant  # the block structure beats popularity
    half = compare(knn, popularity, data, users=np.arange(30))
    assert half.n_users == 30
