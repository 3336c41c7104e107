"""Shared helpers for benchmark scripts: print a Rich table and write ``benchmarks/results/<name>.json``."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def print_table(title: str, rows: list[dict[str, Any]]) -> None:
    """Print ``rows`` (dicts with the same keys) as a table; floats get 4 significant digits."""
    table = Table(title=title)
    columns = list(rows[0]) if rows else []
    for column in columns:
        table.add_column(str(column), justify="right")
    for row in rows:
        table.add_row(
            *(f"{v:.4g}" if isinstance(v, float) else str(v) for v in (row.get(c) for c in columns))
        )
    console = Console()
    # Never squash a wide table into an 80-column log: widen the console to fit it.
    needed = console.measure(table, options=console.options.update(max_width=10_000)).maximum
    if needed > console.width:
        console = Console(width=needed)
    console.print(table)


def write_results(name: str, rows: list[dict[str, Any]], **summary: Any) -> Path:
    """Write ``{"benchmark": name, "machine": ..., **summary, "rows": rows}`` to ``results/<name>.json``."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    payload = {
        "benchmark": name,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "python": platform.python_version(),
        },
        **summary,
        "rows": rows,
    }
    path.write_text(json.dumps(payload, indent=2, default=str))
    return path
