"""Conformance checks every recommender passes, shipped so that you can check your own models.

A test class per model inherits :class:`RecommenderConformance` (or :class:`SequentialConformance` for
models that learn from order) and says how to build the model::

    from crossrec.testing.models import RecommenderConformance

    class TestMyModel(RecommenderConformance):
        @classmethod
        def make_model(cls, seed: int = 0):
            return MyModel(factors=8, optim={"seed": seed, "progress": False})

pytest then runs every check below on it: scores, the exact answer of the :func:`checkerboard`,
``recommend`` and ``similar_items`` against the scores, save/load, seeded determinism, ``clone`` and
refusals (unfitted models, fit inputs the model does not take, unordered data for sequence models).
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any, ClassVar

import numpy as np
import pytest
import scipy.sparse as sp

from crossrec.models.base import CapabilityError, NotFittedError, Recommender
from crossrec.models.inputs import FitInputs
from crossrec.models.sequences import Sequences

__all__ = [
    "RecommenderConformance",
    "SequentialConformance",
    "checkerboard",
    "cycle_sequences",
    "with_params",
]


def checkerboard(n_users: int = 24, n_items: int = 24) -> tuple[sp.csr_matrix, np.ndarray]:
    """Users and items in two groups; each user has every item of her group but one (held out).

    Returns the training matrix and each user's held-out item. The right answer is exact: every
    user's best unseen item is in her own group, and it is the held-out one.
    """
    users, items = np.meshgrid(np.arange(n_users), np.arange(n_items), indexing="ij")
    same = (users % 2) == (items % 2)
    held_out = np.arange(n_users) % n_items  # item u is in user u's group; each held out once
    same[np.arange(n_users), held_out] = False
    return sp.csr_matrix(same.astype(np.float32)), held_out


def cycle_sequences(n_users: int = 36, n_items: int = 12, length: int = 8) -> Sequences:
    """User ``u`` takes items ``u, u+1, ...`` (mod ``n_items``) for ``length < n_items`` steps: after any
    history the next item is exact (the one after the last) and not yet seen."""
    if length >= n_items:
        raise ValueError(f"length ({length}) must be below n_items ({n_items}) so the next item is unseen")
    steps = (np.arange(n_users)[:, None] + np.arange(length)[None, :]) % n_items
    return Sequences.from_lists(list(steps), n_items)


def with_params(model: Recommender, **overrides: Any) -> Recommender:
    """An unfitted copy of ``model`` with constructor overrides; dicts merge into dict parameters
    (``with_params(model, optim={"epochs": 3})`` changes only the epochs)."""
    params = model.get_params()
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(params.get(key), dict):
            value = {**params[key], **value}
        params[key] = value
    return type(model)(**params)


class RecommenderConformance:
    """Shared behaviour tests. Subclasses implement :meth:`make_model`."""

    #: Whether the model must solve the checkerboard (popularity cannot personalise).
    personalises: ClassVar[bool] = True
    #: Constructor overrides that make the determinism check cheap (e.g. ``{"optim": {"epochs": 3}}``).
    quick: ClassVar[dict[str, Any]] = {}

    @classmethod
    def make_model(cls, seed: int = 0) -> Recommender:
        raise NotImplementedError

    @classmethod
    def training_data(cls, train: sp.csr_matrix) -> Any:
        """What the model's ``fit`` takes, built from a training matrix."""
        return train

    @classmethod
    def fit(cls, model: Recommender, train: sp.csr_matrix) -> Recommender:
        return model.fit(cls.training_data(train), None)

    @pytest.fixture(scope="class")
    @classmethod
    def board(cls) -> tuple[sp.csr_matrix, np.ndarray]:
        return checkerboard()

    @pytest.fixture(scope="class")
    @classmethod
    def fitted(cls, board) -> Recommender:
        return cls.fit(cls.make_model(), board[0])

    # -- scores --------------------------------------------------------------------------------
    def test_fit_returns_the_model(self, board):
        model = self.make_model()
        assert self.fit(model, board[0]) is model

    def test_score_shape_and_dtype(self, fitted, board):
        scores = fitted.score(np.array([0, 3, 5]))
        assert scores.shape == (3, board[0].shape[1])
        assert scores.dtype == np.float32
        assert np.isfinite(scores).all()

    def test_unfitted_model_refuses_to_score(self):
        model = self.make_model()
        with pytest.raises(NotFittedError):
            model.score(np.array([0]))
        with pytest.raises(NotFittedError):
            model.recommend(np.array([0]), k=3)

    def test_checkerboard_exact_answer(self, fitted, board):
        if not self.personalises:
            pytest.skip("model does not personalise")
        train, held_out = board
        scores = fitted.score(np.arange(train.shape[0]))
        scores[train.toarray() > 0] = -np.inf
        best = scores.argmax(axis=1)
        assert np.array_equal(best % 2, np.arange(train.shape[0]) % 2), (
            "best unseen item not in the user's group"
        )
        assert np.array_equal(best, held_out), "the held-out item is the only unseen item of the user's group"

    # -- recommend -----------------------------------------------------------------------------
    def test_recommend_ranks_the_scores_and_never_returns_excluded_items(self, fitted, board):
        train = board[0]
        users = np.array([0, 1, 7, 10])
        items, scores = fitted.recommend(users, k=5, exclude=train[users])
        assert items.shape == scores.shape == (4, 5)
        assert items.dtype == np.int64 and scores.dtype == np.float32
        assert not (train[users].toarray()[np.arange(4)[:, None], items] > 0).any(), "an excluded item"
        assert (np.diff(scores, axis=1) <= 0).all(), "lists are not best first"
        dense = fitted.score(users).astype(np.float64)
        dense[train[users].toarray() > 0] = -np.inf
        expected = -np.sort(-dense, axis=1)[:, :5]
        np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(np.take_along_axis(dense, items, axis=1), scores, rtol=1e-5, atol=1e-5)

    def test_recommend_pads_short_lists(self, fitted, board):
        train = board[0]
        n_items = train.shape[1]
        items, scores = fitted.recommend(np.array([2]), k=n_items + 3, exclude=train[[2]])
        admissible = n_items - train[2].nnz
        assert (items[0, :admissible] >= 0).all() and (items[0, admissible:] == -1).all()
        assert np.isneginf(scores[0, admissible:]).all()
        assert len(set(items[0, :admissible])) == admissible

    def test_recommend_one_user_gives_flat_arrays(self, fitted):
        items, scores = fitted.recommend(3, k=4)
        assert items.shape == scores.shape == (4,)
        np.testing.assert_array_equal(items, fitted.recommend(np.array([3]), k=4)[0][0])
        with pytest.raises(IndexError):
            fitted.recommend(np.array([fitted.n_users_]), k=4)

    def test_recommend_solves_the_checkerboard(self, fitted, board):
        if not self.personalises:
            pytest.skip("model does not personalise")
        train, held_out = board
        users = np.arange(train.shape[0])
        items, _ = fitted.recommend(users, k=1, exclude=train)
        np.testing.assert_array_equal(items[:, 0], held_out)

    # -- similar items -------------------------------------------------------------------------
    def test_similar_items(self, fitted, board):
        queries = np.array([0, 1, 6])
        vectors = fitted.item_vectors()
        if vectors is None and not hasattr(fitted, "item_similarities"):
            with pytest.raises(CapabilityError):
                fitted.similar_items(queries, k=3)
            return
        items, scores = fitted.similar_items(queries, k=4)
        assert items.shape == scores.shape == (3, 4)
        assert not (items == queries[:, None]).any(), "an item is listed as similar to itself"
        assert (np.diff(scores, axis=1) <= 1e-6).all()
        if vectors is not None:
            unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
            full = unit[queries] @ unit.T
        else:
            rows = fitted.item_similarities()[queries]
            full = np.asarray(rows.toarray() if sp.issparse(rows) else rows, dtype=np.float64)
        full[np.arange(3), queries] = -np.inf
        np.testing.assert_allclose(scores, -np.sort(-full, axis=1)[:, :4], rtol=1e-4, atol=1e-5)
        if self.personalises:
            top = fitted.similar_items(queries, k=3)[0]
            assert (top % 2 == (queries % 2)[:, None]).all(), "similar items should share the item's group"

    # -- configuration and persistence ---------------------------------------------------------
    def test_save_load_gives_identical_scores(self, fitted, tmp_path):
        fitted.save(tmp_path / "model")
        loaded = Recommender.load(tmp_path / "model")
        assert type(loaded) is type(fitted)
        users = np.arange(fitted.n_users_)
        np.testing.assert_array_equal(loaded.score(users), fitted.score(users))
        np.testing.assert_array_equal(loaded.recommend(users, k=5)[0], fitted.recommend(users, k=5)[0])

    def test_same_seed_same_model(self, board):
        def quick_model() -> Recommender:
            return with_params(self.make_model(seed=3), **self.quick)

        first = self.fit(quick_model(), board[0]).score(np.arange(4))
        second = self.fit(quick_model(), board[0]).score(np.arange(4))
        np.testing.assert_array_equal(first, second)

    def test_clone_is_unfitted_with_same_params(self, fitted):
        clone = fitted.clone()
        assert clone.get_params() == fitted.get_params()
        assert not hasattr(clone, "n_items_")

    def test_fit_with_refuses_inputs_the_model_does_not_take(self, board):
        model = self.make_model()
        other = sorted({f.name for f in fields(FitInputs)} - model.fit_inputs - {"label", "resume"})
        assert other, "a model that takes every fit input needs its own refusal test"
        with pytest.raises(ValueError, match=other[0]):
            model.fit_with(self.training_data(board[0]), None, FitInputs(**{other[0]: np.ones(1)}))


