"""``crossrec ingest``: unify the sources of a sources file into one versioned bundle."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from crossrec.cli._app import app


@app.command()
def ingest(
    sources: Path = typer.Argument(..., help="Sources file (TOML) declaring every platform's data."),
    output: Path = typer.Option(..., "--output", "-o", help="Bundle folder to write (created atomically)."),
    data_dir: Path | None = typer.Option(
        None,
        "--data-dir",
        "-d",
        help="Folder that relative data paths are resolved against (default: the sources file's folder).",
    ),
    force: bool = typer.Option(
        False,
        "--force",
        help="Replace an existing bundle folder (only a crossrec bundle holding only its own files, "
        "never one that is or contains an input).",
    ),
    threads: int | None = typer.Option(None, help="DuckDB threads (default 2 or $CROSSREC_DUCKDB_THREADS)."),
    memory_limit: str | None = typer.Option(
        None, help="DuckDB memory limit, e.g. 2GB (default $CROSSREC_DUCKDB_MEMORY or 2GB)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the bundle path."),
) -> None:
    """Read, clean, link and unify the declared sources into BUNDLE (Parquet tables + manifest.json)."""
    import duckdb

    from crossrec.data.bundle import BundleError  # heavy imports (DuckDB, Arrow) wait for the command
    from crossrec.data.errors import IngestError
    from crossrec.data.ingestion import ingest as run_ingest
    from crossrec.data.report import funnel_table, links_table, rejects_table

    console = Console()
    errors = Console(stderr=True)

    def fail(message: str, code: int = 2) -> typer.Exit:
        errors.print(f"[bold red]error:[/] {escape(message)}", highlight=False, markup=True, soft_wrap=True)
        return typer.Exit(code=code)

    try:
        result = run_ingest(
            sources, output, data_dir=data_dir, overwrite=force, threads=threads, memory_limit=memory_limit
        )
    except (IngestError, BundleError) as error:
        raise fail(str(error)) from None
    except OSError as error:
        where = f" ({error.filename})" if error.filename else ""
        raise fail(f"cannot read or write{where}: {error.strerror or error}") from None
    except (KeyboardInterrupt, duckdb.InterruptException):
        raise fail(f"interrupted: nothing was written to {output}", 130) from None
    manifest = result.manifest
    if not quiet:
        console.print(funnel_table(manifest))
        console.print(links_table(manifest))
        if manifest["rejects"]["rows"]:
            console.print(rejects_table(manifest))
        for table, columns in manifest.get("ignored_columns", {}).items():
            console.print(f"{table}: dropped unread (ignore_columns): {', '.join(columns)}", highlight=False)
        for name, info in manifest["domains"].items():
            console.print(
                f"{name} ({info['role']}): {info['users']:,} users, {info['items']:,} items, "
                f"{info['interactions']:,} interactions",
                highlight=False,
            )
    for warning in manifest["warnings"]:  # even with --quiet: a warning is not progress
        errors.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False, soft_wrap=True)
    console.print(f"bundle written to {result.path}", highlight=False)
