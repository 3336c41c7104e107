"""The one epoch loop of every gradient trainer: validation, early stopping, best weights, checkpoints,
progress and the reason training stopped.

A trainer (:class:`EpochTrainer`) knows how to run one epoch over its data and how to save and
restore its state; :func:`run_epochs` does the rest, identically for the pairwise trainer of
embedding models (:mod:`crossrec.training.trainer`), the lean BPR-MF step
(:mod:`crossrec.training.fast_bpr`), the sequence models and every rank of a data-parallel run
(:mod:`crossrec.distributed`), all configured by one :class:`~crossrec.training.optim.OptimConfig`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import scipy.sparse as sp
import torch

from crossrec.training.checkpoint import (
    load_loop_state,
    load_module_state,
    save_loop_state,
    save_module_state,
    tensors,
)
from crossrec.training.optim import OptimConfig

__all__ = [
    "EpochStats",
    "EpochTrainer",
    "ModuleState",
    "StopReason",
    "TrainingHistory",
    "ranking_validation",
    "run_epochs",
]

#: Why training ended: patience ran out, the epoch budget did, or there was no validation to watch.
StopReason = Literal["early_stopping", "epoch_budget", "no_validation", ""]


@dataclass
class EpochStats:
    """Loss and timing of one epoch on this process."""

    loss: float = 0.0
    interactions: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)


class EpochTrainer(Protocol):
    """What :func:`run_epochs` drives: one epoch at a time, plus state to snapshot and checkpoint."""

    def train_epoch(self, epoch: int) -> EpochStats:
        """Run epoch ``epoch`` (1-based); the loss summed over this process's interactions."""

    def state_dict(self) -> dict[str, torch.Tensor]:
        """A copy of the current weights (the best epoch's are kept in memory)."""

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Put weights from :meth:`state_dict` back."""

    def save(self, folder: Path) -> None:
        """Write weights, optimizer and RNG states into ``folder`` (each file atomically)."""

    def restore(self, folder: Path) -> None:
        """Load what :meth:`save` wrote."""


class ModuleState:
    """The state half of an :class:`EpochTrainer` whose weights are a torch module's, with an optimizer
    and (single-process trainers) a numpy generator: snapshots, checkpoints, restore."""

    module: torch.nn.Module
    optimizer: torch.optim.Optimizer
    rng: np.random.Generator | None = None
    device: torch.device | str = "cpu"

    def state_dict(self) -> dict[str, torch.Tensor]:
        return tensors(self.module.state_dict())

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.module.load_state_dict({key: value.to(self.device) for key, value in state.items()})

    def save(self, folder: Path) -> None:
        save_module_state(folder, self.module, self.optimizer, self.rng)

    def restore(self, folder: Path) -> None:
        load_module_state(folder, self.module, self.optimizer, self.rng, device=self.device)


@dataclass
class TrainingHistory:
    """Per-epoch records (``epoch``, ``loss``, ``seconds`` and ``valid_<metric>`` when evaluated), the
    best validation epoch and why training stopped."""

    epochs: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    best_score: float = float("-inf")
    seconds: float = 0.0
    metric: str = ""
    stop_reason: StopReason = ""

    @property
    def still_improving(self) -> bool:
        """Training ran out of epochs while the last validation was the best so far."""
        evaluated = [r["epoch"] for r in self.epochs if f"valid_{self.metric}" in r]
        return self.stop_reason == "epoch_budget" and bool(evaluated) and self.best_epoch == evaluated[-1]

    def describe(self) -> str:
        """One sentence: how many epochs, why it stopped, the best validation epoch."""
        last = int(self.epochs[-1]["epoch"]) if self.epochs else 0
        best = f"best valid {self.metric} {self.best_score:.4f} at epoch {self.best_epoch}"
        if self.stop_reason == "no_validation":
            return f"trained {last} epochs without validation (nothing to stop on)"
        if self.stop_reason == "early_stopping":
            return f"stopped early at epoch {last}: {best}"
        if self.still_improving:
            return (
                f"stopped at its epoch budget ({last} epochs) while valid {self.metric} was still "
                f"improving ({best}, the last evaluation): raise optim.epochs"
            )
        return f"stopped at its epoch budget ({last} epochs) before early stopping: {best}"


def ranking_validation(
    scorer: Callable, valid: sp.csr_matrix, seen: sp.csr_matrix | None, optim: OptimConfig
) -> float:
    """Mean ``optim.valid_metric`` of full rankings of every validation user, ``seen`` items excluded."""
    from crossrec.metrics.ranking import evaluate_ranking

    result = evaluate_ranking(scorer, valid, seen, metrics=[optim.metric_name], ks=[optim.metric_k])
    return float(result.mean()[optim.valid_metric])


class _Display:
    """A Rich progress bar, one printed line per epoch, or nothing."""

    def __init__(self, mode: Literal["bar", "lines"] | None, label: str, total: int, done: int) -> None:
        self.mode, self.label, self.total = mode, label, total
        self.bar = None
        if mode == "bar":
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(),
                TextColumn("epoch {task.completed}/{task.total}"), TextColumn("{task.fields[status]}"),
                TimeElapsedColumn(), transient=False,
            )  # fmt: skip
            self.task = self.bar.add_task(label, total=total, status="", completed=done)

    def __enter__(self) -> _Display:
        if self.bar is not None:
            self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)

    def update(self, record: dict[str, float], metric: str) -> None:
        status = f"loss {record['loss']:.4f}"
        if f"valid_{metric}" in record:
            status += f"  valid {metric} {record[f'valid_{metric}']:.4f}"
        if self.bar is not None:
            self.bar.update(self.task, advance=1, status=status)
        elif self.mode == "lines":
            epoch = int(record["epoch"])
            print(f"{self.label}: epoch {epoch}/{self.total}  {status}  {record['seconds']:.1f}s", flush=True)


def run_epochs(
    trainer: EpochTrainer,
    optim: OptimConfig,
    *,
    validate: Callable[[], float] | None = None,
    label: str = "training",
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    writes_checkpoints: bool = True,
    reduce: Callable[[list[float]], list[float]] | None = None,
    display: Literal["bar", "lines"] | None = "bar",
    on_resume: Callable[[int], None] | None = None,
) -> TrainingHistory:
    """Train ``trainer`` for up to ``optim.epochs``; on return it holds the best validation epoch's weights.

    Parameters
    ----------
    trainer
        One epoch at a time (see :class:`EpochTrainer`).
    optim
        ``epochs``, ``eval_every``, ``patience``, ``valid_metric``, ``checkpoint_every`` and ``progress``.
    validate
        Score of the current weights on validation (higher is better); ``None``: train every epoch and
        keep the last weights.
    label
        Progress label.
    checkpoint_dir, resume
        Checkpoint folder (every ``checkpoint_every`` epochs, when stopping and at the end), and whether
        to continue from the checkpoint found there (the result equals an uninterrupted run).
    writes_checkpoints
        ``False`` on the ranks of a data-parallel run that only read rank 0's checkpoints.
    reduce
        Sums ``[loss, interactions]`` over ranks (identity on one process).
    display
        ``"bar"``, ``"lines"`` or ``None``; nothing is shown when ``optim.progress`` is off.
    on_resume
        Called with the epoch of the checkpoint found (0: none) before it is loaded (ranks check that
        they agree).
    """
    history = TrainingHistory(metric=optim.valid_metric)
    best_state: dict[str, torch.Tensor] | None = None
    stale, first_epoch = 0, 1
    folder = Path(checkpoint_dir) if checkpoint_dir is not None else None
    if folder is not None and resume:
        restored = load_loop_state(folder)
        if on_resume is not None:
            on_resume(restored.epoch if restored is not None else 0)
        if restored is not None:
            trainer.restore(folder)
            first_epoch, stale, best_state = restored.epoch + 1, restored.stale, restored.best_state
            history = TrainingHistory(**restored.history)
    started = time.perf_counter() - history.seconds
    stopped = validate is not None and stale >= optim.patience
    shown = display if optim.progress else None
    with _Display(shown, label, optim.epochs, first_epoch - 1) as progress:
        for epoch in range(first_epoch, optim.epochs + 1):
            if stopped:
                break
            stats = trainer.train_epoch(epoch)
            loss, count = (reduce or _same)([stats.loss, float(stats.interactions)])
            record: dict[str, float] = {
                "epoch": epoch,
                "loss": loss / max(count, 1.0),
                "seconds": stats.seconds,
            }
            if validate is not None and epoch % optim.eval_every == 0:
                threads = torch.get_num_threads()
                score = float(validate())
                # the ranking kernels' thread pool (numba, OpenMP) can reset the OpenMP thread count that
                # torch reads: keep training on the threads it was given, so that runs stay reproducible
                torch.set_num_threads(threads)
                record[f"valid_{optim.valid_metric}"] = score
                if score > history.best_score:
                    history.best_score, history.best_epoch, stale = score, epoch, 0
                    best_state = trainer.state_dict()
                else:
                    stale += 1
            history.epochs.append(record)
            progress.update(record, optim.valid_metric)
            stopped = validate is not None and stale >= optim.patience
            last = stopped or epoch == optim.epochs
            if folder is not None and writes_checkpoints and (epoch % optim.checkpoint_every == 0 or last):
                history.seconds = time.perf_counter() - started
                trainer.save(folder)
                save_loop_state(
                    folder, best_state=best_state, epoch=epoch, stale=stale, history=asdict(history)
                )
    if best_state is not None:
        trainer.load_state_dict(best_state)
    else:
        history.best_epoch = len(history.epochs)
    if validate is None:
        history.stop_reason = "no_validation"
    else:
        history.stop_reason = "early_stopping" if stopped else "epoch_budget"
    history.seconds = time.perf_counter() - started
    return history


def _same(values: list[float]) -> list[float]:
    return values
