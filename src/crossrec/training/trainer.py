"""Mini-batch trainer for embedding models: negative sampling, BPR or sampled-softmax loss,
Adam, early stopping on a validation metric, seeded determinism, checkpoints with exact resume,
per-interaction weights (e.g. a source domain's weight in joint training) and Rich progress."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import scipy.sparse as sp
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from crossrec.metrics.ranking import evaluate_ranking
from crossrec.ranking.topk import FactorScorer
from crossrec.training.checkpoint import load_checkpoint, save_checkpoint
from crossrec.training.sampling import NegativeSampler

__all__ = [
    "EmbeddingModule",
    "TrainerConfig",
    "TrainingHistory",
    "Validation",
    "interaction_losses",
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


class TrainerConfig(BaseModel):
    """Optimisation settings of :func:`train_embedding_model`."""

    model_config = ConfigDict(extra="forbid")

    epochs: int = Field(200, ge=1, description="Maximum number of passes over the training interactions.")
    batch_size: int = Field(2048, ge=1, description="Interactions per gradient step.")
    learning_rate: float = Field(1e-3, gt=0, description="Adam learning rate.")
    l2: float = Field(0.0, ge=0, description="L2 penalty on the embeddings used in each batch.")
    loss: Literal["bpr", "softmax"] = Field("bpr", description="Pairwise BPR or sampled softmax.")
    n_negatives: int = Field(1, ge=1, description="Sampled negatives per positive.")
    patience: int = Field(10, ge=1, description="Evaluations without improvement before stopping.")
    eval_every: int = Field(1, ge=1, description="Epochs between validation evaluations.")
    valid_metric: str = Field("ndcg@10", description="Validation metric for early stopping.")
    seed: int = Field(0, description="Seed for initialisation, shuffling and sampling.")
    num_threads: int | None = Field(None, ge=1, description="torch.set_num_threads; None keeps torch's.")
    progress: bool = Field(True, description="Show a Rich progress bar.")
    checkpoint_every: int = Field(
        1, ge=1, description="Epochs between checkpoints (with a checkpoint folder)."
    )


@dataclass
class TrainingHistory:
    """Per-epoch records (``epoch``, ``loss``, ``seconds`` and the validation metric when evaluated)."""

    epochs: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    best_score: float = float("-inf")
    seconds: float = 0.0


def _validation_score(
    users: torch.Tensor, items: torch.Tensor, train: sp.csr_matrix, valid: sp.csr_matrix, metric: str
) -> float:
    name, k = metric.split("@")
    result = evaluate_ranking(
        FactorScorer(users.detach().numpy(), items.detach().numpy()),
        valid,
        train,
        metrics=[name],
        ks=[int(k)],
    )
    return result.mean()[metric]


def train_embedding_model(
    module: nn.Module,
    train: sp.csr_matrix,
    valid: sp.csr_matrix | None,
    config: TrainerConfig,
    *,
    parameter_groups: list[dict] | None = None,
    description: str = "training",
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
    config
        Optimisation settings.
    parameter_groups
        Optional Adam parameter groups (e.g. a lower learning rate for transferred weights);
        default: all trainable parameters at ``config.learning_rate``.
    description
        Label of the progress bar.
    weights
        Optional loss weight per training interaction, aligned with ``train``'s CSR entries
        (row by row); e.g. a source domain's weight in joint training.
    validation
        Optional custom early-stopping score ``(user_table, item_table) -> float`` used instead of
        ranking ``valid`` (e.g. to rank only the target block of a joint model); with it, ``valid``
        may be ``None`` and early stopping still happens.
    checkpoint_dir
        Folder for checkpoints (every ``config.checkpoint_every`` epochs and at the end).
    resume
        Continue from the checkpoint in ``checkpoint_dir`` when there is one: the result is the
        same as an uninterrupted run with the same settings.
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    train = sp.csr_matrix(train)
    users_all = np.repeat(np.arange(train.shape[0], dtype=np.int64), np.diff(train.indptr))
    items_all = train.indices.astype(np.int64)
    if len(users_all) == 0:
        raise ValueError("cannot train on an empty training matrix")
    weights_all = None
    if weights is not None:
        weights_all = np.asarray(weights, dtype=np.float32)
        if weights_all.shape != (len(users_all),):
            raise ValueError(
                f"weights has shape {weights_all.shape}, expected one per interaction ({len(users_all)},)"
            )
    sampler = NegativeSampler(train)
    groups = parameter_groups or [{"params": [p for p in module.parameters() if p.requires_grad]}]
    optimizer = torch.optim.Adam(groups, lr=config.learning_rate)
    history = TrainingHistory()
    best_state = copy.deepcopy(module.state_dict())
    stale = 0
    first_epoch = 1
    folder = Path(checkpoint_dir) if checkpoint_dir is not None else None
    if folder is not None and resume:
        restored = load_checkpoint(folder, module=module, optimizer=optimizer, rng=rng)
        if restored is not None:
            first_epoch, stale, best_state = restored.epoch + 1, restored.stale, restored.best_state
            history = TrainingHistory(**restored.history)
    scoring = validation
    if scoring is None and valid is not None:

        def scoring(users: torch.Tensor, items: torch.Tensor) -> float:
            return _validation_score(users, items, train, valid, config.valid_metric)

    started = time.perf_counter() - history.seconds

    def checkpoint(epoch: int) -> None:
        if folder is not None:
            history.seconds = time.perf_counter() - started
            save_checkpoint(
                folder, module=module, best_state=best_state, optimizer=optimizer, rng=rng,
                epoch=epoch, stale=stale, history=asdict(history),
            )  # fmt: skip

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("epoch {task.completed}/{task.total}"),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        disable=not config.progress,
        transient=False,
    )
    stopped = scoring is not None and stale >= config.patience
    with progress:
        task = progress.add_task(description, total=config.epochs, status="", completed=first_epoch - 1)
        for epoch in range(first_epoch, config.epochs + 1):
            if stopped:
                break
            epoch_start = time.perf_counter()
            module.train()
            order = rng.permutation(len(users_all))
            total_loss = 0.0
            for start in range(0, len(order), config.batch_size):
                batch = order[start : start + config.batch_size]
                users = users_all[batch]
                negatives = sampler.sample(users, config.n_negatives, rng)
                loss = _batch_loss(
                    module,
                    torch.from_numpy(users),
                    torch.from_numpy(items_all[batch]),
                    torch.from_numpy(negatives),
                    config,
                    None if weights_all is None else torch.from_numpy(weights_all[batch]),
                )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total_loss += float(loss.detach()) * len(batch)
            record: dict[str, float] = {
                "epoch": epoch,
                "loss": total_loss / len(order),
                "seconds": time.perf_counter() - epoch_start,
            }
            status = f"loss {record['loss']:.4f}"
            if scoring is not None and epoch % config.eval_every == 0:
                module.eval()
                with torch.no_grad():
                    user_table, item_table = (t.detach() for t in module.embeddings())
                score = float(scoring(user_table, item_table))
                record[f"valid_{config.valid_metric}"] = score
                status += f"  valid {config.valid_metric} {score:.4f}"
                if score > history.best_score:
                    history.best_score, history.best_epoch = score, epoch
                    best_state = copy.deepcopy(module.state_dict())
                    stale = 0
                else:
                    stale += 1
            history.epochs.append(record)
            progress.update(task, advance=1, status=status)
            stopped = scoring is not None and stale >= config.patience
            if epoch % config.checkpoint_every == 0 or stopped or epoch == config.epochs:
                checkpoint(epoch)
        if scoring is None:
            best_state = module.state_dict()
            history.best_epoch = len(history.epochs)
    module.load_state_dict(best_state)
    module.eval()
    history.seconds = time.perf_counter() - started
    return history


def _batch_loss(
    module: nn.Module,
    users: torch.Tensor,
    positives: torch.Tensor,
    negatives: torch.Tensor,
    config: TrainerConfig,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    user_table, item_table = module.embeddings()
    per_row, penalty = interaction_losses(user_table, item_table, users, positives, negatives, config.loss)
    loss = per_row.mean() if weights is None else (per_row * weights).sum() / weights.sum().clamp_min(1e-12)
    if config.l2:
        loss = loss + config.l2 * penalty / len(users)
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
        ``(B, n_negatives)`` sampled items.
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
    negative_vectors = item_table[negatives]  # (batch, n_negatives, dim)
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
