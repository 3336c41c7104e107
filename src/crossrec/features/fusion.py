"""Towers that fuse an entity's modalities (its ID embedding and encoded attributes) into one vector.

A :class:`Tower` projects each modality to ``dim`` (an embedding table for codes, a small MLP
for dense rows), replaces absent modalities by a learned per-modality "missing" vector (so an
entity with a missing modality, or an item never seen in training, still gets a vector), drops
modalities at random while training (modality dropout), and fuses the ``(n, M, dim)`` stack with
one of:

* :class:`ConcatFusion` - concatenation, a linear path plus an MLP;
* :class:`GatedFusion` - softmax gates per modality computed from all modalities, weighted sum;
* :class:`AttentionFusion` - a learned query attends over the modality embeddings.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

__all__ = [
    "FUSIONS",
    "ID_MODALITY",
    "AttentionFusion",
    "ConcatFusion",
    "GatedFusion",
    "ModalitySpec",
    "Tower",
    "make_fusion",
]

#: Name of the ID-embedding modality in a tower.
ID_MODALITY = "id"

FusionName = Literal["concat", "gated", "attention"]


@dataclass(frozen=True)
class ModalitySpec:
    """One modality of a tower: its name, input shape (``"index"`` codes or ``"dense"`` rows) and width."""

    name: str
    output: Literal["index", "dense"]
    width: int


class ConcatFusion(nn.Module):
    """``Linear(concat) + MLP(concat)``: with the ID modality alone this is matrix factorisation plus
    a non-linear correction."""

    def __init__(self, n_modalities: int, dim: int, hidden: int) -> None:
        super().__init__()
        self.linear = nn.Linear(n_modalities * dim, dim)
        self.mlp = nn.Sequential(nn.Linear(n_modalities * dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, stack: torch.Tensor) -> torch.Tensor:
        flat = stack.flatten(1)
        return self.linear(flat) + self.mlp(flat)


class GatedFusion(nn.Module):
    """Per-entity softmax gates over modalities (computed from all of them), then a weighted sum."""

    def __init__(self, n_modalities: int, dim: int, hidden: int) -> None:
        super().__init__()
        self.gate = nn.Sequential(
            nn.Linear(n_modalities * dim, hidden), nn.GELU(), nn.Linear(hidden, n_modalities)
        )
        self.output = nn.Linear(dim, dim)

    def gates(self, stack: torch.Tensor) -> torch.Tensor:
        """``(n, M)`` gate weights (rows sum to 1)."""
        return torch.softmax(self.gate(stack.flatten(1)), dim=-1)

    def forward(self, stack: torch.Tensor) -> torch.Tensor:
        mixed = (self.gates(stack).unsqueeze(-1) * stack).sum(1)
        return mixed + self.output(mixed)


class AttentionFusion(nn.Module):
    """A learned query attends over modality embeddings (plus modality-type embeddings)."""

    def __init__(self, n_modalities: int, dim: int, hidden: int) -> None:
        super().__init__()
        heads = next(h for h in (4, 2, 1) if dim % h == 0)
        self.type_embedding = nn.Parameter(torch.zeros(n_modalities, dim))
        self.query = nn.Parameter(torch.randn(1, 1, dim) * 0.1)
        self.attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.output = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, stack: torch.Tensor) -> torch.Tensor:
        tokens = stack + self.type_embedding
        query = self.query.expand(len(stack), -1, -1)
        pooled, _ = self.attention(query, tokens, tokens, need_weights=False)
        pooled = pooled[:, 0] + stack.mean(1)
        return pooled + self.output(pooled)


#: Fusion name -> module class.
FUSIONS: dict[str, type[nn.Module]] = {
    "concat": ConcatFusion,
    "gated": GatedFusion,
    "attention": AttentionFusion,
}


def make_fusion(name: str, n_modalities: int, dim: int, hidden: int) -> nn.Module:
    """A fusion module by name (``"concat"``, ``"gated"``, ``"attention"``)."""
    if name not in FUSIONS:
        raise ValueError(f"unknown fusion {name!r}; choose from {sorted(FUSIONS)}")
    return FUSIONS[name](n_modalities, dim, hidden)


class Tower(nn.Module):
    """Fuse an entity's ID embedding (optional) and its encoded attributes into one vector.

    Parameters
    ----------
    n_ids
        Rows of the ID-embedding table (0: no ID modality).
    specs
        The attribute modalities, in order.
    dim, hidden
        Output size and hidden size of the fusion.
    fusion
        ``"concat"``, ``"gated"`` or ``"attention"``.
    modality_dropout
        Probability, per entity and attribute modality, of replacing it by its missing vector while training.
    id_dropout
        The same for the ID modality; teaches the tower to place entities from attributes alone.
    init_std
        Standard deviation of the initial ID embeddings and missing vectors.
    id_residual
        Add the ID embedding to the fused vector (a skip connection around the fusion).
    """

    def __init__(
        self,
        n_ids: int,
        specs: Sequence[ModalitySpec],
        dim: int,
        hidden: int,
        fusion: str = "concat",
        modality_dropout: float = 0.0,
        id_dropout: float = 0.0,
        init_std: float = 0.1,
        id_residual: bool = False,
    ) -> None:
        super().__init__()
        self.id_residual = id_residual
        self.specs = list(specs)
        self.names = ([ID_MODALITY] if n_ids else []) + [spec.name for spec in self.specs]
        if not self.names:
            raise ValueError("a tower needs an ID embedding or at least one attribute modality")
        self.id_embedding = nn.Embedding(n_ids, dim) if n_ids else None
        if self.id_embedding is not None:
            nn.init.normal_(self.id_embedding.weight, std=init_std)
        heads: dict[str, nn.Module] = {}
        for spec in self.specs:
            if spec.output == "index":
                heads[spec.name] = nn.Embedding(spec.width, dim)
                nn.init.normal_(heads[spec.name].weight, std=init_std)
            else:
                heads[spec.name] = nn.Sequential(nn.Linear(spec.width, dim), nn.GELU(), nn.Linear(dim, dim))
        self.heads = nn.ModuleDict({_key(name): head for name, head in heads.items()})
        self.missing = nn.Parameter(torch.randn(len(self.names), dim) * init_std)
        self.fusion = make_fusion(fusion, len(self.names), dim, hidden)
        self.modality_dropout = modality_dropout
        # the ID is the only modality of an attribute-less tower: never drop it there
        self.id_dropout = id_dropout if self.specs else 0.0

    def stack(
        self,
        inputs: Mapping[str, torch.Tensor],
        present: Mapping[str, torch.Tensor],
        ids: torch.Tensor | None,
        id_known: torch.Tensor | None,
        masked: Collection[str] = (),
    ) -> torch.Tensor:
        """``(n, M, dim)`` modality embeddings, absent (or ``masked``) ones replaced by missing vectors."""
        columns, keep = [], []
        for position, name in enumerate(self.names):
            if name == ID_MODALITY:
                assert self.id_embedding is not None
                if ids is None or id_known is None:
                    n = len(next(iter(present.values())))
                    embedded = self.missing[position].expand(n, -1)
                    mask = torch.zeros(n, dtype=torch.bool, device=embedded.device)
                else:
                    embedded = self.id_embedding(ids)
                    mask = id_known.clone()
                rate = self.id_dropout
            else:
                embedded = self.heads[_key(name)](inputs[name])
                mask = present[name].clone()
                rate = self.modality_dropout
            if name in masked:
                mask = torch.zeros_like(mask)
            if self.training and rate > 0:
                mask &= torch.rand(len(mask), device=mask.device) >= rate
            columns.append(embedded)
            keep.append(mask)
        stack = torch.stack(columns, dim=1)
        keep_matrix = torch.stack(keep, dim=1).unsqueeze(-1)
        return torch.where(keep_matrix, stack, self.missing.unsqueeze(0).expand_as(stack))

    def forward(
        self,
        inputs: Mapping[str, torch.Tensor],
        present: Mapping[str, torch.Tensor],
        ids: torch.Tensor | None = None,
        id_known: torch.Tensor | None = None,
        masked: Collection[str] = (),
    ) -> torch.Tensor:
        """``(n, dim)`` entity vectors; ``ids=None`` scores entities by their attributes alone.

        With ``id_residual`` the ID modality (or its missing vector) is also added to the fused
        vector, so an ID-only tower is matrix factorisation plus a learned correction.
        """
        stack = self.stack(inputs, present, ids, id_known, masked)
        fused = self.fusion(stack)
        if self.id_residual and self.id_embedding is not None:
            fused = fused + stack[:, 0]
        return fused


def _key(name: str) -> str:
    # ModuleDict keys cannot contain dots
    return "m_" + name.replace(".", "_")
