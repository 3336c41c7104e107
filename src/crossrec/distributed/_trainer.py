"""What one model contributes to a data-parallel run; the run loop (:mod:`._run`) does the rest."""

from __future__ import annotations

from typing import Protocol

import torch

from crossrec.models.base import Recommender
from crossrec.training.loop import EpochStats, EpochTrainer

__all__ = ["DataParallelTrainer", "EpochStats"]


class DataParallelTrainer(EpochTrainer, Protocol):
    """A model's replica on this rank: an :class:`~crossrec.training.loop.EpochTrainer` (its epoch over
    the global batches, its state) plus what a data-parallel run needs.

    The run calls :meth:`synchronise` once, then the shared epoch loop
    (:func:`crossrec.training.run_epochs`: ``restore`` when resuming, ``train_epoch``, ``state_dict`` for
    the best epoch, ``save`` on rank 0), :meth:`vectors` for validation and test, and on rank 0
    :meth:`fitted_model`.
    """

    def synchronise(self) -> None:
        """Make every replica equal to rank 0's (and set up gradient communication)."""

    def vectors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Current final user and item vectors (their dot products are the scores)."""

    def fitted_model(self) -> Recommender:
        """The trained model, ready for :meth:`~crossrec.models.base.Recommender.save`."""
