"""Sequence-aware models: a known transition is learned, save/load round-trips, encoder transfer."""

from __future__ import annotations

import numpy as np
import pytest

from crossrec.models.base import Recommender
from crossrec.models.inputs import EmbeddingInit, FitInputs
from crossrec.models.markov import TransitionRecommender
from crossrec.models.sasrec import SASRec
from crossrec.models.sequences import Sequences, evaluate_next_items
from crossrec.selection import SequenceHoldout, select
from crossrec.testing.models import SequentialConformance


def cycle_sequences(n_users: int = 120, n_items: int = 12, length: int = 8, seed: int = 0) -> Sequences:
    """Each user walks the cycle 0 -> 1 -> ... -> n_items-1 -> 0 from a random start."""
    starts = np.random.default_rng(seed).integers(0, n_items, n_users)
    return Sequences.from_lists([(start + np.arange(length)) % n_items for start in starts], n_items)


def test_first_order_markov_predicts_the_next_item_of_a_cycle() -> None:
    sequences = cycle_sequences()
    head, tail = sequences.split_last(n=1)
    model = TransitionRecommender(history=1, horizon=1).fit(head)
    top = model.score(np.arange(head.n_users)).argmax(axis=1)
    assert np.array_equal(top, tail.items)
    result = evaluate_next_items(model, head, tail)
    assert result.mean()["hit@10"] == 1.0


def test_longer_horizon_votes_for_later_items() -> None:
    model = TransitionRecommender(history=1, horizon=2, horizon_decay=0.5, popularity_weight=0.0)
    model.fit(Sequences.from_lists([[0, 1, 2]] * 3, n_items=4))
    scores = model.score_histories(np.array([[0]]))[0]
    assert scores[1] > scores[2] > 0 and scores[3] == 0


def test_markov_save_load_scores_identically(tmp_path) -> None:
    sequences = cycle_sequences()
    model = TransitionRecommender(history=2, horizon=2, preference_weight=0.1).fit(sequences)
    loaded = Recommender.load(model.save(tmp_path / "markov"))
    users = np.arange(10)
    np.testing.assert_allclose(loaded.score(users), model.score(users), rtol=1e-6)


def test_fit_refuses_an_unordered_csr_and_says_how_to_order() -> None:
    with pytest.raises(TypeError, match=r"no order.*Sequences\.from_interactions.*Sequences\.from_csr"):
        TransitionRecommender().fit(cycle_sequences().to_csr())
    with pytest.raises(TypeError, match="valid is a sparse matrix"):
        TransitionRecommender().fit(cycle_sequences(), cycle_sequences().to_csr())
    model = TransitionRecommender().fit(Sequences.from_csr(cycle_sequences().to_csr()))
    assert model.score(np.array([0, 1])).shape == (2, 12)


def test_selection_on_next_items_prefers_the_right_order() -> None:
    sequences = cycle_sequences()
    head, valid = sequences.split_last(n=1)
    candidates = [
        TransitionRecommender(history=1, horizon=2, horizon_decay=1.0),  # also votes two steps ahead
        TransitionRecommender(history=1, horizon=1),  # exactly the cycle's next step
        TransitionRecommender(history=3, horizon=1, decay=1.0, normalize="none"),
    ]
    chosen = select(candidates, SequenceHoldout(head, valid))
    assert len(chosen.trials) == 3 and chosen.best_index == 1 and chosen.model.horizon == 1
    assert chosen.score == 1.0 > chosen.trials[0].score  # the wrong horizon really scores lower
    assert all(trial.seconds >= 0 and trial.params["horizon"] for trial in chosen.trials)
    assert all(not hasattr(candidate, "n_items_") for candidate in candidates)  # templates stay unfitted


def tiny_sasrec(dim: int = 16, **optim) -> SASRec:
    settings = {
        "epochs": 30,
        "batch_size": 64,
        "learning_rate": 1e-2,
        "patience": 30,
        "seed": 0,
        "threads": 1,
    }
    return SASRec(dim=dim, n_layers=1, n_heads=1, max_length=6, dropout=0.0, optim=settings | optim)


