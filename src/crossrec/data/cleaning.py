"""Cleaning of one domain's interactions: duplicates, minimum value and k-core, with a row-count funnel.

Each step is a set-based DuckDB statement on the domain's table
``(user, item, value, ts, _order)``; each records the rows left in a :class:`Funnel`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from crossrec.data._duck import quote_identifier as qi

__all__ = ["Funnel", "deduplicate", "filter_min_value", "k_core"]


@dataclass
class Funnel:
    """Row counts after every step, in order: ``(domain, source or None, step, rows)``."""

    steps: list[dict[str, object]] = field(default_factory=list)

    def add(self, domain: str, source: str | None, step: str, rows: int) -> None:
        self.steps.append({"domain": domain, "source": source, "step": step, "rows": int(rows)})

    def last(self, domain: str) -> dict[str, object]:
        return [s for s in self.steps if s["domain"] == domain][-1]


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    return con.execute(f"SELECT count(*) FROM {qi(table)}").fetchall()[0][0]  # type: ignore[index]


def deduplicate(con: duckdb.DuckDBPyConnection, source: str, target: str, rule: str, has_time: bool) -> int:
    """Create ``target`` with one row per (user, item) from ``source`` by ``rule``; return its row count.

    ``latest``/``first`` keep the value of the latest/earliest event (ties broken by source order, then
    file position), ``max`` the largest value, ``sum`` the total; the timestamp kept is the latest
    (earliest for ``first``).
    """
    # one HUGEINT key (time, then source and file position) compares much faster than a struct
    order = "(ts::HUGEINT * 18446744073709551616 + _order)" if has_time else "_order"
    value, ts = {
        "latest": (f"arg_max(value, {order})", "max(ts)"),
        "first": (f"arg_min(value, {order})", "min(ts)"),
        "max": ("max(value)", "max(ts)"),
        "sum": ("sum(value)", "max(ts)"),
    }[rule]
    con.execute(
        f"CREATE TABLE {qi(target)} AS SELECT user, item, {value} AS value, {ts} AS ts, min(_order) AS "
        "_order "
        f"FROM {qi(source)} GROUP BY user, item"
    )
    return _count(con, target)


def filter_min_value(con: duckdb.DuckDBPyConnection, table: str, min_value: float) -> int:
    """Delete interactions whose value is below ``min_value``; return the rows left."""
    con.execute(f"DELETE FROM {qi(table)} WHERE value < ?", [min_value])
    return _count(con, table)


def k_core(con: duckdb.DuckDBPyConnection, table: str, k: int) -> int:
    """Keep only users and items with at least ``k`` interactions, repeated until nothing changes."""
    rows = _count(con, table)
    while True:
        con.execute(
            f"DELETE FROM {qi(table)} WHERE user IN (SELECT user FROM {qi(table)} GROUP BY user HAVING "
            "count(*) < ?) "
            f"OR item IN (SELECT item FROM {qi(table)} GROUP BY item HAVING count(*) < ?)",
            [k, k],
        )
        left = _count(con, table)
        if left == rows:
            return left
        rows = left
