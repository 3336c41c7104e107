"""The ``crossrec`` command: one Typer app; each ``cmd_*.py`` module in this package adds its commands."""

from __future__ import annotations

import importlib
import pkgutil

import typer

from crossrec.cli._app import app

__all__ = ["app", "main"]


def _register_commands() -> None:
    import crossrec.cli as package

    for module in sorted(m.name for m in pkgutil.iter_modules(package.__path__) if m.name.startswith("cmd_")):
        importlib.import_module(f"crossrec.cli.{module}")


_register_commands()


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    typer.run(main)
