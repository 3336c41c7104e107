"""Beyond-accuracy metrics and slices on tiny hand-made cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crossrec.evaluation import (
    activity_buckets,
    average_popularity,
    catalog_coverage,
    gini_index,
    head_items,
    intra_list_diversity_categories,
    intra_list_diversity_embeddings,
    long_tail_share,
    novelty,
    slice_table,
)

RECS = np.array([[0, 1, 2], [0, 3, -1], [1, 1, 1]])


def test_coverage_and_gini() -> None:
    assert catalog_coverage(RECS, 5, 3) == pytest.approx(4 / 5)
    assert catalog_coverage(RECS, 5, 1) == pytest.approx(2 / 5)
    assert gini_index(np.array([[0], [1], [2], [3]]), 4, 1) == pytest.approx(0.0)
    # one item takes all exposure among 4: counts sorted [0, 0, 0, 2] -> (2*4 - 5) * 2 / (4 * 2)
    assert gini_index(np.array([[0], [0]]), 4, 1) == pytest.approx(0.75)


def test_diversity_by_category_and_embedding() -> None:
    categories = np.array([5, 5, 7, 9])
    np.testing.assert_allclose(intra_list_diversity_categories(RECS, categories, 3), [2 / 3, 1.0, 0.0])
    embeddings = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    # pairs (0,1): distance 0, (0,2) and (1,2): 1 -> 2/3; items 0 and 3 are opposite -> 2
    np.testing.assert_allclose(intra_list_diversity_embeddings(RECS, embeddings, 3), [2 / 3, 2.0, 0.0])
    np.testing.assert_allclose(intra_list_diversity_categories(RECS, categories, 1), [0.0, 0.0, 0.0])


def test_popularity_novelty_and_long_tail() -> None:
    popularity = np.array([10, 6, 2, 0, 1])
    np.testing.assert_allclose(average_popularity(RECS, popularity, 3), [6.0, 5.0, 6.0])
    expected = -np.log2((np.array([10, 0]) + 1) / 21).mean()
    assert novelty(RECS, popularity, 20, 3)[1] == pytest.approx(expected)
    head = head_items(popularity, head_fraction=0.4)
    assert head.tolist() == [True, True, False, False, False]
    np.testing.assert_allclose(long_tail_share(RECS, head, 3), [1 / 3, 0.5, 0.0])
    with pytest.raises(ValueError, match="head_fraction"):
        head_items(popularity, 1.5)


def test_activity_buckets_and_slice_table() -> None:
    labels = activity_buckets(np.array([0, 1, 2, 3, 5, 10, 11, 60]))
    assert labels.tolist() == ["0", "1", "2-3", "2-3", "4-5", "6-10", "11-20", "51+"]
    per_user = pd.DataFrame({"user": [0, 1, 2, 3], "ndcg@10": [0.0, 1.0, 0.5, 0.5]})
    table = slice_table(
        per_user,
        {"activity": np.array(["6-10", "1", "1", "6-10"]), "linked": np.array(["linked", "not linked"] * 2)},
    )
    assert table["group"].tolist() == ["1", "6-10", "linked", "not linked"]
    assert table["n_users"].tolist() == [2, 2, 2, 2]
    assert table["ndcg@10"].tolist() == [0.75, 0.25, 0.25, 0.75]
    with pytest.raises(ValueError, match="labels"):
        slice_table(per_user, {"x": np.array(["a"])})


def test_recbole_tail_percentage_by_hand() -> None:
    from crossrec.metrics import recbole_tail_items, tail_percentage

    # 12 items; item 11 never seen in training. Seen items sorted by count (ties by index):
    # 3 (1), 7 (1), 0 (2), ... -> tail_ratio 0.2 of 11 seen items = int(2.2) = 2 items: {3, 7}
    popularity = np.array([2, 5, 9, 1, 4, 6, 8, 1, 3, 7, 10, 0])
    tail = recbole_tail_items(popularity, 0.2)
    assert np.flatnonzero(tail).tolist() == [3, 7]
    assert not tail[11]  # unseen items are not tail items, as in RecBole
    assert np.flatnonzero(recbole_tail_items(popularity, 2)).tolist() == [0, 3, 7]  # counts <= 2
    lists = np.array([[3, 7, 1, 2], [1, 2, 4, -1], [7, -1, -1, -1]])
    assert tail_percentage(lists, tail, 4).tolist() == [0.5, 0.0, 0.25]  # divided by K, empty slots too
    assert tail_percentage(lists, tail, 2).tolist() == [1.0, 0.0, 0.5]
