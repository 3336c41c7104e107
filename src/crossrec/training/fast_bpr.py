"""A lean BPR-MF epoch for tens of millions of interactions: hand-written gradients, row-wise updates.

Autograd plus a dense optimizer touches every row of both tables on every step; at 25M interactions
that, not the arithmetic, is the cost. Here one step of ``B`` interactions

1. gathers the ``B`` user, positive and negative rows (``index_select``),
2. computes the BPR gradients in closed form (``d/dx -log sigmoid(x) = -sigmoid(-x)``),
3. updates only those rows with **row-wise AdaGrad** (one accumulator per row, the optimizer that
   FBGEMM/TorchRec use for large embedding tables) or plain SGD, through ``index_add_`` (repeated rows
   in a batch add up, deterministically on CPU).

The epoch walks :func:`crossrec.training.batches.global_batches`: negatives are uniform items, drawn
per global step from a generator seeded by ``(seed, epoch, step)``; those that are a positive of the
user (checked in a table of the training pairs, see :class:`PositiveFilter`) are redrawn. Because the
permutation, the negatives and the update depend only on the global step, a data-parallel run that
splits each global batch over ranks and combines the gradients (:mod:`crossrec.distributed`)
makes the same updates as one process.

Settings come from :class:`~crossrec.training.optim.OptimConfig` (``optimizer="rowwise_adagrad"`` or
``"sgd"``, ``learning_rate``, ``l2``, ``batch_size``, ``reject_positives``, ``seed``):
:class:`~crossrec.models.mf.BPRMF` trains with this step whenever its ``optim.optimizer`` is
``"rowwise_adagrad"``, on one process (:class:`LeanBPRTrainer`) or data-parallel.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from crossrec.data.arrays import InteractionArrays
from crossrec.training.batches import PositiveFilter, epoch_permutation, global_batches
from crossrec.training.checkpoint import replace_file
from crossrec.training.loop import EpochStats
from crossrec.training.optim import OptimConfig

__all__ = [
    "BPRTables",
    "BatchTerms",
    "EpochStats",
    "GradientSync",
    "LeanBPRTrainer",
    "PositiveFilter",
    "apply_bpr_update",
    "bpr_terms",
    "csr_arrays",
    "epoch_permutation",
    "run_epoch",
]


@dataclass
class BPRTables:
    """User and item tables with their row-wise AdaGrad accumulators (all plain tensors)."""

    user: torch.Tensor
    item: torch.Tensor
    user_state: torch.Tensor
    item_state: torch.Tensor

    @classmethod
    def initialise(
        cls, n_users: int, n_items: int, dim: int = 64, *, init_std: float = 0.1, seed: int = 0
    ) -> BPRTables:
        """Normal ``(0, init_std)`` tables from a generator seeded by ``seed``, zero accumulators."""
        generator = torch.Generator().manual_seed(seed)
        user = torch.randn(n_users, dim, generator=generator) * init_std
        item = torch.randn(n_items, dim, generator=generator) * init_std
        return cls.from_tables(user, item)

    @classmethod
    def from_tables(cls, user: torch.Tensor, item: torch.Tensor) -> BPRTables:
        """Copies of given tables (e.g. a seeded module's, or a warm start) with zero accumulators."""
        user = user.detach().clone().contiguous()
        item = item.detach().clone().contiguous()
        return cls(user, item, user.new_zeros(len(user)), item.new_zeros(len(item)))

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {
            "user": self.user,
            "item": self.item,
            "user_state": self.user_state,
            "item_state": self.item_state,
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor]) -> BPRTables:
        return cls(state["user"], state["item"], state["user_state"], state["item_state"])


def csr_arrays(matrix: sp.csr_matrix) -> InteractionArrays:
    """In-memory :class:`InteractionArrays` of a binary user x item matrix (what :func:`run_epoch` walks)."""
    matrix = sp.csr_matrix(matrix)
    users = np.repeat(np.arange(matrix.shape[0], dtype=np.int32), np.diff(matrix.indptr))
    return InteractionArrays(
        folder=Path("<memory>"), user=users, item=matrix.indices.astype(np.int32), timestamp=None,
        n_users=matrix.shape[0], n_items=matrix.shape[1],
    )  # fmt: skip


