"""The conformance checks every recommender passes: a test class per model inherits
:class:`RecommenderConformance` and says how to build the model."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from crossrec.models.base import NotFittedError, Recommender


def checkerboard(n_users: int = 24, n_items: int = 24) -> tuple[sp.csr_matrix, np.ndarray]:
    """Users and items in two groups; each user has every item of her group but one (held out).

    Returns the training matrix and each user's held-out item. The right answer is exact: every
    user's best unseen item is in her own group.
    """
    users, items = np.meshgrid(np.arange(n_users), np.arange(n_items), indexing="ij")
    same = (users % 2) == (items % 2)
    held_out = np.arange(n_users) % n_items  # item u is in user u's group; each held out once
    same[np.arange(n_users), held_out] = False
    return sp.csr_matrix(same.astype(np.float32)), held_out


class RecommenderConformance:
    """Shared behaviour tests. Subclasses implement :meth:`make_model`."""

    #: Whether the model must solve the checkerboard (popularity cannot personalise).
    personalises = True
    #: Attribute overrides that make the determinism check cheap (e.g. fewer epochs).
    quick: dict = {}

    @classmethod
    def make_model(cls, seed: int = 0) -> Recommender:
        raise NotImplementedError

    @classmethod
    def fit(cls, model: Recommender, train: sp.csr_matrix) -> Recommender:
        return model.fit(train, None)

    @pytest.fixture(scope="class")
    @classmethod
    def board(cls):
        return checkerboard()

    @pytest.fixture(scope="class")
    @classmethod
    def fitted(cls, board):
        return cls.fit(cls.make_model(), board[0])

    def test_score_shape_and_dtype(self, fitted, board):
        scores = fitted.score(np.array([0, 3, 5]))
        assert scores.shape == (3, board[0].shape[1])
        assert scores.dtype == np.float32
        assert np.isfinite(scores).all()

    def test_unfitted_model_refuses_to_score(self):
        with pytest.raises(NotFittedError):
            self.make_model().score(np.array([0]))

    def test_save_load_gives_identical_scores(self, fitted, tmp_path):
        fitted.save(tmp_path / "model")
        loaded = Recommender.load(tmp_path / "model")
        assert type(loaded) is type(fitted)
        users = np.arange(fitted.n_users_)
        np.testing.assert_array_equal(loaded.score(users), fitted.score(users))

    def test_same_seed_same_model(self, board):
        def quick_model():
            model = self.make_model(seed=3)
            for key, value in self.quick.items():
                setattr(model, key, value)
            return model

        first = self.fit(quick_model(), board[0]).score(np.arange(4))
        second = self.fit(quick_model(), board[0]).score(np.arange(4))
        np.testing.assert_array_equal(first, second)

    def test_clone_is_unfitted_with_same_params(self, fitted):
        clone = fitted.clone()
        assert clone.get_params() == fitted.get_params()
        assert not hasattr(clone, "n_items_")

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
