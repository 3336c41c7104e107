"""Seeded global batches of data-parallel training: the epoch's permutation, each rank's share, negatives.

Every data-parallel trainer (:mod:`crossrec.training.fast_bpr` for BPR-MF, and the autograd trainers of
LightGCN and the two-tower model in :mod:`crossrec.distributed`) walks the training
interactions through :func:`global_batches`:

* one permutation per epoch, seeded by ``(seed, epoch)`` and the same on every rank, cut into global
  batches of ``batch_size`` interactions;
* rank ``r`` of ``world_size`` takes the ``r``-th contiguous part of every global batch (like
  ``torch.utils.data.DistributedSampler``, but aligned on steps, so every rank takes the same number of
  steps, possibly with an empty part at the end);
* negatives are drawn for the whole global batch from a generator seeded by ``(seed, epoch, step)``,
  and each rank keeps its part; those that are training positives of the user are redrawn from the
  same generator (:class:`PositiveFilter`).

So the interactions and negatives of a global step depend only on ``(seed, epoch, step)``, never on the
world size, and a run on ``N`` ranks can make the same update as one process.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from crossrec.data.arrays import InteractionArrays

__all__ = ["GlobalBatch", "PositiveFilter", "epoch_permutation", "global_batches", "step_seed"]

_MIX = -7046029254386353131  # 0x9E3779B97F4A7C15 as a signed int64 (Fibonacci hashing)
_REDRAWS = 3


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


def step_seed(seed: int, epoch: int, step: int, stream: int = 0) -> int:
    """A 63-bit seed for global step ``step`` of ``epoch``; ``stream`` separates independent uses."""
    entropy = [seed, epoch, step] if stream == 0 else [seed, epoch, step, stream]
    return int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0] >> 1)


def epoch_permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    """The seeded order of the interactions in ``epoch`` (the same on every rank)."""
    return (
        np.random.default_rng([seed, epoch, 1 << 30])
        .permutation(n)
        .astype(np.int64 if n >= 2**31 else np.int32)
    )


@dataclass(frozen=True)
class GlobalBatch:
    """This rank's part of one global batch.

    Attributes
    ----------
    step
        Global step within the epoch (0-based).
    size
        Interactions in the whole global batch (over all ranks): the loss is averaged over them.
    users, positives
        ``int64`` indices of this rank's interactions (possibly none).
    negatives
        ``(part,)`` negatives when one per positive is drawn, else ``(part, n_negatives)``.
    """

    step: int
    size: int
    users: torch.Tensor
    positives: torch.Tensor
    negatives: torch.Tensor


def global_batches(
    arrays: InteractionArrays,
    batch_size: int,
    seed: int,
    epoch: int,
    *,
    rank: int = 0,
    world_size: int = 1,
    n_negatives: int = 1,
    negative_filter: PositiveFilter | None = None,
    device: torch.device | str = "cpu",
) -> Iterator[GlobalBatch]:
    """This rank's parts of the epoch's global batches, with their negatives.

    Parameters
    ----------
    arrays
        Training interactions (memory-mapped).
    batch_size
        Interactions per global batch (over all ranks).
    seed, epoch
        Seed the permutation and, with the step, the negatives.
    rank, world_size
        Rank ``r`` takes the ``r``-th of ``world_size`` contiguous parts (of ``ceil(size / world_size)``
        interactions) of every global batch.
    n_negatives
        Uniform negative items per positive.
    negative_filter
        Training pairs to redraw as negatives (up to three rounds; ``None``: keep every draw).
    device
        Where the index tensors go; negatives are drawn on the CPU, so they do not depend on it.
    """
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
    n = len(arrays)
    order = epoch_permutation(n, seed, epoch)
    user_column, item_column = arrays.user, arrays.item
    for step, start in enumerate(range(0, n, batch_size)):
        size = min(batch_size, n - start)
        share = -(-size // world_size)
        low, high = min(size, rank * share), min(size, (rank + 1) * share)
        rows = order[start + low : start + high]
        users = torch.from_numpy(user_column[rows].astype(np.int64)).to(device)
        positives = torch.from_numpy(item_column[rows].astype(np.int64)).to(device)
        generator = torch.Generator().manual_seed(step_seed(seed, epoch, step))
        part = slice(low * n_negatives, high * n_negatives)
        negatives = torch.randint(arrays.n_items, (size * n_negatives,), generator=generator)[part].to(device)
        if negative_filter is not None and arrays.n_items > 1:
            owners = users if n_negatives == 1 else users.repeat_interleave(n_negatives)
            clash = negative_filter.contains(owners, negatives).nonzero().view(-1)
            for _ in range(_REDRAWS):  # redraws come from the step's generator: the same on every rank
                redraw = torch.randint(arrays.n_items, (size * n_negatives,), generator=generator)[part]
                if len(clash) == 0:
                    continue
                negatives[clash] = redraw.to(device)[clash]
                clash = clash[negative_filter.contains(owners[clash], negatives[clash])]
        if n_negatives > 1:
            negatives = negatives.view(-1, n_negatives)
        yield GlobalBatch(step, size, users, positives, negatives)
