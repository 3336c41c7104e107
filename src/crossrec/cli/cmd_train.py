"""``crossrec train`` and ``crossrec transfer``: run an experiment file (TOML) and write a run folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from crossrec.cli._app import app
from crossrec.cli._tables import choose_columns, hidden_caption, metric_columns, metrics_table, print_table

_WIDE = typer.Option(False, "--wide", help="Show every test metric (the table may exceed 100 columns).")


def _row_names(result: object) -> dict[str, str]:
    """Table labels of a one-model run's keys: ``target_only (ease)``, ``transfer (joint:ease)``."""
    guard = getattr(result, "guard", None)
    if guard is None:
        return {}
    label = guard.strategy
    model = label.partition(":")[2] or label
    return {"target_only": f"target_only ({model})", "transfer": f"transfer ({label})"}


_SET = typer.Option(
    None,
    "--set",
    help="Override a key of the experiment file, KEY=VALUE in TOML (repeatable), e.g. "
    "--set data.max_users=200 --set search.n_trials=3.",
)

_BUDGET = typer.Option(
    None,
    "--budget",
    help="Time budget of the selection: 90s, 10m, 1h or seconds. auto starts no candidate (and the "
    "search no trial) once it is spent, and lists what it skipped.",
)

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}


def parse_budget(text: str | None) -> float | None:
    """Seconds of a ``--budget`` value (``90s``, ``10m``, ``1.5h``, ``600``); ``None`` stays ``None``."""
    if text is None:
        return None
    raw = text.strip().lower()
    unit = _UNITS.get(raw[-1:])
    number = raw[:-1] if unit is not None else raw
    try:
        seconds = float(number) * (unit or 1.0)
    except ValueError:
        raise typer.BadParameter(f"{text!r}: write a duration such as 90s, 10m or 1h") from None
    if not seconds > 0:
        raise typer.BadParameter(f"{text!r}: the budget must be positive")
    return seconds


_KEEP_MODELS = typer.Option(
    False,
    "--keep-models",
    help="Also save every fitted model under the run's models/ (large for dense models such as EASE).",
)


def _run(
    experiment: Path,
    mode: str,
    strategy: str | None,
    search: bool,
    keep_models: bool,
    overrides: list[str] | None = None,
    auto: object = None,
    wide: bool = False,
    curve: str | None = None,
    sources: list[Path] | None = None,
) -> None:
    from crossrec.data.outputs import OutputFolderError
    from crossrec.experiment.config import ExperimentFileError, load_experiment
    from crossrec.experiment.runner import decided_on, run_experiment
    from crossrec.transfer.base import TransferNotPossibleError

    console = Console()
    try:
        config = load_experiment(experiment, overrides)
        if not search:
            config.search = None
        if keep_models:
            config.keep_models = True
        if sources:
            config.transfer.sources = [path.resolve() for path in sources]
        result = run_experiment(config, mode=mode, strategy=strategy, console=console, auto=auto, curve=curve)
    except (
        ExperimentFileError,
        TransferNotPossibleError,
        OutputFolderError,
        ValueError,
        FileNotFoundError,
    ) as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from error
    results = json.loads((result.run_dir / "results.json").read_text())
    default, every = metric_columns(results)
    names = _row_names(result)
    rows = {names.get(key, key): summary for key, summary in result.summary.items()}
    seconds = {names.get(k, k): f"{v:.1f}" for k, v in result.train_seconds.items()}
    shown = every if wide else choose_columns(list(rows), default, fixed=["train s"])
    table = metrics_table(
        f"{config.name}: test, full ranking", rows, shown, extra={"train s": seconds},
        caption=None if wide else hidden_caption(shown, every),
    )  # fmt: skip
    print_table(table, wide=wide, console=console)
    for guard in [result.guard] if result.guard is not None else result.guards.values():
        console.print(guard.describe())
    if result.guards:
        console.print(f"kept (best on validation of what the guards kept): {result.kept}")
    if result.extra.get("curve"):
        _print_curve(console, result.extra["curve"])
    if result.data is not None:
        console.print(f"decided on: {decided_on(result.data.split)['description']}")
    if result.artifact is not None:
        console.print(
            f"artifact: {result.artifact} (crossrec recommend {result.artifact} --info)", highlight=False
        )
    size = results.get("size_bytes", 0)
    console.print(f"results: {result.run_dir / 'results.json'} (run folder {size / 1e6:.1f} MB)")


