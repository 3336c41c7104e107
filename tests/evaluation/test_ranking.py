"""Full ranking: exclusion of seen items, exact top-k, sampled mode and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from crossrec.evaluation import evaluate_ranking, hit_matrix, top_k


def test_top_k_skips_excluded_items_and_pads_short_rows() -> None:
    scores = np.array([[0.1, 0.5, 0.3, 0.9], [0.4, 0.3, 0.2, 0.1]])
    exclude = sp.csr_matrix(np.array([[0, 0, 0, 1], [1, 1, 1, 0]]))
    assert top_k(scores, 3, exclude, seed=None)[0].tolist() == [[1, 2, 0], [3, -1, -1]]
    assert scores[0, 3] == 0.9  # input untouched


def test_training_and_validation_items_are_never_recommended() -> None:
    rng = np.random.default_rng(0)
    n_users, n_items = 40, 30
    train = sp.random(n_users, n_items, density=0.3, random_state=1, format="csr")
    train.data[:] = 1
    test = sp.csr_matrix((rng.random((n_users, n_items)) < 0.1) & (train.toarray() == 0), dtype=np.float32)
    # the scorer loves exactly the training items
    scores = train.toarray() * 10 + rng.random((n_users, n_items))
    result = evaluate_ranking(lambda u: scores[u], test, train, ks=[5], batch_size=7)
    recommended = result.recommendations
    seen = train.toarray()[result.per_user["user"].to_numpy()[:, None], np.maximum(recommended, 0)]
    assert not np.any(seen[recommended >= 0])
    assert np.array_equal(result.hits, hit_matrix(recommended, test[result.per_user["user"].to_numpy()]))


def test_batch_size_does_not_change_results() -> None:
    rng = np.random.default_rng(1)
    scores = rng.random((50, 80)).astype(np.float32)
    truth = sp.csr_matrix(rng.random((50, 80)) < 0.05)
    exclude = sp.csr_matrix(rng.random((50, 80)) < 0.2)
    a = evaluate_ranking(lambda u: scores[u], truth, exclude, ks=[5, 10], batch_size=3)
    b = evaluate_ranking(lambda u: torch.from_numpy(scores[u]), truth, exclude, ks=[5, 10], batch_size=1000)
    assert a.per_user.equals(b.per_user)
    assert a.mean()["ndcg@10"] == pytest.approx(b.mean()["ndcg@10"])


def test_scorer_returning_a_view_is_not_modified() -> None:
    scores = np.arange(20, dtype=np.float32).reshape(2, 10)
    original = scores.copy()
    truth = sp.csr_matrix(np.eye(2, 10))
    exclude = sp.csr_matrix(np.ones((2, 10)) - np.eye(2, 10))
    evaluate_ranking(lambda u: scores[0:2], truth, exclude, ks=[3])
    assert np.array_equal(scores, original)


def test_sampled_mode_ranks_among_sampled_negatives_only() -> None:
    n_users, n_items = 30, 500
    rng = np.random.default_rng(2)
    truth = sp.csr_matrix(
        (np.arange(n_items)[None, :] == rng.integers(0, n_items, n_users)[:, None]).astype(float)
    )
    scores = rng.random((n_users, n_items))
    full = evaluate_ranking(lambda u: scores[u], truth, None, metrics=["hit"], ks=[10])
    sampled = evaluate_ranking(
        lambda u: scores[u], truth, None, metrics=["hit"], ks=[10], sampled_negatives=20, seed=3
    )
    again = evaluate_ranking(
        lambda u: scores[u], truth, None, metrics=["hit"], ks=[10], sampled_negatives=20, seed=3
    )
    # 21 candidates instead of 500: random scores hit far more often, and the sample is seeded
    assert sampled.mean()["hit@10"] > full.mean()["hit@10"] + 0.2
    assert sampled.per_user.equals(again.per_user)
    candidates = {int(i) for row in sampled.recommendations for i in row if i >= 0}
    assert len(candidates) <= n_users * 21


def test_empty_test_set_is_an_error() -> None:
    truth = sp.csr_matrix((5, 8))
    with pytest.raises(ValueError, match="empty test set"):
        evaluate_ranking(lambda u: np.zeros((len(u), 8)), truth, None)


def test_wrong_scorer_shape_and_nan_are_errors() -> None:
    truth = sp.csr_matrix(np.eye(3, 8))
    with pytest.raises(ValueError, match="shape"):
        evaluate_ranking(lambda u: np.zeros((len(u), 7)), truth, None)
    with pytest.raises(ValueError, match="NaN"):
        evaluate_ranking(lambda u: np.full((len(u), 8), np.nan), truth, None, ks=[2])


def test_bad_k_and_metric_are_errors() -> None:
    truth = sp.csr_matrix(np.eye(3, 8))
    with pytest.raises(ValueError, match="positive"):
        evaluate_ranking(lambda u: np.zeros((len(u), 8)), truth, None, ks=[0])
    with pytest.raises(ValueError, match="unknown metric"):
        evaluate_ranking(lambda u: np.zeros((len(u), 8)), truth, None, metrics=["ndgc"])
