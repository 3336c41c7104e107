"""What every rank runs: the shared epoch loop (validation, early stopping, rank-0 checkpoints),
sharded evaluation, rank-0 outputs."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import torch
import torch.distributed as dist

from crossrec.data.arrays import InteractionArrays
from crossrec.distributed._config import DistributedResult, DistributedTrainConfig
from crossrec.distributed._context import RankContext, all_sum
from crossrec.distributed._data import open_item_features, open_parts
from crossrec.distributed._evaluation import sharded_evaluation, sharded_mean
from crossrec.distributed._trainer import DataParallelTrainer
from crossrec.models.embedding import EmbeddingRecommender
from crossrec.models.mf import BPRMF
from crossrec.ranking.topk import set_kernel_threads
from crossrec.training.loop import TrainingHistory, run_epochs

__all__ = ["build_trainer", "run_rank"]


def build_trainer(
    config: DistributedTrainConfig,
    parts: dict[str, InteractionArrays],
    context: RankContext,
    model: EmbeddingRecommender | None = None,
) -> DataParallelTrainer:
    """This rank's replica of the run's model, freshly initialised (seeded): the lean row-wise step
    for BPR-MF with ``optimizer="rowwise_adagrad"``, else the autograd module under DDP."""
    model = model if model is not None else config.build_model()
    train = parts["train"]
    if isinstance(model, BPRMF) and model.optim.optimizer == "rowwise_adagrad":
        from crossrec.distributed.bpr import BPRTrainer

        return BPRTrainer(model, train, context)
    from crossrec.distributed.autograd import AutogradTrainer

    if config.model == "two_tower":
        features = open_item_features(config)
        if config.item_columns and features is None:  # pragma: no cover - prepare_data writes them
            raise ValueError(f"item_modalities={config.item_columns} but no item features were prepared")
        module = model.build_module(train.to_csr(), item_features=features)
    else:
        module = model.build_module(train.to_csr())
    return AutogradTrainer(model, module, train, context)


def run_rank(config: DistributedTrainConfig, context: RankContext | None = None) -> DistributedResult | None:
    """Train and evaluate as one rank (the whole run when there is a single process).

    Parameters
    ----------
    config
        The run; its data must have been written by :func:`~crossrec.distributed.prepare_data`.
    context
        This process's rank; default: from torchrun's environment (joining the process group).

    Returns
    -------
    DistributedResult or None
        The result on rank 0, ``None`` on the other ranks.
    """
    context = context or RankContext.from_environment(config.backend)
    threads = config.optim.threads or 1
    torch.set_num_threads(threads)
    if context.distributed:  # the evaluation kernels use the rank's threads too, not every core
        set_kernel_threads(threads)
    try:
        return _run(config, context)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def _agree_on_checkpoint(folder: Path, context: RankContext):
    def check(epoch: int) -> None:
        if not context.distributed:
            return
        # a rank that cannot see rank 0's checkpoint would run other epochs: hang
        epochs = [torch.zeros(1, dtype=torch.int64, device=context.device) for _ in range(context.world_size)]
        dist.all_gather(epochs, torch.tensor([epoch], dtype=torch.int64, device=context.device))
        if len({int(value) for value in epochs}) > 1:
            raise RuntimeError(
                f"ranks found checkpoints of different epochs in {folder} "
                f"({[int(value) for value in epochs]}); put the run folder on a file system all "
                "machines share, or start without resume"
            )

    return check


def _run(config: DistributedTrainConfig, context: RankContext) -> DistributedResult | None:
    parts = open_parts(config)
    if len(parts["train"]) == 0:
        raise ValueError(f"{parts['train'].folder}: no training interactions")
    model = config.build_model()
    optim = model.optim
    trainer = build_trainer(config, parts, context, model)
    trainer.synchronise()
    checkpoint_dir = config.output / "checkpoint"
    started = time.perf_counter()
    history = run_epochs(
        trainer,
        optim,
        validate=lambda: sharded_mean(trainer.vectors(), parts, context, optim.valid_metric),
        label=f"{config.model} on {context.world_size} rank(s)",
        checkpoint_dir=checkpoint_dir,
        resume=config.resume,
        writes_checkpoints=context.rank == 0,
        reduce=lambda values: all_sum(values, context),
        display="lines" if context.rank == 0 else None,
        on_resume=_agree_on_checkpoint(checkpoint_dir, context),
    )
    train_seconds = time.perf_counter() - started
    valid_score = None
    if config.selection_metric is not None:
        valid_score = sharded_mean(trainer.vectors(), parts, context, config.selection_metric)
    started = time.perf_counter()
    frame = pd.DataFrame(columns=["user"])
    if config.evaluate_test:
        frame = sharded_evaluation(
            trainer.vectors(), parts, context, sample=config.eval_users, seed=config.split_seed,
            metrics=config.metrics, ks=config.ks,
        )  # fmt: skip
    eval_seconds = time.perf_counter() - started
    if context.rank != 0:
        return None
    return _write_outputs(config, context, trainer, history, frame, train_seconds, eval_seconds, valid_score)


def _write_outputs(
    config: DistributedTrainConfig,
    context: RankContext,
    trainer: DataParallelTrainer,
    history: TrainingHistory,
    per_user: pd.DataFrame,
    train_seconds: float,
    eval_seconds: float,
    valid_score: float | None,
) -> DistributedResult:
    output = config.output
    output.mkdir(parents=True, exist_ok=True)
    model = trainer.fitted_model()
    model.history_ = history
    model_path = model.save(output / "model")
    if config.evaluate_test:
        per_user.to_csv(output / "per_user.csv", index=False)
    metrics = {column: float(per_user[column].mean()) for column in per_user.columns if column != "user"}
    result = DistributedResult(
        output=output,
        world_size=context.world_size,
        backend=context.backend,
        metrics=metrics,
        history=history.epochs,
        train_seconds=train_seconds,
        eval_seconds=eval_seconds,
        evaluated_users=len(per_user),
        model_path=model_path,
        model=config.model,
        best_epoch=history.best_epoch,
        best_valid=history.best_score,
        stop_reason=history.stop_reason,
        still_improving=history.still_improving,
        stopped=history.describe(),
        valid_score=valid_score,
    )
    payload = asdict(result) | {
        "config": json.loads(config.model_dump_json()),
        "optim": model.optim.model_dump(),
    }
    (output / "result.json").write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return result
