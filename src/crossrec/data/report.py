"""Terminal summaries of an ingestion manifest (Rich tables): the funnel, link rates and rejects."""

from __future__ import annotations

from typing import Any

from rich.table import Table

__all__ = ["funnel_table", "links_table", "rejects_table"]


def funnel_table(manifest: dict[str, Any]) -> Table:
    """Rows left after every step, per source and per domain, with how many each step dropped."""
    table = Table(title="Ingestion funnel", title_justify="left")
    for column in ("domain", "source", "step"):
        table.add_column(column)
    table.add_column("rows", justify="right")
    table.add_column("dropped", justify="right")
    previous: dict[tuple[str, str | None], int] = {}
    for step in manifest["funnel"]:
        key = (step["domain"], step["source"])
        if step["source"] is None and step["step"] == "combined":
            before = sum(v for (d, s), v in previous.items() if d == step["domain"] and s is not None)
        else:
            before = previous.get(key, step["rows"])
        dropped = before - step["rows"]
        table.add_row(
            step["domain"],
            step["source"] or "(all)",
            step["step"],
            f"{step['rows']:,}",
            f"{dropped:,}" if dropped else "",
        )
        previous[key] = step["rows"]
    return table


def links_table(manifest: dict[str, Any]) -> Table:
    """For every pair of domains, how many users and items are linked and the rates on each side."""
    table = Table(title="Cross-domain links", title_justify="left")
    for column in ("entity", "domain a", "domain b", "shared", "a linked", "b linked"):
        table.add_column(column, justify="right" if column in ("shared", "a linked", "b linked") else "left")
    for entity in ("users", "items"):
        for pair in manifest["links"][entity]:
            table.add_row(
                entity,
                pair["a"],
                pair["b"],
                f"{pair['shared']:,}",
                f"{pair['a_linked']:,} ({pair['a_rate']:.1%})",
                f"{pair['b_linked']:,} ({pair['b_rate']:.1%})",
            )
    return table


def rejects_table(manifest: dict[str, Any]) -> Table:
    """Rejected rows by reason (details in ``rejects.parquet``)."""
    table = Table(title=f"Rejected rows: {manifest['rejects']['rows']:,}", title_justify="left")
    table.add_column("reason")
    table.add_column("rows", justify="right")
    for reason, count in manifest["rejects"]["by_reason"].items():
        table.add_row(reason, f"{count:,}")
    return table
