"""``crossrec train`` and ``crossrec transfer``: run an experiment file (TOML) and write a run folder."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from crossrec.cli._app import app

_METRICS = ("ndcg@10", "recall@10", "hit@10")


def _run(experiment: Path, mode: str, strategy: str | None, search: bool) -> None:
    from crossrec.experiment.config import ExperimentFileError, load_experiment
    from crossrec.experiment.runner import run_experiment
    from crossrec.transfer.base import TransferNotPossibleError

    console = Console()
    try:
        config = load_experiment(experiment)
        if not search:
            config.search = None
        result = run_experiment(config, mode=mode, strategy=strategy, console=console)
    except (ExperimentFileError, TransferNotPossibleError, ValueError, FileNotFoundError) as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from error
    table = Table(title=f"{config.name}: test, full ranking")
    table.add_column("model")
    for metric in _METRICS:
        table.add_column(metric, justify="right")
    table.add_column("train s", justify="right")
    for key, summary in result.summary.items():
        table.add_row(
            key,
            *(f"{summary.get(m, float('nan')):.4f}" for m in _METRICS),
            f"{result.train_seconds.get(key, 0):.1f}",
        )
    console.print(table)
    if result.guard is not None:
        console.print(result.guard.describe())
    console.print(f"results: {result.run_dir / 'results.json'}")


@app.command()
def train(
    experiment: Path = typer.Argument(
        ..., help="Experiment file (TOML); its \\[model] is trained target-only."
    ),
    search: bool = typer.Option(True, help="Run the \\[search] section (Optuna, on validation) if present."),
    nproc: int | None = typer.Option(
        None,
        "--nproc",
        help="Train data-parallel on this many ranks (bpr_mf, lightgcn, two_tower; torchrun, gloo on CPU, "
        "NCCL on GPU).",
    ),
) -> None:
    """Train the experiment's model on the target domain alone and evaluate it on test.

    With ``--nproc N`` (or when started by ``torchrun ... -m crossrec train``) a ``bpr_mf``, ``lightgcn``
    or ``two_tower`` experiment is trained data-parallel by
    :func:`crossrec.distributed.train_distributed` (fixed epochs, no early stopping).
    """
    if nproc is not None or int(os.environ.get("WORLD_SIZE", "1")) > 1:
        _run_distributed(experiment, nproc or 1)
        return
    _run(experiment, "train", None, search)


#: Settings of the single-process trainer that no data-parallel trainer uses (fixed epochs, no bar).
_SINGLE_PROCESS_ONLY = {"patience", "progress", "num_threads"}
#: ... and those the lean BPR-MF step does not use either (it is BPR with one negative).
_SINGLE_PROCESS_ONLY_BPR = _SINGLE_PROCESS_ONLY | {"loss", "n_negatives"}

_SUPPORTED = (
    "--nproc trains bpr_mf, lightgcn and two_tower data-parallel (two_tower: an ID user tower and item "
    "IDs plus the item attribute columns in item_modalities; no user attributes)"
)


def _run_distributed(experiment: Path, nproc: int) -> None:
    """``crossrec train EXPERIMENT --nproc N``: map the experiment onto a data-parallel run."""
    from pydantic import ValidationError

    from crossrec.distributed import (
        DATA_PARALLEL_MODELS,
        DistributedTrainConfig,
        LightGCNTrainConfig,
        TwoTowerTrainConfig,
        train_distributed,
    )
    from crossrec.experiment.config import ExperimentFileError, load_experiment
    from crossrec.training.fast_bpr import FastBPRConfig

    settings_classes = {
        "bpr_mf": FastBPRConfig,
        "lightgcn": LightGCNTrainConfig,
        "two_tower": TwoTowerTrainConfig,
    }
    console = Console()
    try:
        config = load_experiment(experiment)
        name = config.model.name
        if name not in DATA_PARALLEL_MODELS:
            raise ValueError(f"{_SUPPORTED}; {experiment} asks for model {name!r} (run it without --nproc)")
        if config.split.protocol != "random":
            raise ValueError(f"--nproc supports the random split protocol, not {config.split.protocol!r}")
        settings_class = settings_classes[name]
        single_only = _SINGLE_PROCESS_ONLY_BPR if name == "bpr_mf" else _SINGLE_PROCESS_ONLY
        params = dict(config.model.params)
        ignored = sorted(set(params) & single_only)
        known = set(settings_class.model_fields)
        unknown = sorted(set(params) - single_only - known)
        if unknown:
            raise ValueError(
                f"model params {unknown} are not {name} settings of the data-parallel trainer; "
                f"known: {sorted(known)}"
            )
        settings = settings_class(seed=config.seed, **{k: v for k, v in params.items() if k not in ignored})
        run = DistributedTrainConfig(
            builtin=config.data.builtin,
            data_dir=config.data.data_dir,
            bundle=config.data.bundle,
            domain=config.data.target,
            split_ratios=config.split.ratios,
            split_seed=config.seed,
            model=name,
            output=config.output_dir / f"{config.name}-nproc{nproc}",
            **{DATA_PARALLEL_MODELS[name]: settings},
        )
        if ignored and int(os.environ.get("RANK", "0")) == 0:
            console.print(f"note: {ignored} apply to the single-process trainer only and are ignored here")
        result = train_distributed(run, nproc)
    except (ExperimentFileError, ValidationError, ValueError, FileNotFoundError, RuntimeError) as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from error
    if int(os.environ.get("RANK", "0")) != 0:
        return
    table = Table(title=f"{config.name}: {name} on {result.world_size} rank(s) ({result.backend}), test")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for metric, value in result.metrics.items():
        table.add_row(metric, f"{value:.4f}")
    console.print(table)
    console.print(f"model: {result.model_path}  results: {result.output / 'result.json'}", highlight=False)


@app.command()
def transfer(
    experiment: Path = typer.Argument(..., help="Experiment file (TOML)."),
    strategy: str | None = typer.Option(
        None,
        help="Override \\[transfer].strategy: none, warm_start, finetune, joint, mapping, content or auto.",
    ),
    search: bool = typer.Option(True, help="Run the \\[search] section (Optuna, on validation) if present."),
) -> None:
    """Transfer from the source domain(s) with the negative-transfer guard, evaluate on test."""
    _run(experiment, "transfer", strategy, search)
