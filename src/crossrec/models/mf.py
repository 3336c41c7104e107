"""Matrix factorisation trained with BPR (or sampled softmax) on implicit feedback."""

from __future__ import annotations

from typing import Any, Self

import scipy.sparse as sp
import torch
from torch import nn

from crossrec.models.base import register_model
from crossrec.models.embedding import EmbeddingRecommender, _apply_init
from crossrec.models.gradient import OptimSpec
from crossrec.models.inputs import FitInputs
from crossrec.training.optim import OptimConfig

__all__ = ["BPRMF"]


class _MFModule(nn.Module):
    def __init__(self, n_users: int, n_items: int, dim: int, init_std: float) -> None:
        super().__init__()
        self.user_embedding = nn.Embedding(n_users, dim)
        self.item_embedding = nn.Embedding(n_items, dim)
        nn.init.normal_(self.user_embedding.weight, std=init_std)
        nn.init.normal_(self.item_embedding.weight, std=init_std)

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.user_embedding.weight, self.item_embedding.weight


@register_model
class BPRMF(EmbeddingRecommender):
    """Matrix factorisation: ``score(u, i) = p_u . q_i``.

    Parameters
    ----------
    dim
        Embedding size.
    init_std
        Standard deviation of the normal initialisation.
    optim
        Optimisation (:class:`~crossrec.training.optim.OptimConfig` or a mapping of its fields): ``loss``
        ``"bpr"`` (pairwise, Rendle et al. 2009) or ``"softmax"`` (sampled softmax over ``negatives``
        uniform negatives); ``optimizer="rowwise_adagrad"`` trains with the lean closed-form BPR step of
        :mod:`crossrec.training.fast_bpr` (BPR, one negative), the one data-parallel BPR-MF uses at scale.
    """

    name = "bpr_mf"

    def __init__(self, dim: int = 64, init_std: float = 0.1, optim: OptimSpec = None, **flat: Any) -> None:
        self.dim = dim
        self.init_std = init_std
        self._init_optim(optim, flat)

    def _check_optim(self, optim: OptimConfig) -> None:
        if optim.optimizer == "rowwise_adagrad" and (optim.loss != "bpr" or optim.negatives != 1):
            raise ValueError(
                "BPRMF: optim.optimizer='rowwise_adagrad' is the lean BPR step: it needs loss='bpr' and "
                f"negatives=1, got loss={optim.loss!r}, negatives={optim.negatives}"
            )

    def _build_module(self, train: sp.csr_matrix) -> nn.Module:
        return _MFModule(train.shape[0], train.shape[1], self.dim, self.init_std)

    def fit_with(self, train: sp.csr_matrix, valid: sp.csr_matrix | None, inputs: FitInputs) -> Self:
        if self.optim.optimizer != "rowwise_adagrad":
            return super().fit_with(train, valid, inputs)
        return self._fit_lean(sp.csr_matrix(train), valid, inputs)

    def _fit_lean(self, train: sp.csr_matrix, valid: sp.csr_matrix | None, inputs: FitInputs) -> Self:
        """Fit with the lean row-wise step (:class:`~crossrec.training.fast_bpr.LeanBPRTrainer`)."""
        from crossrec.training.fast_bpr import BPRTables, LeanBPRTrainer, csr_arrays
        from crossrec.training.loop import run_epochs
        from crossrec.training.trainer import table_validation

        self.check_inputs(inputs)
        init = inputs.init
        if inputs.weights is not None or (
            init is not None and (init.state or init.freeze or init.head or init.transferred_lr_scale != 1)
        ):
            raise ValueError(
                "BPRMF with optim.optimizer='rowwise_adagrad' takes initial user/item tables only (no "
                "weights, state, freeze, head or transferred_lr_scale); use optimizer='adam' for those"
            )
        if self.optim.threads:
            torch.set_num_threads(self.optim.threads)
        module = self._new_module(train)
        if init is not None:
            _apply_init(module, init, self.optim.learning_rate)
        user, item = module.embeddings()
        trainer = LeanBPRTrainer(BPRTables.from_tables(user, item), csr_arrays(train), self.optim)
        scoring = inputs.validation
        if scoring is None and valid is not None:
            scoring = table_validation(train, valid, self.optim)
        self.history_ = run_epochs(
            trainer, self.optim, validate=None if scoring is None else lambda: scoring(*trainer.vectors()),
            label=inputs.label or self.name, checkpoint_dir=inputs.checkpoint_dir, resume=inputs.resume,
        )  # fmt: skip
        with torch.no_grad():
            module.user_embedding.weight.copy_(trainer.tables.user)
            module.item_embedding.weight.copy_(trainer.tables.item)
        return self.adopt_module(module)
