"""Every model passes the conformance checks; model-specific behaviour below."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from crossrec.models import BPRMF, EASE, ItemKNN, LightGCN, Popularity, normalized_adjacency
from tests.models.conformance import RecommenderConformance, checkerboard


class TestPopularity(RecommenderConformance):
    personalises = False

    @classmethod
    def make_model(cls, seed: int = 0):
        return Popularity()

    def test_counts_are_exact(self, board):
        model = self.fit(self.make_model(), board[0])
        np.testing.assert_array_equal(model.score(np.array([0]))[0], np.asarray(board[0].sum(axis=0)).ravel())


class TestEASE(RecommenderConformance):
    @classmethod
    def make_model(cls, seed: int = 0):
        return EASE(reg=1.0)

    def test_matches_closed_form(self):
        train, _ = checkerboard(8, 8)
        model = EASE(reg=2.0).fit(train)
        gram = (train.T @ train).toarray() + 2.0 * np.eye(8)
        precision = np.linalg.inv(gram)
        expected = -precision / np.diag(precision)
        np.fill_diagonal(expected, 0)
        np.testing.assert_allclose(model.similarity_, expected, rtol=1e-5, atol=1e-6)

    def test_extra_rows_add_to_gram(self):
        train, _ = checkerboard(8, 8)
        extra = sp.csr_matrix(np.eye(8, dtype=np.float32)[:3])
        with_rows = EASE(reg=2.0).fit(train, extra_rows=extra)
        stacked = EASE(reg=2.0).fit(sp.vstack([train, extra]).tocsr())
        np.testing.assert_allclose(with_rows.similarity_, stacked.similarity_, atol=1e-6)
        assert with_rows.n_users_ == 8

    def test_refuses_huge_catalogue(self):
        with pytest.raises(ValueError, match="ItemKNN"):
            EASE(max_columns=10).fit(checkerboard(12, 12)[0])


class TestItemKNN(RecommenderConformance):
    @classmethod
    def make_model(cls, seed: int = 0):
        return ItemKNN(k=10, shrink=0.0, block_size=7)

    def test_cosine_values(self):
        train = sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 1], [1, 1, 0]], dtype=np.float32))
        model = ItemKNN(k=2, shrink=0.0).fit(train)
        sim = model.similarity_.toarray()
        assert sim[0, 1] == pytest.approx(2 / np.sqrt(3 * 2))
        assert sim[1, 2] == 0 and sim[0, 0] == 0

    def test_keeps_k_neighbours_per_item(self):
        train, _ = checkerboard()
        model = ItemKNN(k=3, shrink=0.0).fit(train)
        assert (np.diff(sp.csc_matrix(model.similarity_).indptr) <= 3).all()

    def test_extra_columns_score_target_items(self):
        # the only signal for item 0 comes from extra column 0 (a source item)
        train = sp.csr_matrix(np.array([[1, 0], [1, 0], [0, 1], [0, 0]], dtype=np.float32))
        extra = sp.csr_matrix(np.array([[1], [1], [0], [1]], dtype=np.float32))
        model = ItemKNN(k=5, shrink=0.0).fit(train, extra_columns=extra)
        scores = model.score(np.array([3]))[0]
        assert scores[0] > scores[1]


class TestBPRMF(RecommenderConformance):
    quick = {"epochs": 3}

    @classmethod
    def make_model(cls, seed: int = 0):
        return BPRMF(dim=8, epochs=150, learning_rate=0.05, batch_size=32, l2=1e-3, seed=seed, progress=False)


class TestLightGCN(RecommenderConformance):
    quick = {"epochs": 3}

    @classmethod
    def make_model(cls, seed: int = 0):
        return LightGCN(
            dim=8, layers=1, epochs=150, learning_rate=0.05, batch_size=32, l2=1e-3, seed=seed, progress=False
        )

    def test_adjacency_is_symmetric_normalised(self):
        train, _ = checkerboard(6, 4)
        adjacency = normalized_adjacency(train).to_dense().numpy()
        np.testing.assert_allclose(adjacency, adjacency.T, atol=1e-7)
        degrees = np.concatenate([np.asarray(train.sum(1)).ravel(), np.asarray(train.sum(0)).ravel()])
        assert adjacency[0, 6 + train[0].indices[0]] == pytest.approx(
            1 / np.sqrt(degrees[0] * degrees[6 + train[0].indices[0]])
        )
