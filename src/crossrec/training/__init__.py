"""crossrec.training: the one optimiser configuration (:class:`OptimConfig`), the one epoch loop
(:func:`run_epochs`) and the trainers it drives: the pairwise trainer of embedding models, the lean
BPR-MF step, seeded global batches for data-parallel runs, negative sampling and checkpoints."""

from crossrec.training.checkpoint import Checkpoint, load_loop_state, save_loop_state
from crossrec.training.loop import EpochStats, EpochTrainer, TrainingHistory, ranking_validation, run_epochs
from crossrec.training.optim import OptimConfig, Optimizer, merge_optim
from crossrec.training.sampling import NegativeSampler
from crossrec.training.trainer import (
    EmbeddingModule,
    PairwiseTrainer,
    Validation,
    build_optimizer,
    train_embedding_model,
)

__all__ = [
    "Checkpoint",
    "EmbeddingModule",
    "EpochStats",
    "EpochTrainer",
    "NegativeSampler",
    "OptimConfig",
    "Optimizer",
    "PairwiseTrainer",
    "TrainingHistory",
    "Validation",
    "build_optimizer",
    "load_loop_state",
    "merge_optim",
    "ranking_validation",
    "run_epochs",
    "save_loop_state",
    "train_embedding_model",
]
