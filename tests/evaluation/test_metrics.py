"""Accuracy metrics on hand-computed cases (RecBole definitions) and their properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crossrec.evaluation import accuracy_metrics, evaluate_ranking, parse_metric_names, rating_errors

ALL = ["recall", "precision", "ndcg", "hit", "mrr", "map"]

# user A: hits at ranks 1 and 3, 2 relevant items; user B: hit at rank 2 of 5 relevant (fewer
# relevant than... more than K); user C: no hit, 1 relevant.
HITS = np.array([[1, 0, 1], [0, 1, 0], [0, 0, 0]], dtype=bool)
N_RELEVANT = np.array([2, 5, 1])


def test_hand_computed_at_k3() -> None:
    values = accuracy_metrics(HITS, N_RELEVANT, ALL, [3])
    idcg_a = 1 + 1 / np.log2(3)
    idcg_b = 1 + 1 / np.log2(3) + 0.5
    expected = {
        "recall@3": [1.0, 0.2, 0.0],
        "precision@3": [2 / 3, 1 / 3, 0.0],
        "hit@3": [1.0, 1.0, 0.0],
        "mrr@3": [1.0, 0.5, 0.0],
        "ndcg@3": [1.5 / idcg_a, (1 / np.log2(3)) / idcg_b, 0.0],
        # RecBole MAP: sum of precision@i at hits / min(n_relevant, K)
        "map@3": [(1 + 2 / 3) / 2, 0.5 / 3, 0.0],
    }
    for name, want in expected.items():
        np.testing.assert_allclose(values[name], want, err_msg=name)


def test_hand_computed_at_k1_user_with_fewer_relevant_than_k() -> None:
    values = accuracy_metrics(HITS, N_RELEVANT, ALL, [1, 2])
    np.testing.assert_allclose(values["recall@1"], [0.5, 0.0, 0.0])
    np.testing.assert_allclose(values["ndcg@1"], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(values["map@1"], [1.0, 0.0, 0.0])
    # K=2 for user B: hit at rank 2, IDCG over min(5, 2) = 2 positions
    np.testing.assert_allclose(values["ndcg@2"][1], (1 / np.log2(3)) / (1 + 1 / np.log2(3)))
    np.testing.assert_allclose(values["map@2"][1], 0.5 / 2)
    np.testing.assert_allclose(values["mrr@1"], [1.0, 0.0, 0.0])


def test_end_to_end_ranking_matches_hand_computation() -> None:
    import scipy.sparse as sp

    # 1 user, 6 items; item 5 is a training item with the best score and must be skipped.
    scores = np.array([[0.9, 0.1, 0.8, 0.7, 0.2, 5.0]])
    truth = sp.csr_matrix(np.array([[1, 0, 0, 1, 0, 0]]))
    train = sp.csr_matrix(np.array([[0, 0, 0, 0, 0, 1]]))
    result = evaluate_ranking(lambda u: scores[u], truth, train, metrics=ALL, ks=[3])
    # list: 0 (hit), 2, 3 (hit)
    assert result.recommendations[0].tolist() == [0, 2, 3]
    row = result.per_user.iloc[0]
    assert row["recall@3"] == pytest.approx(1.0)
    assert row["map@3"] == pytest.approx((1 + 2 / 3) / 2)
    assert row["ndcg@3"] == pytest.approx(1.5 / (1 + 1 / np.log2(3)))


@pytest.mark.parametrize(
    ("names", "ks", "message"),
    [
        (["ndcg", "auc"], [10], "unknown metric"),
        (["ndcg"], [0], "positive integers"),
        (["ndcg"], [-5], "positive integers"),
        (["ndcg"], [], "positive integers"),
        ([], [10], "no metric"),
    ],
)
def test_bad_metric_requests_are_named(names, ks, message) -> None:
    with pytest.raises(ValueError, match=message):
        parse_metric_names(names, ks)


def test_metric_names_are_case_insensitive_and_deduplicated() -> None:
    assert parse_metric_names(["NDCG", "ndcg", "Recall"], [20, 10, 10]) == [
        ("ndcg", 10),
        ("ndcg", 20),
        ("recall", 10),
        ("recall", 20),
    ]


def test_rating_errors_overall_and_per_user() -> None:
    overall, per_user, users = rating_errors(
        np.array([4.0, 3.0, 5.0]), np.array([5.0, 3.0, 1.0]), np.array([2, 2, 0])
    )
    assert overall["rmse"] == pytest.approx(np.sqrt((1 + 0 + 16) / 3))
    assert overall["mae"] == pytest.approx(5 / 3)
    assert users.tolist() == [0, 2]
    np.testing.assert_allclose(per_user["mae"], [4.0, 0.5])
    np.testing.assert_allclose(per_user["rmse"], [4.0, np.sqrt(0.5)])


@st.composite
def hit_cases(draw):
    n_users = draw(st.integers(1, 8))
    width = draw(st.integers(1, 12))
    hits = np.array(
        draw(
            st.lists(
                st.lists(st.booleans(), min_size=width, max_size=width), min_size=n_users, max_size=n_users
            )
        )
    )
    # a user has at least as many relevant items as hits in its list
    n_relevant = hits.sum(axis=1) + np.array(
        draw(st.lists(st.integers(0, 5), min_size=n_users, max_size=n_users))
    )
    n_relevant = np.maximum(n_relevant, 1)
    return hits, n_relevant


@settings(max_examples=60, deadline=None)
@given(hit_cases())
def test_metrics_are_bounded_and_recall_grows_with_k(case) -> None:
    hits, n_relevant = case
    ks = list(range(1, hits.shape[1] + 1))
    values = accuracy_metrics(hits, n_relevant, ALL, ks)
    for array in values.values():
        assert np.all((array >= 0) & (array <= 1 + 1e-12))
    for name in ("recall", "hit"):
        stacked = np.stack([values[f"{name}@{k}"] for k in ks])
        assert np.all(np.diff(stacked, axis=0) >= -1e-12)
    perfect = np.ones_like(hits)
    enough = np.full(len(hits), hits.shape[1])
    for name in ("ndcg", "map", "precision", "recall"):
        np.testing.assert_allclose(
            accuracy_metrics(perfect, enough, [name], [hits.shape[1]])[f"{name}@{hits.shape[1]}"], 1.0
        )
