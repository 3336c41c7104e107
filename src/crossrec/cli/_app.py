"""The shared Typer application object that command modules register on."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="crossrec",
    help="Cross-domain recommendation by model transfer: ingest, train, transfer, evaluate, serve.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _root() -> None:
    """Cross-domain recommendation by model transfer."""
