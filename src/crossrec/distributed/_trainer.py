"""What one model contributes to a data-parallel run; the run loop (:mod:`._run`) does the rest."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import torch

from crossrec.models.base import Recommender
from crossrec.training.fast_bpr import EpochStats

__all__ = ["DataParallelTrainer", "EpochStats"]


class DataParallelTrainer(Protocol):
    """A model's replica on this rank: its epoch over the global batches and its state.

    The shared run loop calls :meth:`restore` (when resuming), then :meth:`synchronise` once, then
    :meth:`train_epoch` for each remaining epoch, :meth:`vectors` for validation and test, and on rank 0
    :meth:`save` and :meth:`fitted_model`.
    """

    #: Epochs of the whole run.
    epochs: int

    def restore(self, folder: Path) -> None:
        """Load the state written by :meth:`save` into this replica."""

    def synchronise(self) -> None:
        """Make every replica equal to rank 0's (and set up gradient communication)."""

    def train_epoch(self, epoch: int) -> EpochStats:
        """Walk this rank's parts of the epoch's global batches, updating the replica after each step.

        Returns the data loss summed over this rank's interactions and their number.
        """

    def vectors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Current final user and item vectors (their dot products are the scores)."""

    def save(self, folder: Path) -> None:
        """Write the replica's weights and optimizer state into ``folder`` (each file atomically)."""

    def fitted_model(self) -> Recommender:
        """The trained model, ready for :meth:`~crossrec.models.base.Recommender.save`."""
