"""What every rank runs: the shared epoch loop, rank-0 checkpoints, sharded evaluation, rank-0 outputs."""

from __future__ import annotations

import json
import os
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
from crossrec.distributed._evaluation import sharded_evaluation, validation_ndcg
from crossrec.distributed._trainer import DataParallelTrainer
from crossrec.ranking.topk import set_kernel_threads

__all__ = ["build_trainer", "run_rank"]

_STATE = "state.json"


def build_trainer(
    config: DistributedTrainConfig, parts: dict[str, InteractionArrays], context: RankContext
) -> DataParallelTrainer:
    """This rank's replica of ``config.model``, freshly initialised (seeded)."""
    train = parts["train"]
    if config.model == "bpr_mf":
        from crossrec.distributed.bpr import BPRTrainer

        return BPRTrainer(config.bpr, train, context)
    if config.model == "lightgcn":
        from crossrec.distributed.lightgcn import lightgcn_trainer

        return lightgcn_trainer(config.lightgcn, train, context)
    from crossrec.distributed.two_tower import two_tower_trainer

    return two_tower_trainer(config.two_tower, train, open_item_features(config), context)


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
    torch.set_num_threads(config.num_threads)
    if context.distributed:  # the evaluation kernels use the rank's threads too, not every core
        set_kernel_threads(config.num_threads)
    try:
        return _run(config, context)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def _save_checkpoint(
    folder: Path, trainer: DataParallelTrainer, epoch: int, history: list[dict[str, float]]
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    trainer.save(folder)
    (folder / f".{_STATE}.tmp").write_text(json.dumps({"epoch": epoch, "history": history}))
    os.replace(folder / f".{_STATE}.tmp", folder / _STATE)


def _restore(
    folder: Path, trainer: DataParallelTrainer, context: RankContext
) -> tuple[int, list[dict[str, float]]]:
    """The first epoch to run and the history so far; the replica is loaded from ``folder``."""
    state = json.loads((folder / _STATE).read_text()) if (folder / _STATE).is_file() else None
    epoch = int(state["epoch"]) if state is not None else 0
    if context.distributed:  # a rank that cannot see rank 0's checkpoint would run other epochs: hang
        epochs = [torch.zeros(1, dtype=torch.int64, device=context.device) for _ in range(context.world_size)]
        dist.all_gather(epochs, torch.tensor([epoch], dtype=torch.int64, device=context.device))
        if len({int(value) for value in epochs}) > 1:
            raise RuntimeError(
                f"ranks found checkpoints of different epochs in {folder} "
                f"({[int(value) for value in epochs]}); put the run folder on a file system all "
                "machines share, or start without resume"
            )
    if state is None:
        return 1, []
    trainer.restore(folder)
    return epoch + 1, list(state["history"])


def _run(config: DistributedTrainConfig, context: RankContext) -> DistributedResult | None:
    parts = open_parts(config)
    if len(parts["train"]) == 0:
        raise ValueError(f"{parts['train'].folder}: no training interactions")
    trainer = build_trainer(config, parts, context)
    checkpoint_dir = config.output / "checkpoint"
    first_epoch, history = _restore(checkpoint_dir, trainer, context) if config.resume else (1, [])
    trainer.synchronise()
    started = time.perf_counter()
    for epoch in range(first_epoch, trainer.epochs + 1):
        stats = trainer.train_epoch(epoch)
        loss, count = all_sum([stats.loss, float(stats.interactions)], context)
        record = {"epoch": epoch, "loss": loss / max(count, 1.0), "seconds": stats.seconds}
        if config.eval_every and epoch % config.eval_every == 0:
            record["valid_ndcg@10"] = validation_ndcg(trainer.vectors(), parts, context, config.split_seed)
        history.append(record)
        if context.rank == 0 and config.progress:
            extra = f"  valid ndcg@10 {record['valid_ndcg@10']:.4f}" if "valid_ndcg@10" in record else ""
            print(
                f"epoch {epoch}/{trainer.epochs}  loss {record['loss']:.4f}  {stats.seconds:.1f}s{extra}",
                flush=True,
            )
        if context.rank == 0 and config.checkpoint_every and epoch % config.checkpoint_every == 0:
            _save_checkpoint(checkpoint_dir, trainer, epoch, history)
    train_seconds = time.perf_counter() - started
    started = time.perf_counter()
    frame = sharded_evaluation(
        trainer.vectors(), parts, context, sample=config.eval_users, seed=config.split_seed,
        metrics=config.metrics, ks=config.ks,
    )  # fmt: skip
    eval_seconds = time.perf_counter() - started
    if context.rank != 0:
        return None
    return _write_outputs(config, context, trainer, history, frame, train_seconds, eval_seconds)


def _write_outputs(
    config: DistributedTrainConfig,
    context: RankContext,
    trainer: DataParallelTrainer,
    history: list[dict[str, float]],
    per_user: pd.DataFrame,
    train_seconds: float,
    eval_seconds: float,
) -> DistributedResult:
    output = config.output
    output.mkdir(parents=True, exist_ok=True)
    _save_checkpoint(output / "checkpoint", trainer, trainer.epochs, history)
    model_path = trainer.fitted_model().save(output / "model")
    per_user.to_csv(output / "per_user.csv", index=False)
    metrics = {column: float(per_user[column].mean()) for column in per_user.columns if column != "user"}
    result = DistributedResult(
        output=output,
        world_size=context.world_size,
        backend=context.backend,
        metrics=metrics,
        history=history,
        train_seconds=train_seconds,
        eval_seconds=eval_seconds,
        evaluated_users=len(per_user),
        model_path=model_path,
        model=config.model,
    )
    payload = asdict(result) | {"config": json.loads(config.model_dump_json())}
    (output / "result.json").write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return result
