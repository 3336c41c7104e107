"""Data-parallel BPR-MF: replicated tables, sparse gradient terms all-gathered every step.

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

import os
from pathlib import Path

import torch
import torch.distributed as dist

from crossrec.data.arrays import InteractionArrays
from crossrec.distributed._context import RankContext
from crossrec.models.base import Recommender
from crossrec.training.fast_bpr import (
    BatchTerms,
    BPRTables,
    EpochStats,
    FastBPRConfig,
    GradientSync,
    PositiveFilter,
    run_epoch,
)

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
    """A BPR-MF replica (tables, row-wise AdaGrad state) trained by :func:`~.fast_bpr.run_epoch`.

    Parameters
    ----------
    settings
        BPR-MF settings.
    train
        Training interactions.
    context
        This rank.
    """

    def __init__(self, settings: FastBPRConfig, train: InteractionArrays, context: RankContext) -> None:
        self.settings = settings
        self.epochs = settings.epochs
        self.train = train
        self.context = context
        tables = BPRTables.initialise(train.n_users, train.n_items, settings)
        self.tables = self._on_device(tables.state_dict())
        self.negative_filter = (
            PositiveFilter(train, device=context.device) if settings.reject_positives else None
        )
        self.sync = gather_sync(context) if context.distributed else None

    def _on_device(self, state: dict[str, torch.Tensor]) -> BPRTables:
        return BPRTables.from_state_dict({k: v.to(self.context.device) for k, v in state.items()})

    def restore(self, folder: Path) -> None:
        from safetensors.torch import load_file

        self.tables = self._on_device(load_file(str(folder / "tables.safetensors")))

    def synchronise(self) -> None:
        if self.context.distributed:  # replicas start equal even if a rank's RNG differs
            for tensor in self.tables.state_dict().values():
                dist.broadcast(tensor, src=0)

    def train_epoch(self, epoch: int) -> EpochStats:
        return run_epoch(
            self.tables, self.train, self.negative_filter, self.settings, epoch,
            rank=self.context.rank, world_size=self.context.world_size, sync=self.sync,
            device=self.context.device,
        )  # fmt: skip

    def vectors(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.tables.user, self.tables.item

    def save(self, folder: Path) -> None:
        from safetensors.torch import save_file

        folder.mkdir(parents=True, exist_ok=True)
        temporary = folder / ".tables.safetensors.tmp"
        state = {k: v.detach().cpu().contiguous() for k, v in self.tables.state_dict().items()}
        save_file(state, str(temporary))
        os.replace(temporary, folder / "tables.safetensors")

    def fitted_model(self) -> Recommender:
        from crossrec.models.mf import BPRMF

        return BPRMF(dim=self.settings.dim, seed=self.settings.seed).with_vectors(
            self.tables.user.detach().cpu().numpy(), self.tables.item.detach().cpu().numpy()
        )