class SequentialConformance(RecommenderConformance):
    """The checks of :class:`RecommenderConformance` through the ordered fit, plus order itself: the
    model refuses an unordered CSR matrix and predicts the exact next item of :func:`cycle_sequences`."""

    #: Share of users whose top item after their history must be the exact next one.
    next_item_accuracy: ClassVar[float] = 1.0

    @classmethod
    def training_data(cls, train: sp.csr_matrix) -> Sequences:
        return Sequences.from_csr(train)  # the checkerboard's column order taken as time order

    @classmethod
    def make_sequence_model(cls, seed: int = 0) -> Recommender:
        """The model trained on :func:`cycle_sequences` (default: :meth:`make_model`)."""
        return cls.make_model(seed)

    def test_refuses_an_unordered_csr(self, board):
        with pytest.raises(TypeError, match=r"Sequences\.from_interactions"):
            self.make_model().fit(board[0], None)

    def test_next_item_exact_answer(self):
        sequences = cycle_sequences()
        head, tail = sequences.split_last(n=1)
        model = self.make_sequence_model().fit(head, tail)
        items, _ = model.recommend(np.arange(head.n_users), k=1, exclude=head.to_csr())
        accuracy = float(np.mean(items[:, 0] == tail.items))
        assert accuracy >= self.next_item_accuracy, f"next item right for {accuracy:.0%} of users"
