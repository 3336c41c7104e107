"""LightGCN (He et al. 2020): embeddings smoothed over the user-item graph by sparse propagation."""

from __future__ import annotations

from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from crossrec.models.base import register_model
from crossrec.models.embedding import EmbeddingRecommender
from crossrec.models.gradient import OptimSpec

__all__ = ["LightGCN", "normalized_adjacency"]


def normalized_adjacency(train: sp.csr_matrix) -> torch.Tensor:
    """Symmetrically normalised bipartite adjacency ``D^-1/2 A D^-1/2`` as a torch sparse COO tensor.

    Nodes are users ``0..n_users-1`` followed by items.
    """
    train = sp.csr_matrix(train, dtype=np.float32)
    train.data[:] = 1.0
    n_users, n_items = train.shape
    adjacency = sp.bmat([[None, train], [train.T, None]], format="csr", dtype=np.float32)
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    inverse_root = np.zeros_like(degree)
    inverse_root[degree > 0] = degree[degree > 0] ** -0.5
    normalized = sp.csr_matrix(sp.diags(inverse_root) @ adjacency @ sp.diags(inverse_root), dtype=np.float32)
    coo = normalized.tocoo()
    indices = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
    return torch.sparse_coo_tensor(
        indices, torch.from_numpy(coo.data), size=coo.shape, check_invariants=True
    ).coalesce()


class _LightGCNModule(nn.Module):
    def __init__(
        self, adjacency: torch.Tensor, n_users: int, n_items: int, dim: int, layers: int, std: float
    ):
        super().__init__()
        self.adjacency = adjacency
        self.n_users = n_users
        self.layers = layers
        self.user_embedding = nn.Embedding(n_users, dim)
        self.item_embedding = nn.Embedding(n_items, dim)
        nn.init.normal_(self.user_embedding.weight, std=std)
        nn.init.normal_(self.item_embedding.weight, std=std)

    def _apply(self, fn: Any, recurse: bool = True) -> Self:
        self.adjacency = fn(self.adjacency)  # a plain tensor, not a buffer: move it with ``.to(device)``
        return super()._apply(fn, recurse)

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        layer = torch.cat([self.user_embedding.weight, self.item_embedding.weight])
        total = layer
        for _ in range(self.layers):
            layer = torch.sparse.mm(self.adjacency, layer)
            total = total + layer
        final = total / (self.layers + 1)
        return final[: self.n_users], final[self.n_users :]


@register_model
class LightGCN(EmbeddingRecommender):
    """LightGCN: ``e^(k+1) = A_hat e^(k)``; final embeddings are the mean over layers 0..L.

    Parameters
    ----------
    dim
        Embedding size.
    layers
        Propagation layers (0 is plain MF).
    init_std
        Standard deviation of the normal initialisation of the layer-0 tables.
    optim
        Optimisation (:class:`~crossrec.training.optim.OptimConfig` or a mapping of its fields);
        LightGCN's defaults: ``l2=1e-4``, ``batch_size=4096``.
    """

    name = "lightgcn"
    default_optim: ClassVar[dict[str, Any]] = {"l2": 1e-4, "batch_size": 4096}

    def __init__(
        self, dim: int = 64, layers: int = 2, init_std: float = 0.1, optim: OptimSpec = None, **flat: Any
    ) -> None:
        self.dim = dim
        self.layers = layers
        self.init_std = init_std
        self._init_optim(optim, flat)

    def _build_module(self, train: sp.csr_matrix) -> nn.Module:
        if self.layers < 0:
            raise ValueError(f"LightGCN layers must be >= 0, got {self.layers}")
        return _LightGCNModule(
            normalized_adjacency(train), train.shape[0], train.shape[1], self.dim, self.layers, self.init_std
        )
