"""Matrix factorisation trained with BPR (or sampled softmax) on implicit feedback."""

from __future__ import annotations

from typing import Literal

import scipy.sparse as sp
import torch
from torch import nn

from crossrec.models.base import register_model
from crossrec.models.embedding import EmbeddingRecommender

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
    loss
        ``"bpr"`` (pairwise, Rendle et al. 2009) or ``"softmax"`` (sampled softmax over
        ``n_negatives`` uniform negatives).
    n_negatives
        Negatives per positive.
    learning_rate, l2, epochs, batch_size, patience
        Optimisation (see :class:`crossrec.training.TrainerConfig`).
    init_std
        Standard deviation of the normal initialisation.
    seed, num_threads, progress
        Determinism, torch threads, progress bar.
    """

    name = "bpr_mf"

    def __init__(
        self,
        dim: int = 64,
        loss: Literal["bpr", "softmax"] = "bpr",
        n_negatives: int = 1,
        learning_rate: float = 1e-3,
        l2: float = 0.0,
        epochs: int = 200,
        batch_size: int = 2048,
        patience: int = 10,
        init_std: float = 0.1,
        seed: int = 0,
        num_threads: int | None = None,
        progress: bool = True,
    ) -> None:
        self.dim = dim
        self.loss = loss
        self.n_negatives = n_negatives
        self.learning_rate = learning_rate
        self.l2 = l2
        self.epochs = epochs
        self.batch_size = batch_size
        self.patience = patience
        self.init_std = init_std
        self.seed = seed
        self.num_threads = num_threads
        self.progress = progress

    def _build_module(self, train: sp.csr_matrix) -> nn.Module:
        return _MFModule(train.shape[0], train.shape[1], self.dim, self.init_std)
