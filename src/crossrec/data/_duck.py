"""DuckDB connections for ingestion: bounded threads and memory, spilling to a scratch folder."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

__all__ = ["connect", "quote_identifier", "quote_literal"]


def connect(
    scratch: Path, *, threads: int | None = None, memory_limit: str | None = None
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB that spills to ``scratch`` when it would exceed ``memory_limit``.

    Defaults come from ``CROSSREC_DUCKDB_THREADS`` (else 2) and ``CROSSREC_DUCKDB_MEMORY`` (else ``2GB``).
    """
    threads = threads or int(os.environ.get("CROSSREC_DUCKDB_THREADS", "2"))
    memory_limit = memory_limit or os.environ.get("CROSSREC_DUCKDB_MEMORY", "2GB")
    con = duckdb.connect(
        ":memory:",
        config={
            "threads": threads,
            "memory_limit": memory_limit,
            "temp_directory": str(scratch),
            "preserve_insertion_order": True,
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
        },
    )
    con.execute("SET enable_progress_bar = false")
    return con


def quote_identifier(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    """``text`` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"
