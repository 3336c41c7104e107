"""Data-parallel LightGCN: replicated layer-0 tables, dense gradients all-reduced by DDP.

Why a dense all-reduce (and not the sparse exchange of the lean BPR-MF step, nor sharded tables)
------------------------------------------------------------------------------------------------
Every step propagates the layer-0 tables over the whole normalised user-item graph (``L`` sparse
products, :class:`crossrec.models.lightgcn.LightGCN`). The final vector of a batch row mixes its
``L``-hop neighbourhood, so the gradient of even a small batch reaches most rows of both tables, and
``torch.sparse.mm``'s backward returns it as one dense ``(users + items) x dim`` tensor. A sparse
exchange would send nearly every row plus its index; a dense all-reduce
(``torch.nn.parallel.DistributedDataParallel``, bucketed and overlapped with the backward pass) sends
exactly the table gradient and leaves the optimizer step identical to the one-process step
(:mod:`crossrec.distributed.autograd`). Sharded tables would need an all-to-all exchange of
rows at every propagation layer (a partitioned graph); they pay off only when the tables or the graph
no longer fit one machine, which is far beyond the sizes where full-graph propagation per step is
affordable at all.

Each rank builds the graph from the training arrays itself (the same on every rank, through
:meth:`~crossrec.models.embedding.EmbeddingRecommender.build_module`) and runs the full propagation for
its part of every global batch: ranks split the loss and the data, not the propagation, so more ranks
shorten an epoch only as far as the per-interaction work dominates.
"""

__all__: list[str] = []
