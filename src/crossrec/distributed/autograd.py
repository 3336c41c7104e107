"""Data-parallel training of autograd models (BPR-MF with Adam or SGD, LightGCN, two-tower) with
``DistributedDataParallel``.

Every rank holds a replica of the model's torch module (the one
:meth:`~crossrec.models.embedding.EmbeddingRecommender.build_module` builds, the same module the
single-process trainer fits) and the optimizer its ``optim`` names (Adam by default, the same as one
process: :func:`crossrec.training.build_optimizer`). A global step is:

1. this rank's part of the global batch and its negatives (:func:`crossrec.training.batches.global_batches`);
2. the module's final embeddings (``module.embeddings()``: graph propagation or towers over the whole
   domain, exactly as in :func:`crossrec.training.train_embedding_model`), with the global torch RNG
   seeded by ``(seed, epoch, step)`` so that training-time dropout draws the same masks on every rank;
3. the loss of this rank's interactions, **summed and divided by the global batch size**, times the
   world size: ``DistributedDataParallel`` averages the gradients over ranks, so every replica receives
   the gradient of the mean loss over the global batch, the one-process gradient up to the order of
   floating-point additions (per-rank means would weight a short last part wrongly);
4. the same optimizer step on every replica.

The shared epoch loop (:func:`crossrec.training.run_epochs`) adds validation, early stopping and
checkpoints with the model's ``optim``, exactly as on one process.

``DistributedDataParallel`` all-reduces the dense gradients in buckets while the backward pass runs
(gloo on CPU, NCCL on GPUs); why a dense all-reduce is the right exchange is model-specific, see
:mod:`crossrec.distributed.lightgcn` and :mod:`crossrec.distributed.two_tower`.
A rank whose part of the last global batch is empty still runs the step (its loss is an empty sum with
zero gradients), so every rank makes the same collective calls.

The same seed and world size give identical weights on CPU (gloo all-reduce and CPU kernels are
deterministic); on GPUs some sparse kernels use atomics, so runs agree only up to rounding.
"""

from __future__ import annotations

import time
from typing import Literal

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from crossrec.data.arrays import InteractionArrays
from crossrec.distributed._context import RankContext
from crossrec.models.base import Recommender
from crossrec.models.embedding import EmbeddingRecommender
from crossrec.training.batches import PositiveFilter, global_batches, step_seed
from crossrec.training.loop import EpochStats, ModuleState
from crossrec.training.trainer import build_optimizer, interaction_losses

__all__ = ["AutogradTrainer"]

_DROPOUT_STREAM = 1  # step_seed stream of the global torch RNG (negatives use stream 0)


class _GlobalBatchLoss(nn.Module):
    """``forward``: this rank's share of the global-batch loss (what DDP wraps)."""

    def __init__(self, module: nn.Module, loss: Literal["bpr", "softmax"], l2: float) -> None:
        super().__init__()
        self.module = module
        self.loss = loss
        self.l2 = l2

    def forward(
        self, users: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor, scale: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        user_table, item_table = self.module.embeddings()
        per_row, penalty = interaction_losses(user_table, item_table, users, positives, negatives, self.loss)
        data_loss = per_row.sum()
        total = data_loss + self.l2 * penalty if self.l2 else data_loss
        return total * scale, data_loss.detach()


class AutogradTrainer(ModuleState):
    """A replica of an embedding model's torch module, trained on the global batches.

    Parameters
    ----------
    model
        The (unfitted) recommender; its ``optim`` is the optimisation, and it receives the trained
        module at the end (:meth:`fitted_model`).
    module
        ``model.build_module(train)``: seeded, so every rank builds the same initial weights (rank 0's
        are broadcast anyway).
    train
        Training interactions.
    context
        This rank.
    """

    def __init__(
        self, model: EmbeddingRecommender, module: nn.Module, train: InteractionArrays, context: RankContext
    ) -> None:
        self.model = model
        self.optim = model.optim
        self.train = train
        self.context = context
        self.device = context.device
        self.module = module.to(context.device)
        self.optimizer = build_optimizer(
            [{"params": [p for p in self.module.parameters() if p.requires_grad]}], self.optim
        )
        self.negative_filter = (
            PositiveFilter(train, device=context.device) if self.optim.reject_positives else None
        )
        self._loss = _GlobalBatchLoss(self.module, self.optim.loss, self.optim.l2)
        self._step: nn.Module = self._loss

    def synchronise(self) -> None:
        if self.context.distributed:  # DDP broadcasts rank 0's weights, then all-reduces every gradient
            device_ids = [self.context.device] if self.context.device.type == "cuda" else None
            self._step = DistributedDataParallel(self._loss, device_ids=device_ids)

    def train_epoch(self, epoch: int) -> EpochStats:
        started, cpu_started = time.perf_counter(), time.process_time()
        optim, context = self.optim, self.context
        stats = EpochStats()
        self.module.train()
        batches = global_batches(
            self.train, optim.batch_size, optim.seed, epoch, rank=context.rank,
            world_size=context.world_size, n_negatives=optim.negatives,
            negative_filter=self.negative_filter, device=context.device,
        )  # fmt: skip
        for batch in batches:
            torch.manual_seed(step_seed(optim.seed, epoch, batch.step, _DROPOUT_STREAM))
            negatives = batch.negatives.view(len(batch.users), optim.negatives)
            scale = context.world_size / batch.size
            loss, data_loss = self._step(batch.users, batch.positives, negatives, scale)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            stats.loss += float(data_loss)
            stats.interactions += len(batch.users)
        stats.seconds = time.perf_counter() - started
        stats.cpu_seconds = time.process_time() - cpu_started
        return stats

    def vectors(self) -> tuple[torch.Tensor, torch.Tensor]:
        self.module.eval()
        with torch.no_grad():
            users, items = self.module.embeddings()
        self.module.train()
        return users.detach(), items.detach()

    def fitted_model(self) -> Recommender:
        return self.model.adopt_module(self.module.to("cpu"))
