"""A lean BPR-MF epoch for tens of millions of interactions: hand-written gradients, row-wise updates.

Autograd plus a dense optimizer touches every row of both tables on every step; at 25M interactions
that, not the arithmetic, is the cost. Here one step of ``B`` interactions

1. gathers the ``B`` user, positive and negative rows (``index_select``),
2. computes the BPR gradients in closed form (``d/dx -log sigmoid(x) = -sigmoid(-x)``),
3. updates only those rows with **row-wise AdaGrad** (one accumulator per row, the optimizer that
   FBGEMM/TorchRec use for large embedding tables) or plain SGD, through ``index_add_`` (repeated rows
   in a batch add up, deterministically on CPU).

Negatives are uniform items, drawn per global step from a generator seeded by ``(seed, epoch, step)``;
those that are a positive of the user (checked in a table of the training pairs, see
:class:`PositiveFilter`) are redrawn. Because the permutation, the negatives and the update depend only
on the global step, a data-parallel run that splits each global batch over ranks and combines the
gradients (:mod:`crossrec.training.distributed`) makes the same updates as one process.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from crossrec.data.arrays import InteractionArrays

__all__ = [
    "BPRTables",
    "BatchTerms",
    "EpochStats",
    "FastBPRConfig",
    "GradientSync",
    "PositiveFilter",
    "apply_bpr_update",
    "bpr_terms",
    "epoch_permutation",
    "run_epoch",
]

_MIX = -7046029254386353131  # 0x9E3779B97F4A7C15 as a signed int64 (Fibonacci hashing)


class FastBPRConfig(BaseModel):
    """Settings of the lean BPR-MF trainer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dim: int = Field(64, ge=1, description="Embedding size.")
    epochs: int = Field(20, ge=1, description="Passes over the training interactions (no early stopping).")
    batch_size: int = Field(32_768, ge=1, description="Interactions per global step (split over ranks).")
    learning_rate: float = Field(0.05, gt=0, description="Step size (row-wise AdaGrad or SGD).")
    optimizer: Literal["rowwise_adagrad", "sgd"] = Field("rowwise_adagrad", description="Row update rule.")
    l2: float = Field(0.0, ge=0, description="L2 penalty on the rows used in a step.")
    init_std: float = Field(0.1, gt=0, description="Standard deviation of the normal initialisation.")
    reject_positives: bool = Field(True, description="Redraw negatives that are training positives.")
    seed: int = Field(0, description="Seed of initialisation, permutations and negatives.")


@dataclass
class BPRTables:
    """User and item tables with their row-wise AdaGrad accumulators (all plain CPU tensors)."""

    user: torch.Tensor
    item: torch.Tensor
    user_state: torch.Tensor
    item_state: torch.Tensor

    @classmethod
    def initialise(cls, n_users: int, n_items: int, config: FastBPRConfig) -> BPRTables:
        generator = torch.Generator().manual_seed(config.seed)
        user = torch.randn(n_users, config.dim, generator=generator) * config.init_std
        item = torch.randn(n_items, config.dim, generator=generator) * config.init_std
        return cls(user, item, torch.zeros(n_users), torch.zeros(n_items))

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


