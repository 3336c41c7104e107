"""Data-parallel BPR-MF with the lean row-wise step: replicated tables, sparse gradient terms
all-gathered every step.

This is the path of ``BPRMF(optim={"optimizer": "rowwise_adagrad", ...})`` (the setting that scales to
tens of millions of interactions, :mod:`crossrec.training.fast_bpr`); with Adam or SGD, BPR-MF trains
data-parallel like LightGCN through :mod:`crossrec.distributed.autograd` (dense moments make the update
dense). Either way one process and ``N`` ranks run the same optimiser.

How gradients are combined, and why not dense all-reduce or sharded tables
--------------------------------------------------------------------------
A step touches ``3 B`` rows out of hundreds of thousands, so a dense all-reduce of the table gradients
(``torch.nn.parallel.DistributedDataParallel``) would move the whole tables on every step. The BPR
gradient of each touched row is one scalar times another row of the replicated tables
(``d/du = c (p - n)``, ``d/dp = c u``, ``d/dn = -c u``), so ranks **all-gather four numbers per
interaction** (user, positive, negative, ``c``) and every rank applies the update of the whole global
batch to its replica: the sparse gradient is all-reduced exactly, at ``16`` bytes per interaction
instead of ``3 * 4 * dim``. Sharded tables (each rank owning a slice of rows, with all-to-all
exchanges of rows and gradients) would also split the update work and the memory, and are the better
choice only when the tables no longer fit in one machine's memory (over ~10^8 rows at ``dim`` 64);
replicas keep the step simple, deterministic and equal to the one-process step.

The same seed and world size give identical tables (CPU ``index_add_`` is deterministic); a different
world size gives the same updates up to the order of floating-point additions.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.distributed as dist

from crossrec.data.arrays import InteractionArrays
from crossrec.distributed._context import RankContext
from crossrec.models.base import Recommender
from crossrec.models.mf import BPRMF
from crossrec.training.fast_bpr import BatchTerms, BPRTables, GradientSync, LeanBPRTrainer
from crossrec.training.loop import EpochStats

__all__ = ["BPRTrainer", "gather_sync"]


def gather_sync(context: RankContext) -> GradientSync:
    """All-gather every rank's (user, positive, negative, coefficient) of the step, in rank order."""
    world = context.world_size

    def sync(terms: BatchTerms) -> BatchTerms:
        n = torch.tensor([len(terms.users)], dtype=torch.int64, device=context.device)
        sizes = [torch.zeros_like(n) for _ in range(world)]
        dist.all_gather(sizes, n)
        counts = [int(size) for size in sizes]
        width = max(counts)
        packed = torch.zeros(4, width, dtype=torch.int64, device=context.device)
        own = len(terms.users)
        packed[0, :own], packed[1, :own], packed[2, :own] = terms.users, terms.positives, terms.negatives
        packed[3, :own] = terms.coefficient.to(torch.float64).view(torch.int64)  # exact bits, one message
        gathered = [torch.empty_like(packed) for _ in range(world)]
        dist.all_gather(gathered, packed)
        whole = torch.cat([part[:, :count] for part, count in zip(gathered, counts, strict=True)], dim=1)
        coefficient = whole[3].contiguous().view(torch.float64).to(terms.coefficient.dtype)
        return BatchTerms(whole[0], whole[1], whole[2], coefficient, terms.loss)

    return sync


class BPRTrainer:
    """A BPR-MF replica (tables, row-wise AdaGrad state) trained by the lean step on this rank.

    Parameters
    ----------
    model
        The unfitted :class:`BPRMF` (``optim.optimizer == "rowwise_adagrad"``): its seeded module gives
        the initial tables, and it receives the trained ones (:meth:`fitted_model`).
    train
        Training interactions.
    context
        This rank.
    """

    def __init__(self, model: BPRMF, train: InteractionArrays, context: RankContext) -> None:
        self.model, self.context = model, context
        self.module = model.build_module(train.to_csr())
        user, item = self.module.embeddings()
        tables = BPRTables.from_tables(user.to(context.device), item.to(context.device))
        sync = gather_sync(context) if context.distributed else None
        self.lean = LeanBPRTrainer(
            tables, train, model.optim, rank=context.rank, world_size=context.world_size, sync=sync,
            device=context.device,
        )  # fmt: skip

    def synchronise(self) -> None:
        if self.context.distributed:  # replicas start equal even if a rank's RNG differs
            for tensor in self.lean.tables.state_dict().values():
                dist.broadcast(tensor, src=0)

    def train_epoch(self, epoch: int) -> EpochStats:
        return self.lean.train_epoch(epoch)

    def vectors(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.lean.vectors()

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.lean.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.lean.load_state_dict(state)

    def save(self, folder: Path) -> None:
        self.lean.save(folder)

    def restore(self, folder: Path) -> None:
        self.lean.restore(folder)

    def fitted_model(self) -> Recommender:
        with torch.no_grad():
            self.module.user_embedding.weight.copy_(self.lean.tables.user.cpu())
            self.module.item_embedding.weight.copy_(self.lean.tables.item.cpu())
        return self.model.adopt_module(self.module)
