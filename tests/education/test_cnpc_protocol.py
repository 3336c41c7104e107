"""Next-items protocol on a slice of the real Canvas Network data (published split)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crossrec.data.interactions import Interactions
from crossrec.models.markov import TransitionRecommender
from crossrec.models.popularity import Popularity
from crossrec.models.sequences import Sequences, evaluate_next_items

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def cnpc(shared_data):
    folder = shared_data / "edu-canvas-cnpc"
    train = pd.read_json(folder / "train_valid_data_cnpc_v2.json", lines=True)
    test = pd.read_json(folder / "test_data_cnpc_v2.json", lines=True)
    return train, test


def _interactions(frame: pd.DataFrame) -> Interactions:
    return Interactions(frame["user"].to_numpy(), frame["item"].to_numpy(), np.ones(len(frame)))


def test_last_20_percent_in_file_order_is_the_published_test_file(cnpc) -> None:
    train, test = cnpc
    n_users, n_items = 6717, 238
    ordered = Sequences.from_interactions(_interactions(pd.concat([train, test])), n_users, n_items)
    head, tail = ordered.split_last(0.2)
    assert (tail.to_csr() != _interactions(test).to_csr(n_users, n_items)).nnz == 0
    assert (head.to_csr() != _interactions(train).to_csr(n_users, n_items)).nnz == 0


def test_transitions_beat_popularity_on_a_slice(cnpc) -> None:
    train, test = cnpc
    users = np.arange(1500)  # a slice of the learners, items kept whole
    train, test = train[train["user"].isin(users)], test[test["user"].isin(users)]
    ordered = Sequences.from_interactions(_interactions(pd.concat([train, test])), len(users), 238)
    history, future = ordered.split_last(0.2)
    markov = TransitionRecommender(history=2, horizon=2).fit_sequences(history)
    markov_result = evaluate_next_items(markov, history, future).mean()
    popularity = Popularity().fit(history.to_csr())
    from crossrec.evaluation import evaluate_ranking

    popularity_result = evaluate_ranking(
        popularity.score, future.to_csr(), history.to_csr(), metrics=["recall", "ndcg"], ks=[10]
    ).mean()
    assert markov_result["recall@10"] > popularity_result["recall@10"] + 0.2
    # excluding the history never lowers a metric here: no test course repeats a training course
    kept = evaluate_next_items(markov, history, future, exclude_history=False).mean()
    assert markov_result["recall@10"] >= kept["recall@10"]
