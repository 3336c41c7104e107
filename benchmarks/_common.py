"""Shared helpers for benchmark scripts: print a Rich table and write ``benchmarks/results/<name>.json``."""

from __future__ import annotations

import json
import os
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


def machine_info() -> dict[str, Any]:
    """What produced a figure: CPU model, its vector-instruction flags (AVX2, AVX-512, AMX), cores and
    the load average now, so that figures from different CPUs are never compared as if equal."""
    model, flags = platform.processor() or platform.machine(), set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model in ("", platform.machine(), platform.processor()):
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    vector = sorted(f for f in flags if f == "avx2" or f.startswith(("avx512", "amx", "avx_vnni")))
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {
        "cpu": model,
        "vector_flags": vector,
        "cores": os.cpu_count(),
        "load_average": load,
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def write_results(name: str, rows: list[dict[str, Any]], **summary: Any) -> Path:
    """Write ``{"benchmark": name, "machine": ..., **summary, "rows": rows}`` to ``results/<name>.json``.

    ``machine`` (see :func:`machine_info`) is read when the results are written; a benchmark that
    measures speed should also record the load average from before its runs (``load_before=...``).
    """
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    payload = {
        "benchmark": name,
        "machine": machine_info(),
        **summary,
        "rows": rows,
    }
    path.write_text(json.dumps(payload, indent=2, default=str))
    return path


def with_optim(cls: type, **params: Any) -> Any:
    """``cls`` built from flat keyword arguments: the :class:`~crossrec.training.OptimConfig` fields
    (learning rate, epochs, seed, ...) go into ``optim=``, the rest are the model's own (a benchmark's
    grids list both kinds side by side)."""
    from crossrec.training.optim import OptimConfig

    fields = set(OptimConfig.model_fields)
    optim = {key: params.pop(key) for key in list(params) if key in fields}
    if "num_threads" in params:  # the model-level spelling of OptimConfig.threads
        optim["threads"] = params.pop("num_threads")
    return cls(**params, optim=optim)
