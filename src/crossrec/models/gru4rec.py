"""GRU4Rec: a recurrent network over each user's recent items (Hidasi et al., ICLR 2016).

Same training loop, losses, early stopping, persistence and encoder transfer as
:class:`~crossrec.models.sasrec.SASRec` (full softmax over items, optional multi-step ``horizon``);
only the sequence encoder differs: a ``n_layers`` GRU instead of self-attention. Its vocabulary-free
encoder (the GRU and the final norm) transfers across platforms with ``encoder_state()``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from crossrec.models.base import register_model
from crossrec.models.gradient import OptimSpec
from crossrec.models.sasrec import SASRec

__all__ = ["GRU4Rec"]


class _GRU4RecModule(nn.Module):
    """Item table (index 0 is padding) + GRU encoder; sequences are left-padded with 0."""

    def __init__(self, n_items: int, dim: int, n_layers: int, dropout: float):
        super().__init__()
        self.item = nn.Embedding(n_items + 1, dim, padding_idx=0)
        self.dropout = nn.Dropout(dropout)
        self.gru = nn.GRU(
            dim, dim, num_layers=n_layers, batch_first=True, dropout=dropout if n_layers > 1 else 0.0
        )
        self.norm = nn.LayerNorm(dim)
        nn.init.normal_(self.item.weight, std=dim**-0.5)
        with torch.no_grad():
            self.item.weight[0].zero_()

    def forward(self, sequence: torch.Tensor) -> torch.Tensor:
        hidden, _ = self.gru(self.dropout(self.item(sequence)))
        return self.norm(hidden)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden @ self.item.weight[1:].T


@register_model
class GRU4Rec(SASRec):
    """Recurrent sequential recommender (see :class:`~crossrec.models.sasrec.SASRec` for the parameters;
    there are no attention heads)."""

    name = "gru4rec"
    encoder_prefixes: ClassVar[tuple[str, ...]] = ("gru.", "norm.")

    def __init__(
        self,
        dim: int = 64,
        n_layers: int = 1,
        max_length: int = 50,
        dropout: float = 0.2,
        horizon: int = 1,
        horizon_decay: float = 0.5,
        optim: OptimSpec = None,
        **flat: Any,
    ) -> None:
        super().__init__(
            dim=dim, n_layers=n_layers, max_length=max_length, dropout=dropout, horizon=horizon,
            horizon_decay=horizon_decay, optim=optim, **flat,
        )  # fmt: skip
        del self.n_heads

    def _build(self, n_items: int) -> nn.Module:
        return _GRU4RecModule(n_items, self.dim, self.n_layers, self.dropout)