class PositiveFilter:
    """Membership test for (user, item) training pairs, vectorised over a batch.

    When users x items fits ``max_slots`` (2^28 by default), one boolean per (user, item) cell gives an
    exact answer; otherwise a hashed table with about 8 slots per pair (Fibonacci hashing) is used,
    where a false "positive" (about 12% of other pairs) only costs a redraw of that negative.
    """

    def __init__(
        self, arrays: InteractionArrays, max_slots: int = 1 << 28, device: torch.device | str = "cpu"
    ) -> None:
        self.n_items = arrays.n_items
        cells = arrays.n_users * arrays.n_items
        self.exact = cells <= max_slots
        if self.exact:
            slots, self.bits = cells, 0
        else:
            self.bits = min(int(np.log2(max_slots)), max(10, int(np.ceil(np.log2(8 * max(len(arrays), 1))))))
            slots = 1 << self.bits
        self.table = torch.zeros(slots, dtype=torch.bool, device=device)
        for _, users, items in arrays.chunks():
            keys = self._slot(
                torch.from_numpy(users.astype(np.int64)).to(device),
                torch.from_numpy(items.astype(np.int64)).to(device),
            )
            self.table[keys] = True

    def _slot(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        keys = users * self.n_items + items
        if self.exact:
            return keys
        return ((keys * _MIX) >> (64 - self.bits)) & ((1 << self.bits) - 1)

    def contains(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Boolean tensor: is ``(users[k], items[k])`` (probably) a training pair."""
        return self.table[self._slot(users, items)]


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


def apply_bpr_update(tables: BPRTables, terms: BatchTerms, config: FastBPRConfig) -> None:
    """Update the rows used by ``terms`` in place (row-wise AdaGrad or SGD, L2 on the used rows).

    Every row's gradient is rebuilt from the coefficients and the tables as they were before the
    step; repeated rows add up (``index_add_``, deterministic on CPU).
    """
    if terms.rows is not None:
        user_rows, positive_rows, negative_rows, difference = terms.rows
    else:
        user_rows = tables.user.index_select(0, terms.users)
        positive_rows = tables.item.index_select(0, terms.positives)
        negative_rows = tables.item.index_select(0, terms.negatives)
        difference = positive_rows - negative_rows
    c = terms.coefficient
    lr = config.learning_rate
    if config.l2:
        user_grad = difference.mul_(c.unsqueeze(1)).add_(user_rows, alpha=config.l2)
        positive_grad = (user_rows * c.unsqueeze(1)).add_(positive_rows, alpha=config.l2)
        negative_grad = (user_rows * (-c).unsqueeze(1)).add_(negative_rows, alpha=config.l2)
        updates = (
            (tables.user, tables.user_state, terms.users, user_grad),
            (tables.item, tables.item_state, terms.positives, positive_grad),
            (tables.item, tables.item_state, terms.negatives, negative_grad),
        )
        if config.optimizer == "rowwise_adagrad":  # every accumulator first, then the steps
            for _, state, index, grad in updates:
                state.index_add_(0, index, _row_dot(grad, grad).div_(grad.shape[1]))
        for table, state, index, grad in updates:
            scale = torch.full_like(c, -lr) if config.optimizer == "sgd" else _adagrad_scale(state, index, lr)
            table.index_add_(0, index, grad.mul_(scale.unsqueeze(1)))
        return
    # without L2 the squared gradient norms are c^2 |p - n|^2 and c^2 |u|^2: no gradient rows needed
    if config.optimizer == "sgd":
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


def _step_seed(seed: int, epoch: int, step: int) -> int:
    return int(np.random.SeedSequence([seed, epoch, step]).generate_state(1, np.uint64)[0] >> 1)


def epoch_permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    """The seeded order of the interactions in ``epoch`` (the same on every rank)."""
    return (
        np.random.default_rng([seed, epoch, 1 << 30])
        .permutation(n)
        .astype(np.int64 if n >= 2**31 else np.int32)
    )


@dataclass
class EpochStats:
    """Loss and timing of one epoch on this rank."""

    loss: float = 0.0
    interactions: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)


def run_epoch(
    tables: BPRTables,
    arrays: InteractionArrays,
    negative_filter: PositiveFilter | None,
    config: FastBPRConfig,
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
    config
        Settings.
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
        raise ValueError("world_size > 1 needs a gradient sync (see crossrec.training.distributed)")
    started, cpu_started = time.perf_counter(), time.process_time()
    n = len(arrays)
    order = epoch_permutation(n, config.seed, epoch)
    stats = EpochStats()
    user_column, item_column = arrays.user, arrays.item
    for step, start in enumerate(range(0, n, config.batch_size)):
        size = min(config.batch_size, n - start)
        share = -(-size // world_size)
        low, high = min(size, rank * share), min(size, (rank + 1) * share)
        rows = order[start + low : start + high]
        users = torch.from_numpy(user_column[rows].astype(np.int64)).to(device)
        positives = torch.from_numpy(item_column[rows].astype(np.int64)).to(device)
        generator = torch.Generator().manual_seed(_step_seed(config.seed, epoch, step))
        negatives = torch.randint(arrays.n_items, (size,), generator=generator)[low:high].to(device)
        if negative_filter is not None and arrays.n_items > 1:
            clash = negative_filter.contains(users, negatives).nonzero().view(-1)
            for _ in range(3):  # redraws come from the step's generator: the same on every rank
                redraw = torch.randint(arrays.n_items, (size,), generator=generator)[low:high].to(device)
                if len(clash) == 0:
                    continue
                negatives[clash] = redraw[clash]
                clash = clash[negative_filter.contains(users[clash], negatives[clash])]
        terms = bpr_terms(tables, users, positives, negatives)
        stats.loss += terms.loss
        stats.interactions += len(rows)
        if sync is not None:
            terms = sync(terms)
        apply_bpr_update(tables, terms, config)
    stats.seconds = time.perf_counter() - started
    stats.cpu_seconds = time.process_time() - cpu_started
    return stats