def _print_curve(console: Console, points: list[dict]) -> None:
    metric = next(key for key in points[0] if key.startswith("kept_"))[len("kept_") :]
    table = Table(title=f"data-efficiency curve: test {metric}, chosen on validation")
    for column in ("target data", "best target-only", metric, "kept", metric + " ", "gain 95% CI"):
        table.add_column(column, justify="left" if column in ("best target-only", "kept") else "right")
    for point in points:
        table.add_row(
            f"{point['fraction']:g}",
            point["best_target_only"],
            f"{point[f'best_target_only_{metric}']:.4f}",
            point["kept"],
            f"{point[f'kept_{metric}']:.4f}",
            f"[{point['gain_ci_low']:+.4f}, {point['gain_ci_high']:+.4f}]",
        )
    console.print(table)


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
    keep_models: bool = _KEEP_MODELS,
    overrides: list[str] | None = _SET,
    budget: str | None = _BUDGET,
    wide: bool = _WIDE,
) -> None:
    """Train the experiment's model on the target domain alone and evaluate it on test.

    With ``--nproc N`` (or when started by ``torchrun ... -m crossrec train``) a ``bpr_mf``, ``lightgcn``
    or ``two_tower`` experiment is trained data-parallel by
    :func:`crossrec.distributed.train_distributed`, with the same model, optimiser, early stopping,
    ``[search]`` and ``[evaluation]`` as the single-process run.
    """
    if nproc is not None or int(os.environ.get("WORLD_SIZE", "1")) > 1:
        _run_distributed(experiment, nproc or 1, search, overrides)
        return
    from crossrec.experiment.runner import AutoSettings

    settings = AutoSettings(budget_seconds=parse_budget(budget))
    _run(experiment, "train", None, search, keep_models, overrides, settings, wide)


def _run_distributed(experiment: Path, nproc: int, search: bool, overrides: list[str] | None) -> None:
    """``crossrec train EXPERIMENT --nproc N``: the experiment's model, optimiser, search and evaluation
    on data-parallel ranks (:func:`crossrec.experiment.distributed.run_experiment_distributed`)."""
    from pydantic import ValidationError

    from crossrec.experiment.config import ExperimentFileError, load_experiment
    from crossrec.experiment.distributed import run_experiment_distributed

    console = Console()
    try:
        config = load_experiment(experiment, overrides)
        if not search:
            config.search = None
        ran = run_experiment_distributed(config, nproc, console=console)
    except (ExperimentFileError, ValidationError, ValueError, FileNotFoundError, RuntimeError) as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from error
    if int(os.environ.get("RANK", "0")) != 0:
        return
    result = ran.result
    table = Table(
        title=f"{config.name}: {result.model} on {result.world_size} rank(s) ({result.backend}), test"
    )
    table.add_column("metric")
    table.add_column("value", justify="right")
    for metric, value in result.metrics.items():
        table.add_row(metric, f"{value:.4f}")
    console.print(table)
    if ran.search is not None:
        best = f"search: best {ran.search.best_params} valid {ran.search.best_score:.4f}"
        console.print(best, highlight=False, soft_wrap=True)
    note = f"[yellow]warning:[/yellow] {result.stopped}" if result.still_improving else result.stopped
    console.print(note, highlight=False, soft_wrap=True)
    console.print(f"model: {result.model_path}  results: {result.output / 'result.json'}", highlight=False)


@app.command()
def transfer(
    experiment: Path = typer.Argument(..., help="Experiment file (TOML)."),
    strategy: str | None = typer.Option(
        None,
        help="Override \\[transfer].strategy: none, warm_start, finetune, joint, mapping, content or auto.",
    ),
    search: bool = typer.Option(True, help="Run the \\[search] section (Optuna, on validation) if present."),
    keep_models: bool = _KEEP_MODELS,
    overrides: list[str] | None = _SET,
    budget: str | None = _BUDGET,
    auto_families: bool = typer.Option(
        False,
        "--auto-families",
        help="With --strategy auto: also try other model families (EASE, ItemKNN, BPR-MF, two-tower "
        "defaults), not only strategies around the experiment's \\[model].",
    ),
    wide: bool = _WIDE,
    curve: str | None = typer.Option(
        None,
        "--curve",
        help="Also run at these fractions of each target user's training data (e.g. 0.05,0.1,0.25,0.5,1; "
        "validation and test unchanged): a data-efficiency curve in results.json.",
    ),
    sources: list[Path] | None = typer.Option(
        None,
        "--from",
        help="Source artifact (from `crossrec pretrain`) to transfer from instead of training on the source "
        "domains (repeatable; replaces \\[transfer] from).",
    ),
) -> None:
    """Transfer from the source domain(s) with the negative-transfer guard, evaluate on test.

    ``--strategy auto`` tries every strategy that can take the experiment's ``[model]`` and run on
    the data (``--auto-families`` adds other models), keeps the best on validation and guards it
    against the model target-only; ``--budget 10m`` bounds it.
    """
    from crossrec.experiment.runner import AutoSettings

    settings = AutoSettings(other_families=auto_families, budget_seconds=parse_budget(budget))
    _run(experiment, "transfer", strategy, search, keep_models, overrides, settings, wide, curve, sources)
