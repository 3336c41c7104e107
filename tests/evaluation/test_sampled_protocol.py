"""The papers' sampled protocol (each interaction against its own negatives, drawn with replacement,
untruncated MRR) and cold-user evaluation: hand-checkable cases, chance for a constant scorer even
when item ids correlate with the truth, and negatives that never hit a user's items."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from crossrec.data.interactions import Interactions
from crossrec.evaluation.cold_users import cold_user_forbidden, evaluate_cold_users
from crossrec.metrics.sampled import draw_negatives, sampled_interaction_metrics
from crossrec.splitting import user_cold_start_split


def _matrix(rows, cols, shape) -> sp.csr_matrix:
    return sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=shape)


def test_a_perfect_scorer_ranks_every_positive_first():
    truth = _matrix([0, 0, 1], [3, 7, 2], (2, 50))

    def scorer(users):
        return truth[users].toarray() * 10.0

    frame = sampled_interaction_metrics(scorer, truth, truth, n_negatives=20, seed=1)
    assert len(frame) == 3 and (frame["rank"] == 0).all()
    assert (
        np.allclose(frame["mrr"], 1.0) and np.allclose(frame["ndcg@10"], 1.0) and (frame["hit@10"] == 1).all()
    )


def test_rank_counts_negatives_scored_above_and_mrr_is_untruncated():
    n_items = 100
    truth = _matrix([0], [0], (1, n_items))

    def scorer(users):  # the positive (item 0) scores 0; every other item scores above it
        return np.arange(n_items, dtype=np.float32)[None, :].repeat(len(users), 0)

    frame = sampled_interaction_metrics(scorer, truth, truth, n_negatives=30, seed=0)
    assert frame["rank"].iloc[0] == 30
    assert frame["mrr"].iloc[0] == pytest.approx(1 / 31) and frame["ndcg@10"].iloc[0] == 0.0


def test_a_constant_scorer_lands_at_chance_even_when_ids_follow_the_truth():
    rng = np.random.default_rng(0)
    n_users, n_items = 400, 2000
    users = np.repeat(np.arange(n_users), 2)
    items = rng.integers(0, 5, len(users))  # relevant items are the lowest ids
    truth = _matrix(users, items, (n_users, n_items))
    truth.data[:] = 1.0

    def constant(batch):
        return np.zeros((len(batch), n_items), np.float32)

    frame = sampled_interaction_metrics(constant, truth, truth, n_negatives=99, seed=3)
    assert frame["hit@10"].mean() == pytest.approx(10 / 100, abs=0.03)
    assert frame["rank"].mean() == pytest.approx(49.5, abs=4)


def test_negatives_are_drawn_with_replacement_outside_the_forbidden_items():
    forbidden = _matrix([0] * 8, np.arange(8), (2, 10))
    rng = np.random.default_rng(0)
    negatives = draw_negatives(np.array([0, 0, 1]), forbidden, 500, rng)
    assert negatives.shape == (3, 500)
    assert set(np.unique(negatives[:2])) == {8, 9}  # repeats: only two items are allowed for user 0
    assert len(np.unique(negatives[2])) == 10
    with pytest.raises(ValueError, match="every item"):
        draw_negatives(np.array([0]), _matrix([0] * 10, np.arange(10), (1, 10)), 5, rng)


def test_cold_user_evaluation_puts_a_constant_scorer_at_chance_on_id_ordered_data():
    # every user's items are low ids, numbered by first appearance: ranking by id would look good
    rng = np.random.default_rng(1)
    n_users, n_items = 300, 400
    users = np.repeat(np.arange(n_users), 4)
    items = rng.integers(0, 20, len(users))
    interactions = Interactions(users, items, np.ones(len(users), np.float32))
    cold = user_cold_start_split(interactions, n_users, n_items, linked_users=np.arange(n_users), seed=0)
    truth = cold.truth("test")

    def constant(batch):
        return np.zeros((len(batch), n_items), np.float32)

    result = evaluate_cold_users(constant, cold, "test", sampled_negatives=99, seed=5)
    # chance is 10 / n_items = 0.025; ties broken toward low ids would give about 0.5
    assert result.mean()["recall@10"] == pytest.approx(10 / n_items, abs=0.02)
    assert result.mean()["sampled_hit@10"] == pytest.approx(0.1, abs=0.04)
    # the sampled negatives never include anything the user interacted with, in any part
    forbidden = cold_user_forbidden(cold)
    assert forbidden.shape == truth.shape and (forbidden.multiply(truth) != truth).nnz == 0
    assert set(result.sampled["user"]) == set(cold.test_users)
