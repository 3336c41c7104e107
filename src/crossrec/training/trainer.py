"""The single-process trainer of embedding models: negative sampling, BPR or sampled-softmax loss,
Adam (or SGD), per-interaction weights (e.g. a source domain's weight in joint training), driven by
the shared epoch loop (:func:`crossrec.training.loop.run_epochs`: early stopping on a validation
metric, checkpoints with exact resume, progress)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from crossrec.ranking.topk import FactorScorer
from crossrec.training.loop import EpochStats, ModuleState, TrainingHistory, ranking_validation, run_epochs
from crossrec.training.optim import OptimConfig
from crossrec.training.sampling import NegativeSampler

__all__ = [
    "EmbeddingModule",
    "PairwiseTrainer",
    "Validation",
    "build_optimizer",
    "interaction_losses",
    "table_validation",
    "train_embedding_model",
]

#: Custom validation: ``(user_table, item_table) -> score`` (higher is better).
Validation = Callable[[torch.Tensor, torch.Tensor], float]


class EmbeddingModule(Protocol):
    """What the trainer needs of a model: final user and item embeddings (after any towers or
    graph propagation) whose dot products are the scores."""

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]: ...

    def parameters(self): ...

    def train(self, mode: bool = True) -> nn.Module: ...


def build_optimizer(
    groups: Iterable[torch.nn.Parameter] | list[dict], optim: OptimConfig, *, weight_decay: float = 0.0
) -> torch.optim.Optimizer:
    """The torch optimizer ``optim.optimizer`` names (``adam`` or ``sgd``) at ``optim.learning_rate``."""
    if optim.optimizer == "adam":
        return torch.optim.Adam(groups, lr=optim.learning_rate, weight_decay=weight_decay)
    if optim.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=optim.learning_rate, weight_decay=weight_decay)
    raise ValueError(
        f"optim.optimizer={optim.optimizer!r} is the lean row-wise step of BPR-MF "
        "(crossrec.training.fast_bpr), not an autograd optimizer; use 'adam' or 'sgd' here"
    )


def table_validation(
    train: sp.csr_matrix, valid: sp.csr_matrix, optim: OptimConfig
) -> Callable[[torch.Tensor, torch.Tensor], float]:
    """Validation of dot-product tables: ``optim.valid_metric`` on ``valid``, training items excluded."""

    def score(users: torch.Tensor, items: torch.Tensor) -> float:
        scorer = FactorScorer(users.detach().cpu().numpy(), items.detach().cpu().numpy())
        return ranking_validation(scorer, valid, train, optim)

    return score


class PairwiseTrainer(ModuleState):
    """One process's epochs over (user, positive, negatives) triples of a training matrix, for a module
    with ``embeddings() -> (users, items)``; the numpy generator shuffles and draws the negatives.

    Parameters
    ----------
    module
        Trained in place.
    train
        Binary user x item training matrix.
    optim
        ``batch_size``, ``loss``, ``negatives``, ``reject_positives``, ``l2``, ``optimizer``,
        ``learning_rate``, ``seed``.
    parameter_groups
        Optimizer parameter groups (default: every trainable parameter).
    weights
        Loss weight per training interaction, aligned with ``train``'s CSR entries.
    """

    def __init__(
        self,
        module: nn.Module,
        train: sp.csr_matrix,
        optim: OptimConfig,
        *,
        parameter_groups: list[dict] | None = None,
        weights: np.ndarray | None = None,
    ) -> None:
        self.module, self.optim = module, optim
        self.rng = np.random.default_rng(optim.seed)
        self.users = np.repeat(np.arange(train.shape[0], dtype=np.int64), np.diff(train.indptr))
        self.items = train.indices.astype(np.int64)
        if len(self.users) == 0:
            raise ValueError("cannot train on an empty training matrix")
        self.weights = None
        if weights is not None:
            self.weights = np.asarray(weights, dtype=np.float32)
            if self.weights.shape != (len(self.users),):
                raise ValueError(
                    f"weights has shape {self.weights.shape}, expected one per interaction "
                    f"({len(self.users)},)"
                )
        self.sampler = NegativeSampler(train, rounds=4 if optim.reject_positives else 0)
        groups = parameter_groups or [{"params": [p for p in module.parameters() if p.requires_grad]}]
        self.optimizer = build_optimizer(groups, optim)

    def train_epoch(self, epoch: int) -> EpochStats:
        started = time.perf_counter()
        self.module.train()
        order = self.rng.permutation(len(self.users))
        total = 0.0
        for start in range(0, len(order), self.optim.batch_size):
            batch = order[start : start + self.optim.batch_size]
            users = self.users[batch]
            negatives = self.sampler.sample(users, self.optim.negatives, self.rng)
            weights = None if self.weights is None else torch.from_numpy(self.weights[batch])
            loss = _batch_loss(
                self.module, torch.from_numpy(users), torch.from_numpy(self.items[batch]),
                torch.from_numpy(negatives), self.optim, weights,
            )  # fmt: skip
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total += float(loss.detach()) * len(batch)
        return EpochStats(loss=total, interactions=len(order), seconds=time.perf_counter() - started)

    def vectors(self) -> tuple[torch.Tensor, torch.Tensor]:
        self.module.eval()
        with torch.no_grad():
            users, items = self.module.embeddings()
        return users.detach(), items.detach()


def train_embedding_model(
    module: nn.Module,
    train: sp.csr_matrix,
    valid: sp.csr_matrix | None,
    optim: OptimConfig,
    *,
    parameter_groups: list[dict] | None = None,
    label: str = "training",
    weights: np.ndarray | None = None,
    validation: Validation | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
) -> TrainingHistory:
    """Train ``module`` in place; on return it holds the weights of the best validation epoch.

    Parameters
    ----------
    module
        A ``torch.nn.Module`` with ``embeddings() -> (user_table, item_table)``.
    train
        Binary user x item matrix of training positives.
    valid
        Binary matrix of validation positives for early stopping (``None``: train all epochs).
    optim
        Optimisation settings.
    parameter_groups
        Optional optimizer parameter groups (e.g. a lower learning rate for transferred weights);
        default: all trainable parameters at ``optim.learning_rate``.
    label
        Label of the progress bar.
    weights
        Optional loss weight per training interaction, aligned with ``train``'s CSR entries
        (row by row); e.g. a source domain's weight in joint training.
    validation
        Optional custom early-stopping score ``(user_table, item_table) -> float`` used instead of
        ranking ``valid`` (e.g. to rank only the target block of a joint model); with it, ``valid``
        may be ``None`` and early stopping still happens.
    checkpoint_dir, resume
        Checkpoint folder, and whether to continue from the checkpoint there (see
        :func:`~crossrec.training.loop.run_epochs`).
    """
    if optim.threads:
        torch.set_num_threads(optim.threads)
    torch.manual_seed(optim.seed)
    train = sp.csr_matrix(train)
    trainer = PairwiseTrainer(module, train, optim, parameter_groups=parameter_groups, weights=weights)
    scoring = validation
    if scoring is None and valid is not None:
        scoring = table_validation(train, valid, optim)
    history = run_epochs(
        trainer, optim, validate=None if scoring is None else lambda: scoring(*trainer.vectors()),
        label=label, checkpoint_dir=checkpoint_dir, resume=resume,
    )  # fmt: skip
    module.eval()
    return history


def _batch_loss(
    module: nn.Module,
    users: torch.Tensor,
    positives: torch.Tensor,
    negatives: torch.Tensor,
    optim: OptimConfig,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    user_table, item_table = module.embeddings()
    per_row, penalty = interaction_losses(user_table, item_table, users, positives, negatives, optim.loss)
    loss = per_row.mean() if weights is None else (per_row * weights).sum() / weights.sum().clamp_min(1e-12)
    if optim.l2:
        loss = loss + optim.l2 * penalty / len(users)
    return loss


def interaction_losses(
    user_table: torch.Tensor,
    item_table: torch.Tensor,
    users: torch.Tensor,
    positives: torch.Tensor,
    negatives: torch.Tensor,
    loss: Literal["bpr", "softmax"],
) -> tuple[torch.Tensor, torch.Tensor]:
    """The loss of each interaction and the squared norm of the rows it used.

    Parameters
    ----------
    user_table, item_table
        Final embeddings (after towers or propagation).
    users, positives
        ``(B,)`` interactions.
    negatives
        ``(B, negatives)`` sampled items.
    loss
        ``"bpr"`` (mean over the negatives of ``-log sigmoid(s+ - s-)``) or ``"softmax"`` (cross-entropy
        of the positive among itself and the negatives).

    Returns
    -------
    (torch.Tensor, torch.Tensor)
        ``(B,)`` losses and the scalar sum of squared user, positive and negative rows (the L2 penalty
        before its weight).
    """
    user_vectors = user_table[users]
    positive_vectors = item_table[positives]
    negative_vectors = item_table[negatives]  # (batch, negatives, dim)
    positive_scores = (user_vectors * positive_vectors).sum(-1)
    negative_scores = torch.einsum("bd,bnd->bn", user_vectors, negative_vectors)
    if loss == "bpr":
        per_row = -torch.nn.functional.logsigmoid(positive_scores[:, None] - negative_scores).mean(dim=1)
    else:
        logits = torch.cat([positive_scores[:, None], negative_scores], dim=1)
        per_row = torch.nn.functional.cross_entropy(
            logits, torch.zeros(len(users), dtype=torch.long, device=logits.device), reduction="none"
        )
    penalty = user_vectors.pow(2).sum() + positive_vectors.pow(2).sum() + negative_vectors.pow(2).sum()
    return per_row, penalty