def test_sasrec_learns_a_cycle_and_round_trips(tmp_path) -> None:
    sequences = cycle_sequences()
    head, tail = sequences.split_last(n=1)
    model = tiny_sasrec().fit(head, tail)
    assert model.best_score_ > 0.9
    loaded = Recommender.load(model.save(tmp_path / "sasrec"))
    np.testing.assert_allclose(loaded.score(np.arange(5)), model.score(np.arange(5)), rtol=1e-5, atol=1e-5)


def test_sasrec_encoder_transfers_to_a_platform_with_other_items() -> None:
    source = tiny_sasrec(epochs=5).fit(cycle_sequences(n_items=20))
    encoder = source.encoder_state()
    assert encoder and not any(key.startswith("item") for key in encoder)
    inputs = FitInputs(init=EmbeddingInit(state=encoder))
    target = tiny_sasrec(epochs=1).fit_with(cycle_sequences(n_items=7), None, inputs)
    assert target.score(np.array([0])).shape == (1, 7)
    with pytest.raises(ValueError, match="same dim"):
        tiny_sasrec(dim=8, epochs=1).fit_with(cycle_sequences(n_items=7), None, inputs)


def test_gru4rec_learns_a_cycle_and_transfers(tmp_path) -> None:
    from crossrec.models.gru4rec import GRU4Rec

    sequences = cycle_sequences()
    head, tail = sequences.split_last(n=1)
    model = GRU4Rec(
        dim=16,
        max_length=6,
        dropout=0.0,
        optim={"epochs": 30, "batch_size": 64, "learning_rate": 1e-2, "patience": 30, "threads": 1},
    )
    model.fit(head, tail)
    assert model.best_score_ > 0.9
    assert "n_heads" not in model.get_params()
    loaded = Recommender.load(model.save(tmp_path / "gru"))
    np.testing.assert_allclose(loaded.score(np.arange(5)), model.score(np.arange(5)), rtol=1e-5, atol=1e-5)
    encoder = model.encoder_state()
    assert encoder and all(key.startswith(("gru.", "norm.")) for key in encoder)
    target = GRU4Rec(dim=16, max_length=6, optim={"epochs": 1, "threads": 1}).fit_with(
        cycle_sequences(n_items=5), None, FitInputs(init=EmbeddingInit(state=encoder))
    )
    assert target.score(np.array([0])).shape == (1, 5)


class TestTransitionConformance(SequentialConformance):
    # the order-free preference term is what solves the checkerboard
    @classmethod
    def make_model(cls, seed: int = 0) -> Recommender:
        return TransitionRecommender(preference_weight=0.5)

    @classmethod
    def make_sequence_model(cls, seed: int = 0) -> Recommender:
        return TransitionRecommender(history=1, horizon=1)


def _sequence_optim(seed: int) -> dict:
    return {"epochs": 3, "seed": seed, "threads": 1}


class TestSASRecConformance(SequentialConformance):
    personalises = False  # the checkerboard's held-out item is never a "next" item of its row order

    @classmethod
    def make_model(cls, seed: int = 0) -> Recommender:
        return SASRec(dim=16, n_layers=1, n_heads=1, max_length=12, optim=_sequence_optim(seed))

    @classmethod
    def make_sequence_model(cls, seed: int = 0) -> Recommender:
        return tiny_sasrec()

    def test_sampled_negatives_and_pairwise_loss_are_refused(self) -> None:
        with pytest.raises(ValueError, match="negatives"):
            SASRec(optim={"negatives": 8})
        with pytest.raises(ValueError, match="full softmax"):
            SASRec(optim={"loss": "bpr"})


class TestGRU4RecConformance(SequentialConformance):
    personalises = False

    @classmethod
    def make_model(cls, seed: int = 0) -> Recommender:
        from crossrec.models.gru4rec import GRU4Rec

        return GRU4Rec(dim=16, max_length=12, optim=_sequence_optim(seed))

    @classmethod
    def make_sequence_model(cls, seed: int = 0) -> Recommender:
        from crossrec.models.gru4rec import GRU4Rec

        optim = {"epochs": 30, "batch_size": 64, "learning_rate": 1e-2, "patience": 30, "threads": 1}
        return GRU4Rec(dim=16, max_length=6, dropout=0.0, optim=optim)
