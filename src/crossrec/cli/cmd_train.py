"""``crossrec train`` and ``crossrec transfer``: run an experiment file (TOML) and write a run folder."""

from __future__ import annotations

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
        ..., help="Experiment file (TOML); its [model] is trained target-only."
    ),
    search: bool = typer.Option(True, help="Run the [search] section (Optuna, validation only) if present."),
) -> None:
    """Train the experiment's model on the target domain alone and evaluate it on test."""
    _run(experiment, "train", None, search)


@app.command()
def transfer(
    experiment: Path = typer.Argument(..., help="Experiment file (TOML)."),
    strategy: str | None = typer.Option(
        None,
        help="Override [transfer].strategy: none, warm_start, finetune, joint, mapping, content or auto.",
    ),
    search: bool = typer.Option(True, help="Run the [search] section (Optuna, validation only) if present."),
) -> None:
    """Transfer from the source domain(s) with the negative-transfer guard, evaluate on test."""
    _run(experiment, "transfer", strategy, search)
