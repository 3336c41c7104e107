"""The ``crossrec`` command: one Typer app; each ``cmd_*.py`` module in this package adds its commands."""

from __future__ import annotations

import importlib
import pkgutil

import typer
from rich.console import Console
from rich.markup import escape

from crossrec._extras import MissingExtraError
from crossrec.cli._app import app

__all__ = ["app", "main"]


def _register_commands() -> None:
    import crossrec.cli as package

    for module in sorted(m.name for m in pkgutil.iter_modules(package.__path__) if m.name.startswith("cmd_")):
        importlib.import_module(f"crossrec.cli.{module}")


_register_commands()


def main(args: list[str] | None = None) -> None:
    """Console entry point: the app, with a missing optional dependency reported in one line (exit 2)."""
    try:
        app(args)
    except MissingExtraError as error:
        Console(stderr=True).print(f"[red]error:[/red] {escape(str(error))}", soft_wrap=True)
        raise SystemExit(2) from None


if __name__ == "__main__":  # pragma: no cover
    typer.run(main)
