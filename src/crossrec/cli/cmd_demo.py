"""``crossrec demo``: the end-to-end transfer job on the built-in movielens-cdr dataset."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from crossrec.cli._app import app

if TYPE_CHECKING:
    from crossrec.experiment.demo import DemoResult


@app.command()
def demo(
    data_dir: Path | None = typer.Option(
        None, help="Dataset cache folder (default: $CROSSREC_DATA_DIR or XDG)."
    ),
    runs_dir: Path = typer.Option(Path("runs"), help="Folder for run outputs."),
    seed: int = typer.Option(2022, help="Seed of the split and of training."),
    max_users: int | None = typer.Option(None, help="Sample this many target users (quick look)."),
    epochs: int = typer.Option(200, help="Maximum epochs per training phase."),
    progress: bool = typer.Option(True, help="Show progress bars."),
) -> None:
    """Target-only baselines vs. source-pretrained transfer on movielens-cdr (ML-1M -> ML-100K)."""
    from crossrec.data.builtin import DatasetUnavailableError  # heavy imports wait for the command
    from crossrec.experiment.demo import DemoConfig, run_demo

    console = Console()
    config = DemoConfig(
        data_dir=data_dir, runs_dir=runs_dir, seed=seed, max_users=max_users, epochs=epochs, progress=progress
    )
    try:
        result = run_demo(config)
    except DatasetUnavailableError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from error
    console.print(_metrics_table(result))
    console.print(_gains_table(result))
    for guard in result.guard["families"]:
        console.print(
            f"guard {guard['candidate']} vs {guard['baseline']} (validation NDCG@10): "
            f"{guard['difference']:+.4f} [95% CI {guard['ci_low']:+.4f}, {guard['ci_high']:+.4f}] "
            f"-> keeps {guard['chosen']}"
        )
    console.print(f"best kept model on validation: [bold]{result.chosen}[/bold]")
    console.print(f"results: {result.run_dir / 'results.json'}")
    console.print(f"report:  {result.run_dir / 'report.html'}")
    console.print(f"model:   {result.artifact} ({result.chosen})")
    console.print("\nTry next:", style="bold")
    artifact = shlex.quote(str(result.artifact))
    console.print(
        f"  crossrec recommend {artifact} --user {shlex.quote(result.example_user)} --k 10", soft_wrap=True
    )
    console.print(
        f"  crossrec recommend {artifact} --item {shlex.quote(result.example_item)} --k 10", soft_wrap=True
    )
    console.print(f"  crossrec serve {artifact} --port 8000", soft_wrap=True)


def _metrics_table(result: DemoResult) -> Table:
    from crossrec.experiment.demo import REPORT_METRICS

    table = Table(title="movielens-cdr ML-1M -> ML-100K: test, full ranking, @10")
    table.add_column("model", no_wrap=True)
    for metric in REPORT_METRICS:
        table.add_column(metric, justify="right")
    table.add_column("train s", justify="right")
    for name, metrics in result.summary.items():
        table.add_row(
            name, *(f"{metrics[f'{m}@10']:.4f}" for m in REPORT_METRICS), f"{result.train_seconds[name]:.1f}"
        )
    return table


def _gains_table(result: DemoResult) -> Table:
    table = Table(title="paired test NDCG@10 difference (bootstrap 95% CI over users)")
    table.add_column("model", no_wrap=True)
    table.add_column("vs", no_wrap=True)
    table.add_column("difference", justify="right")
    table.add_column("relative", justify="right")
    table.add_column("95% CI", justify="right", no_wrap=True)
    rows = result.comparison[result.comparison["metric"] == "ndcg@10"]
    for row in rows.itertuples(index=False):
        reference = result.summary[row.reference]["ndcg@10"]
        table.add_row(
            row.model,
            row.reference,
            f"{row.difference:+.4f}",
            f"{row.difference / reference:+.1%}",
            f"[{row.ci_low:+.4f}, {row.ci_high:+.4f}]",
        )
    return table
