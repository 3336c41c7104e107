"""``crossrec pretrain`` and ``crossrec update``: source artifacts trained once and transferred to many
targets (``crossrec transfer --from``), and deployed artifacts continued on new interactions."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from crossrec.cli._app import app


def _fail(console: Console, error: Exception) -> typer.Exit:
    console.print(f"[red]error:[/red] {error}", soft_wrap=True, highlight=False)
    return typer.Exit(2)


@app.command()
def pretrain(
    experiment: Path = typer.Argument(
        ..., help="Experiment file (TOML): its \\[data] sources and \\[model] (and strategy) are used."
    ),
    output: Path = typer.Option(..., "-o", "--output", help="Folder of the source artifact to write."),
    strategy: str | None = typer.Option(
        None, help="The strategy the source model is for (default: \\[transfer].strategy)."
    ),
    overrides: list[str] | None = typer.Option(
        None, "--set", help="Override a key of the experiment file, KEY=VALUE in TOML (repeatable)."
    ),
    force: bool = typer.Option(False, "--force", help="Replace an artifact crossrec wrote at OUTPUT."),
) -> None:
    """Train the model a transfer starts from on the source domain(s) once and save it as a source
    artifact; `crossrec transfer EXPERIMENT --from ARTIFACT` then transfers it without retraining."""
    from crossrec.artifacts import ArtifactError
    from crossrec.experiment.config import ExperimentFileError, load_experiment
    from crossrec.experiment.registry import pretrain_source

    console = Console()
    try:
        config = load_experiment(experiment, overrides)
        if config.num_threads:
            import torch

            torch.set_num_threads(config.num_threads)
        result = pretrain_source(config, output, strategy=strategy, overwrite=force, console=console)
    except (ExperimentFileError, ArtifactError, ValueError, FileExistsError, FileNotFoundError) as error:
        raise _fail(console, error) from error
    console.print(
        f"source artifact: {result.artifact} (crossrec recommend {result.artifact} --info)", highlight=False
    )


@app.command()
def update(
    artifact: Path = typer.Argument(..., help="The deployed artifact to continue."),
    bundle: Path = typer.Option(
        ..., "--bundle", help="Bundle holding the new interactions (`crossrec ingest`)."
    ),
    output: Path = typer.Option(..., "-o", "--output", help="Folder of the updated artifact to write."),
    domain: str | None = typer.Option(
        None, help="Domain of the bundle to read (default: its target domain, or its only one)."
    ),
    epochs: int | None = typer.Option(
        None, min=1, help="Epochs to continue an embedding model (default: a fifth of its epoch count)."
    ),
    force: bool = typer.Option(False, "--force", help="Replace an artifact crossrec wrote at OUTPUT."),
) -> None:
    """Continue a deployed model on new interactions: new users and items join its vocabularies
    (started by fold-in), training continues warm-started; the new manifest names the parent."""
    from crossrec.artifacts import ArtifactError
    from crossrec.data.errors import BundleError
    from crossrec.experiment.registry import update_artifact

    console = Console()
    try:
        result = update_artifact(
            artifact, bundle, output, domain=domain, epochs=epochs, overwrite=force, console=console
        )
    except (ArtifactError, BundleError, ValueError, FileExistsError, FileNotFoundError) as error:
        raise _fail(console, error) from error
    console.print(f"updated artifact: {result.artifact} (parent {artifact})", highlight=False)
