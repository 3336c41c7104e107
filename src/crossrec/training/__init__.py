"""crossrec.training: the mini-batch trainer of gradient-based models, negative sampling and checkpoints."""

from crossrec.training.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from crossrec.training.sampling import NegativeSampler
from crossrec.training.trainer import (
    EmbeddingModule,
    TrainerConfig,
    TrainingHistory,
    Validation,
    train_embedding_model,
)

__all__ = [
    "Checkpoint",
    "EmbeddingModule",
    "NegativeSampler",
    "TrainerConfig",
    "TrainingHistory",
    "Validation",
    "load_checkpoint",
    "save_checkpoint",
    "train_embedding_model",
]
