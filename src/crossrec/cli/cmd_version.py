"""``crossrec version``."""

from __future__ import annotations

import typer

from crossrec import __version__
from crossrec.cli._app import app


@app.command()
def version() -> None:
    """Print the crossrec version."""
    typer.echo(__version__)
