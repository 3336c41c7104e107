"""Every model passes the conformance checks of :mod:`crossrec.testing.models`; model-specific behaviour
below (the two-tower model's suite is in tests/features, the sequence models' in tests/education)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from crossrec.models import BPRMF, EASE, FitInputs, ItemKNN, LightGCN, Popularity, normalized_adjacency
from crossrec.testing.models import RecommenderConformance, checkerboard


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
        with_rows = EASE(reg=2.0).fit_with(train, None, FitInputs(extra_rows=extra))
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
        model = ItemKNN(k=5, shrink=0.0).fit_with(train, None, FitInputs(extra_columns=extra))
        scores = model.score(np.array([3]))[0]
        assert scores[0] > scores[1]


def _optim(seed: int, **overrides) -> dict:
    base = {"epochs": 150, "learning_rate": 0.05, "batch_size": 32, "l2": 1e-3, "seed": seed}
    return base | {"progress": False} | overrides


class TestBPRMF(RecommenderConformance):
    quick = {"optim": {"epochs": 3}}

    @classmethod
    def make_model(cls, seed: int = 0):
        return BPRMF(dim=8, optim=_optim(seed))


class TestBPRMFRowwiseAdagrad(RecommenderConformance):
    """The lean row-wise step (what data-parallel BPR-MF runs at scale) through the same interface."""

    quick = {"optim": {"epochs": 3}}

    @classmethod
    def make_model(cls, seed: int = 0):
        return BPRMF(dim=8, optim=_optim(seed, optimizer="rowwise_adagrad", learning_rate=0.1, l2=0.0))

    def test_refuses_what_the_lean_step_cannot_do(self, board):
        with pytest.raises(ValueError, match="negatives=1"):
            BPRMF(optim={"optimizer": "rowwise_adagrad", "negatives": 4})
        with pytest.raises(ValueError, match="no weights"):
            self.make_model().fit_with(board[0], None, FitInputs(weights=np.ones(board[0].nnz)))


class TestLightGCN(RecommenderConformance):
    quick = {"optim": {"epochs": 3}}

    @classmethod
    def make_model(cls, seed: int = 0):
        return LightGCN(dim=8, layers=1, optim=_optim(seed))

    def test_refuses_the_bpr_only_step(self):
        with pytest.raises(ValueError, match="BPRMF only"):
            LightGCN(optim={"optimizer": "rowwise_adagrad"})

    def test_adjacency_is_symmetric_normalised(self):
        train, _ = checkerboard(6, 4)
        adjacency = normalized_adjacency(train).to_dense().numpy()
        np.testing.assert_allclose(adjacency, adjacency.T, atol=1e-7)
        degrees = np.concatenate([np.asarray(train.sum(1)).ravel(), np.asarray(train.sum(0)).ravel()])
        assert adjacency[0, 6 + train[0].indices[0]] == pytest.approx(
            1 / np.sqrt(degrees[0] * degrees[6 + train[0].indices[0]])
        )


class TestTwoTower(RecommenderConformance):
    """ID towers (no attributes given)."""

    quick = {"optim": {"epochs": 3}}

    @classmethod
    def make_model(cls, seed: int = 0):
        from crossrec.models.two_tower import TwoTower

        return TwoTower(dim=8, hidden=16, id_dropout=0.0, modality_dropout=0.0, optim=_optim(seed, l2=0.0))


class TestTwoTowerWithItemAttributes(TestTwoTower):
    """Item IDs fused with an item attribute (the item's group) through the fit hook."""

    @classmethod
    def fit(cls, model, train):
        import pandas as pd

        from crossrec.features import FeatureTable

        groups = pd.DataFrame({"group": [f"g{item % 2}" for item in range(train.shape[1])]})
        table = FeatureTable(groups, {"group": "category"}, np.arange(train.shape[1]), "item")
        return model.fit_with(train, None, FitInputs(item_features=table))

    def test_the_item_tower_encodes_the_attribute(self, fitted):
        assert fitted.modalities == ["user:id", "item:id", "item:group"]


class TestOptimConfig:
    """``optim=``: model defaults, overrides, validation, persistence and the deprecated flat keywords."""

    def test_given_fields_override_the_model_defaults(self):
        from crossrec.models.two_tower import TwoTower
        from crossrec.training import OptimConfig

        model = TwoTower(optim=OptimConfig(learning_rate=0.02))
        assert model.optim.learning_rate == 0.02
        assert (model.optim.loss, model.optim.negatives, model.optim.patience) == ("softmax", 16, 5)
        assert LightGCN().optim.l2 == 1e-4 and BPRMF().optim.l2 == 0.0
        assert BPRMF(optim={"epochs": 7}).optim == BPRMF(optim=OptimConfig(epochs=7)).optim

    def test_invalid_settings_are_refused_with_the_field_name(self):
        with pytest.raises(ValueError, match=r"optim\.learning_rate"):
            BPRMF(optim={"learning_rate": -1})
        with pytest.raises(ValueError, match=r"optim\.momentum"):
            BPRMF(optim={"momentum": 0.9})
        with pytest.raises(ValueError, match="valid_metric"):
            BPRMF(optim={"valid_metric": "ndcg"})
        with pytest.raises(TypeError, match="dimension"):
            BPRMF(dimension=8)

    def test_config_is_frozen_and_survives_save_load(self, tmp_path):
        from pydantic import ValidationError

        model = BPRMF(dim=4, optim={"epochs": 2, "learning_rate": 0.01, "progress": False})
        with pytest.raises(ValidationError):
            model.optim.epochs = 3
        model.fit(checkerboard()[0])
        loaded = BPRMF.load(model.save(tmp_path / "m"))
        assert loaded.optim == model.optim and loaded.dim == 4

    def test_flat_optimiser_keywords_still_work_with_a_warning(self):
        with pytest.warns(DeprecationWarning, match="optim="):
            model = BPRMF(dim=4, epochs=3, num_threads=1, n_negatives=2)
        assert (model.optim.epochs, model.optim.threads, model.optim.negatives) == (3, 1, 2)
        assert "epochs" not in model.get_params()

    def test_budget_stop_while_improving_is_reported(self):
        train, held_out = checkerboard()
        rows = np.arange(len(held_out))
        valid = sp.csr_matrix((np.ones(len(held_out)), (rows, held_out)), shape=train.shape)
        model = BPRMF(dim=8, optim=_optim(0, epochs=3)).fit(train, valid)
        history = model.history_
        assert history.stop_reason == "epoch_budget" and len(history.epochs) == 3
        if history.still_improving:
            assert "still improving" in history.describe() and "raise optim.epochs" in history.describe()
        stopped = BPRMF(dim=8, optim=_optim(0, epochs=300, patience=2)).fit(train, valid)
        assert stopped.history_.stop_reason == "early_stopping" and not stopped.history_.still_improving


def test_search_keys_reach_into_the_optimiser(tmp_path):
    from crossrec.experiment.config import ExperimentConfig
    from crossrec.experiment.runner import build_model
    from crossrec.experiment.search import apply_params

    config = ExperimentConfig.model_validate(
        {
            "seed": 5,
            "num_threads": 1,
            "data": {"builtin": "movielens-cdr"},
            "model": {"name": "bpr_mf", "params": {"dim": 16, "optim": {"epochs": 3, "patience": 2}}},
        }
    )
    model_params, transfer_params = apply_params({"model.optim.learning_rate": 0.02, "transfer.x": 1})
    assert model_params == {"optim": {"learning_rate": 0.02}} and transfer_params == {"x": 1}
    model = build_model(config, model_params)
    assert model.dim == 16
    assert (model.optim.learning_rate, model.optim.epochs, model.optim.patience) == (0.02, 3, 2)
    assert (model.optim.seed, model.optim.threads) == (5, 1)  # the experiment's seed and threads
