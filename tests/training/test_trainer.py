"""Trainer behaviour: seeded determinism, exact resume from a checkpoint, weights, custom validation,
and the shared epoch loop's stop reasons."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from crossrec.models import BPRMF, FitInputs
from crossrec.models.mf import _MFModule
from crossrec.testing.models import checkerboard
from crossrec.training import OptimConfig, train_embedding_model


def _train(epochs: int, folder=None, resume: bool = False, weights=None, validation=None, valid=None):
    train, _ = checkerboard()
    torch.manual_seed(0)
    module = _MFModule(train.shape[0], train.shape[1], 8, 0.1)
    config = OptimConfig(
        epochs=epochs, batch_size=32, learning_rate=0.05, seed=1, progress=False, patience=50
    )
    history = train_embedding_model(
        module,
        train,
        valid,
        config,
        checkpoint_dir=folder,
        resume=resume,
        weights=weights,
        validation=validation,
    )
    return module.user_embedding.weight.detach().numpy().copy(), history


def test_same_seed_gives_identical_weights():
    first, _ = _train(4)
    second, _ = _train(4)
    np.testing.assert_array_equal(first, second)


def test_resume_continues_exactly(tmp_path):
    uninterrupted, _ = _train(6)
    _train(3, folder=tmp_path)
    assert (tmp_path / "module.safetensors").is_file() and (tmp_path / "optimizer.pt").is_file()
    resumed, history = _train(6, folder=tmp_path, resume=True)
    np.testing.assert_allclose(resumed, uninterrupted, rtol=1e-6, atol=1e-7)
    assert [record["epoch"] for record in history.epochs] == list(range(1, 7))


def test_optimizer_state_loads_weights_only(tmp_path):
    _train(1, folder=tmp_path)
    state = torch.load(tmp_path / "optimizer.pt", weights_only=True)
    assert "state" in state


def test_weights_must_match_interactions():
    with pytest.raises(ValueError, match="one per interaction"):
        _train(1, weights=np.ones(3))


def test_custom_validation_drives_early_stopping():
    calls = []

    def validation(users, items):
        calls.append(1)
        return 1.0 if len(calls) == 1 else 0.0  # best at epoch 1, never better again

    _, history = _train(100, validation=validation)
    assert history.best_epoch == 1
    assert len(history.epochs) == 51  # patience 50


def test_model_fit_passes_checkpoints(tmp_path):
    train, _ = checkerboard()
    optim = {"epochs": 2, "progress": False}
    BPRMF(dim=4, optim=optim).fit_with(train, train, FitInputs(checkpoint_dir=tmp_path))
    assert (tmp_path / "trainer.json").is_file()


@pytest.mark.parametrize("optimizer", ["adam", "rowwise_adagrad"])
def test_model_resume_continues_exactly(tmp_path, optimizer):
    train, held_out = checkerboard()
    valid = train.copy()
    valid.data[:] = 0
    valid[np.arange(len(held_out)), held_out] = 1
    valid.eliminate_zeros()
    optim = {
        "optimizer": optimizer,
        "batch_size": 32,
        "learning_rate": 0.05,
        "patience": 50,
        "progress": False,
    }
    full = BPRMF(dim=4, optim=optim | {"epochs": 6}).fit(train, valid)
    BPRMF(dim=4, optim=optim | {"epochs": 3}).fit_with(train, valid, FitInputs(checkpoint_dir=tmp_path))
    resumed = BPRMF(dim=4, optim=optim | {"epochs": 6}).fit_with(
        train, valid, FitInputs(checkpoint_dir=tmp_path, resume=True)
    )
    assert [r["epoch"] for r in resumed.history_.epochs] == list(range(1, 7))
    assert resumed.history_.best_epoch == full.history_.best_epoch
    np.testing.assert_allclose(resumed.user_vectors(), full.user_vectors(), rtol=1e-6, atol=1e-7)


def test_sgd_and_adam_train_differently_and_unknown_optimizers_are_refused():
    train, _ = checkerboard()
    optim = {"epochs": 2, "batch_size": 32, "progress": False}
    adam = BPRMF(dim=4, optim=optim).fit(train).user_vectors()
    sgd = BPRMF(dim=4, optim=optim | {"optimizer": "sgd"}).fit(train).user_vectors()
    assert not np.allclose(adam, sgd)
    with pytest.raises(ValueError, match="optimizer"):
        OptimConfig(optimizer="adagrad")


def test_fit_with_refuses_inputs_by_name():
    train, _ = checkerboard()
    with pytest.raises(ValueError, match=r"item_features.*it takes: checkpoint_dir, init"):
        BPRMF(dim=4).fit_with(train, None, FitInputs(item_features=object()))
