"""Data-parallel LightGCN: replicated layer-0 tables, dense gradients all-reduced by DDP.

Why a dense all-reduce (and not the sparse exchange of BPR-MF, nor sharded tables)
----------------------------------------------------------------------------------
Every step propagates the layer-0 tables over the whole normalised user-item graph (``L`` sparse
products, :class:`crossrec.models.lightgcn.LightGCN`). The final vector of a batch row mixes its
``L``-hop neighbourhood, so the gradient of even a small batch reaches most rows of both tables, and
``torch.sparse.mm``'s backward returns it as one dense ``(users + items) x dim`` tensor. A sparse
exchange would send nearly every row plus its index; a dense all-reduce
(``torch.nn.parallel.DistributedDataParallel``, bucketed and overlapped with the backward pass) sends
exactly the table gradient and leaves the Adam step identical to the one-process step
(:mod:`crossrec.distributed.autograd`). Sharded tables would need an all-to-all exchange of
rows at every propagation layer (a partitioned graph); they pay off only when the tables or the graph
no longer fit one machine, which is far beyond the sizes where full-graph propagation per step is
affordable at all.

Each rank builds the graph from the training arrays itself (the same on every rank) and runs the full
propagation for its part of every global batch: ranks split the loss and the data, not the propagation,
so more ranks shorten an epoch only as far as the per-interaction work dominates.
"""

from __future__ import annotations

from pydantic import Field

from crossrec.data.arrays import InteractionArrays
from crossrec.distributed._context import RankContext
from crossrec.distributed.autograd import AutogradTrainer, GradientTrainConfig

__all__ = ["LightGCNTrainConfig", "lightgcn_trainer"]


class LightGCNTrainConfig(GradientTrainConfig):
    """LightGCN settings of the data-parallel trainer (fixed epochs, no early stopping)."""

    layers: int = Field(2, ge=0, description="Propagation layers (0 is plain MF).")
    l2: float = Field(1e-4, ge=0, description="L2 penalty on the rows used in a step (per interaction).")


def lightgcn_trainer(
    settings: LightGCNTrainConfig, train: InteractionArrays, context: RankContext
) -> AutogradTrainer:
    """A LightGCN replica on this rank (graph of ``train``, seeded initialisation)."""
    from crossrec.models.lightgcn import LightGCN

    model = LightGCN(**settings.model_params())
    module = model.build_module(train.to_csr())
    return AutogradTrainer(model, module, settings, train, context)