@dataclass
class BatchTerms:
    """What a (part of a) batch contributes to an update: its rows and one coefficient per interaction.

    The BPR gradient of every row is a scalar times another row of the (replicated) tables:
    ``d/du = c (p - n)``, ``d/dp = c u``, ``d/dn = -c u`` with ``c = -sigmoid(-u . (p - n))``. Ranks
    therefore exchange four numbers per interaction (three indices and ``c``), not three gradient
    rows of ``dim`` floats, and every rank rebuilds the gradients of the whole global batch.
    """

    users: torch.Tensor
    positives: torch.Tensor
    negatives: torch.Tensor
    coefficient: torch.Tensor
    loss: float
    rows: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor] | None = None
    """This rank's gathered rows (user, positive, negative, positive - negative), reused on one process."""


#: Combines the batch terms of all ranks into those of the global batch (identity on one process).
GradientSync = Callable[[BatchTerms], BatchTerms]


def _row_dot(left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """Row-wise dot products in one fused pass (a batched matrix-vector product)."""
    return torch.bmm(left.unsqueeze(1), right.unsqueeze(2)).view(-1)


def bpr_terms(
    tables: BPRTables, users: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor
) -> BatchTerms:
    """Forward pass of ``sum -log sigmoid(u . (p - n))``: the loss and each interaction's coefficient."""
    user_rows = tables.user.index_select(0, users)
    positive_rows = tables.item.index_select(0, positives)
    negative_rows = tables.item.index_select(0, negatives)
    difference = positive_rows - negative_rows
    x = _row_dot(user_rows, difference)
    loss = float(torch.nn.functional.softplus(-x).sum())
    coefficient = torch.sigmoid(-x).neg_()
    rows = (user_rows, positive_rows, negative_rows, difference)
    return BatchTerms(users, positives, negatives, coefficient, loss, rows)


def apply_bpr_update(tables: BPRTables, terms: BatchTerms, optim: OptimConfig) -> None:
    """Update the rows used by ``terms`` in place (row-wise AdaGrad or SGD, L2 on the used rows).

    Every row's gradient is rebuilt from the coefficients and the tables as they were before the
    step; repeated rows add up (``index_add_``, deterministic on CPU).
    """
    if optim.optimizer not in ("rowwise_adagrad", "sgd"):
        raise ValueError(
            f"the lean BPR step updates rows by 'rowwise_adagrad' or 'sgd', not {optim.optimizer!r}"
        )
    if terms.rows is not None:
        user_rows, positive_rows, negative_rows, difference = terms.rows
    else:
        user_rows = tables.user.index_select(0, terms.users)
        positive_rows = tables.item.index_select(0, terms.positives)
        negative_rows = tables.item.index_select(0, terms.negatives)
        difference = positive_rows - negative_rows
    c = terms.coefficient
    lr = optim.learning_rate
    if optim.l2:
        user_grad = difference.mul_(c.unsqueeze(1)).add_(user_rows, alpha=optim.l2)
        positive_grad = (user_rows * c.unsqueeze(1)).add_(positive_rows, alpha=optim.l2)
        negative_grad = (user_rows * (-c).unsqueeze(1)).add_(negative_rows, alpha=optim.l2)
        updates = (
            (tables.user, tables.user_state, terms.users, user_grad),
            (tables.item, tables.item_state, terms.positives, positive_grad),
            (tables.item, tables.item_state, terms.negatives, negative_grad),
        )
        if optim.optimizer == "rowwise_adagrad":  # every accumulator first, then the steps
            for _, state, index, grad in updates:
                state.index_add_(0, index, _row_dot(grad, grad).div_(grad.shape[1]))
        for table, state, index, grad in updates:
            scale = torch.full_like(c, -lr) if optim.optimizer == "sgd" else _adagrad_scale(state, index, lr)
            table.index_add_(0, index, grad.mul_(scale.unsqueeze(1)))
        return
    # without L2 the squared gradient norms are c^2 |p - n|^2 and c^2 |u|^2: no gradient rows needed
    if optim.optimizer == "sgd":
        user_scale = positive_scale = c * -lr
        negative_scale = c * lr
    else:
        dim = user_rows.shape[1]
        c2 = c * c / dim
        tables.user_state.index_add_(0, terms.users, c2 * _row_dot(difference, difference))
        item_square = c2 * _row_dot(user_rows, user_rows)
        tables.item_state.index_add_(0, terms.positives, item_square)
        tables.item_state.index_add_(0, terms.negatives, item_square)
        user_scale = _adagrad_scale(tables.user_state, terms.users, lr).mul_(c)
        positive_scale = _adagrad_scale(tables.item_state, terms.positives, lr).mul_(c)
        negative_scale = _adagrad_scale(tables.item_state, terms.negatives, lr).mul_(c).neg_()
    tables.user.index_add_(0, terms.users, difference.mul_(user_scale.unsqueeze(1)))
    tables.item.index_add_(0, terms.positives, user_rows * positive_scale.unsqueeze(1))
    tables.item.index_add_(0, terms.negatives, user_rows.mul_(negative_scale.unsqueeze(1)))


def _adagrad_scale(state: torch.Tensor, index: torch.Tensor, lr: float) -> torch.Tensor:
    """``-lr / sqrt(accumulator)`` of each used row."""
    return state.index_select(0, index).add_(1e-8).rsqrt_().mul_(-lr)


def run_epoch(
    tables: BPRTables,
    arrays: InteractionArrays,
    negative_filter: PositiveFilter | None,
    optim: OptimConfig,
    epoch: int,
    *,
    rank: int = 0,
    world_size: int = 1,
    sync: GradientSync | None = None,
    device: torch.device | str = "cpu",
) -> EpochStats:
    """One pass over the training interactions.

    Parameters
    ----------
    tables
        Updated in place.
    arrays
        Training interactions (memory-mapped).
    negative_filter
        Training pairs to reject as negatives (``None``: keep every uniform draw).
    optim
        ``batch_size``, ``seed``, ``optimizer``, ``learning_rate`` and ``l2``.
    epoch
        Epoch number (seeds the permutation and the negatives).
    rank, world_size
        This process's share: rank ``r`` computes the ``r``-th of ``world_size`` contiguous parts of
        every global batch.
    sync
        Combines the batch terms of all ranks (required when ``world_size > 1``).
    device
        Where the tables are (``cuda`` for NCCL runs); negatives are drawn on the CPU either way so
        that they do not depend on the device.

    Returns
    -------
    EpochStats
        The loss summed over this rank's interactions, their number and the wall/CPU seconds.
    """
    if world_size > 1 and sync is None:
        raise ValueError("world_size > 1 needs a gradient sync (see crossrec.distributed)")
    started, cpu_started = time.perf_counter(), time.process_time()
    stats = EpochStats()
    batches = global_batches(
        arrays, optim.batch_size, optim.seed, epoch, rank=rank, world_size=world_size,
        negative_filter=negative_filter, device=device,
    )  # fmt: skip
    for batch in batches:
        terms = bpr_terms(tables, batch.users, batch.positives, batch.negatives)
        stats.loss += terms.loss
        stats.interactions += len(batch.users)
        if sync is not None:
            terms = sync(terms)
        apply_bpr_update(tables, terms, optim)
    stats.seconds = time.perf_counter() - started
    stats.cpu_seconds = time.process_time() - cpu_started
    return stats


class LeanBPRTrainer:
    """BPR-MF tables trained by :func:`run_epoch` (the :class:`~crossrec.training.loop.EpochTrainer` of
    the lean step, on one process or as one rank of a data-parallel run).

    Parameters
    ----------
    tables
        Initial tables (on ``device``).
    arrays
        Training interactions (memory-mapped, or :func:`csr_arrays`).
    optim
        Settings.
    rank, world_size, sync, device
        This process's share of every global batch (see :func:`run_epoch`).
    """

    def __init__(
        self,
        tables: BPRTables,
        arrays: InteractionArrays,
        optim: OptimConfig,
        *,
        rank: int = 0,
        world_size: int = 1,
        sync: GradientSync | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        self.tables, self.arrays, self.optim = tables, arrays, optim
        self.rank, self.world_size, self.sync, self.device = rank, world_size, sync, device
        self.negative_filter = PositiveFilter(arrays, device=device) if optim.reject_positives else None

    def train_epoch(self, epoch: int) -> EpochStats:
        return run_epoch(
            self.tables, self.arrays, self.negative_filter, self.optim, epoch, rank=self.rank,
            world_size=self.world_size, sync=self.sync, device=self.device,
        )  # fmt: skip

    def vectors(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.tables.user, self.tables.item

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {key: value.clone() for key, value in self.tables.state_dict().items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for key, value in self.tables.state_dict().items():
            value.copy_(state[key].to(value.device))

    def save(self, folder: Path) -> None:
        from safetensors.torch import save_file

        state = {k: v.detach().cpu().contiguous() for k, v in self.tables.state_dict().items()}
        replace_file(folder, "tables.safetensors", lambda p: save_file(state, str(p)))

    def restore(self, folder: Path) -> None:
        from safetensors.torch import load_file

        self.load_state_dict(load_file(str(folder / "tables.safetensors")))
