"""``crossrec synth`` (synthetic multi-domain data) and ``crossrec train-distributed`` (data-parallel)."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from crossrec.cli._app import app


def _fail(message: str) -> typer.Exit:
    Console(stderr=True).print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


def _domains(text: str) -> list[dict[str, Any]]:
    domains = []
    for part in text.split(","):
        fields = part.strip().split(":")
        if len(fields) != 3:
            raise ValueError(f"domain {part!r} must be NAME:ROLE:SHARE, e.g. source:source:0.8")
        domains.append({"name": fields[0], "role": fields[1], "share": float(fields[2])})
    return domains


@app.command()
def synth(
    output: Path = typer.Argument(..., help="Folder to write (Parquet shards, sources.toml, synth.json)."),
    interactions: str = typer.Option(
        "1M", "--interactions", "-n", help="Interactions over all domains: 100K, 5M."
    ),
    domains: str = typer.Option(
        "source:source:0.8,target:target:0.2", help="Domains as NAME:ROLE:SHARE, comma-separated."
    ),
    users: str | None = typer.Option(None, help="User accounts over all domains (default interactions/40)."),
    items: str | None = typer.Option(None, help="Items over all domains (default 25*sqrt(interactions))."),
    linked_users: float = typer.Option(
        0.5, help="Share of the smallest domain's users linked across domains."
    ),
    shared_items: float = typer.Option(
        0.3, help="Share of the smallest domain's items shared across domains."
    ),
    k_core: int = typer.Option(0, help="k_core written to sources.toml."),
    shard_rows: str = typer.Option("2M", help="Interactions per Parquet shard."),
    seed: int = typer.Option(0, help="Seed of everything generated."),
    force: bool = typer.Option(
        False,
        "--force",
        help="Replace an existing folder (only one `crossrec synth` wrote, with only its files).",
    ),
) -> None:
    """Generate a synthetic multi-domain dataset that `crossrec ingest OUTPUT/sources.toml` reads."""
    from crossrec.data.synthetic import SynthConfig, parse_count

    try:
        config = SynthConfig(
            interactions=parse_count(interactions),
            domains=_domains(domains),
            users=parse_count(users) if users else None,
            items=parse_count(items) if items else None,
            linked_user_share=linked_users,
            shared_item_share=shared_items,
            k_core=k_core,
            shard_rows=parse_count(shard_rows),
            seed=seed,
        )
        result = _generate_with_progress(output, config, force)
    except (ValueError, ValidationError, FileExistsError) as error:
        raise _fail(str(error)) from None
    except OSError as error:
        where = f" {error.filename}" if error.filename else f" {output}"
        raise _fail(f"cannot write{where}: {error.strerror or error}; choose a writable folder") from None
    except KeyboardInterrupt:
        raise _fail(f"interrupted: nothing was written to {output}") from None
    console = Console()
    table = Table(title=f"synthetic data in {output}")
    for column in (
        "domain",
        "role",
        "users",
        "items",
        "linked users",
        "shared items",
        "interactions",
        "shards",
    ):
        table.add_column(column, justify="right")
    for name, info in result.manifest["domains"].items():
        table.add_row(
            name, info["role"], f"{info['users']:,}", f"{info['items']:,}", f"{info['linked_users']:,}",
            f"{info['shared_items']:,}", f"{info['interactions']:,}", str(info["shards"]),
        )  # fmt: skip
    console.print(table)
    domains = result.manifest["domains"].values()
    dropped = sum(int(info.get("dropped_duplicates", 0)) for info in domains)
    capped = sum(int(info.get("capped_events", 0)) for info in domains)
    if result.manifest["interactions"] != config.interactions:
        console.print(
            f"wrote {result.manifest['interactions']:,} of the {config.interactions:,} interactions asked: "
            f"{capped:,} events cut because a user holds at most half of a domain's items, {dropped:,} "
            "repeated (user, item) pairs that could not be redrawn (each pair appears once); more --items "
            "gives fewer of both",
            highlight=False,
        )
    console.print(
        f"{result.manifest['seconds']:.1f}s; ingest with: crossrec ingest {result.sources} -o BUNDLE"
    )


def _generate_with_progress(output: Path, config: object, force: bool) -> object:
    """``generate_synthetic`` with a Rich progress bar over the interactions (on a terminal)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from crossrec.data.synthetic import generate_synthetic

    columns = (TextColumn("synth {task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task("interactions", total=config.interactions)  # type: ignore[attr-defined]

        def advance(domain: str, rows: int) -> None:
            bar.update(task, advance=rows, description=domain)

        return generate_synthetic(output, config, overwrite=force, progress=advance)  # type: ignore[arg-type]


@app.command("train-distributed")
def train_distributed_command(
    config_file: Path | None = typer.Option(
        None, "--config", help="Run file (TOML) with DistributedTrainConfig keys; options below override it."
    ),
    builtin: str | None = typer.Option(
        None, help="Built-in dataset whose target to train on: movielens-cdr."
    ),
    bundle: Path | None = typer.Option(None, help="Bundle folder from `crossrec ingest`."),
    domain: str | None = typer.Option(None, help="Domain of the bundle (default: its first target domain)."),
    model: str | None = typer.Option(
        None,
        help="bpr_mf (default), lightgcn or two_tower; its arguments go to \\[params], its optimiser to "
        "\\[params.optim].",
    ),
    dim: int | None = typer.Option(None, help="Embedding size (default 64)."),
    epochs: int | None = typer.Option(
        None, help="Most epochs (optim.epochs; early stopping on validation with optim.patience)."
    ),
    batch_size: int | None = typer.Option(None, help="Interactions per global step (optim.batch_size)."),
    learning_rate: float | None = typer.Option(
        None, help="Step size of optim.optimizer (Adam by default; rowwise_adagrad for the lean BPR-MF step)."
    ),
    eval_users: int | None = typer.Option(None, help="Evaluate a seeded sample of this many test users."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Run folder (default runs/distributed)."),
    backend: str | None = typer.Option(None, help="auto, gloo or nccl."),
    nproc: int = typer.Option(
        1, "--nproc", help="Ranks on this machine (relaunched through torchrun when > 1)."
    ),
    rank_config: Path | None = typer.Option(None, hidden=True, help="Resolved config (set by the launcher)."),
) -> None:
    """Train BPR-MF, LightGCN or the two-tower model data-parallel on NPROC ranks (gloo on CPU, NCCL on
    GPUs) and evaluate it on test.

    Also runs under torchrun directly, e.g. on each of several machines:
    torchrun --nnodes 2 --node-rank R --nproc-per-node 4 --rdzv-backend c10d --rdzv-endpoint HOST:29400
    -m crossrec train-distributed --bundle BUNDLE -o RUN
    """
    from crossrec.distributed import (
        DATA_PARALLEL_MODELS,
        DistributedTrainConfig,
        run_rank,
        train_distributed,
    )

    try:
        if rank_config is not None:
            config = DistributedTrainConfig.model_validate_json(rank_config.read_text())
            run_rank(config)
            return
        values: dict[str, Any] = {}
        if config_file is not None:
            values = tomllib.loads(config_file.read_text())
        if model is not None:
            values["model"] = model
        chosen = values.get("model", "bpr_mf")
        if chosen not in DATA_PARALLEL_MODELS:
            raise ValueError(
                f"model {chosen!r} cannot be trained data-parallel; "
                f"choose one of {', '.join(DATA_PARALLEL_MODELS)}"
            )
        params = dict(values.pop("params", {}))
        optim = dict(params.pop("optim", None) or {})
        if dim is not None:
            params["dim"] = dim
        options = {"epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate}
        optim.update({key: value for key, value in options.items() if value is not None})
        if optim:
            params["optim"] = optim
        overrides = {
            "builtin": builtin, "bundle": bundle, "domain": domain, "eval_users": eval_users,
            "output": output, "backend": backend,
        }  # fmt: skip
        values.update({key: value for key, value in overrides.items() if value is not None})
        config = DistributedTrainConfig(**values, params=params)
        result = train_distributed(config, nproc)
    except (ValidationError, ValueError, FileNotFoundError, RuntimeError, tomllib.TOMLDecodeError) as error:
        raise _fail(str(error)) from None
    if int(os.environ.get("RANK", "0")) != 0:
        return
    table = Table(
        title=f"{result.model} on {result.world_size} rank(s) ({result.backend}): test, full ranking"
    )
    table.add_column("metric")
    table.add_column("value", justify="right")
    for metric, value in result.metrics.items():
        table.add_row(metric, f"{value:.4f}")
    console = Console()
    console.print(table)
    console.print(
        f"{result.evaluated_users:,} users evaluated; train {result.train_seconds:.1f}s, "
        f"eval {result.eval_seconds:.1f}s; model: {result.model_path}",
        highlight=False,
    )
