"""Typing and validation of staged tables: every row is either clean or a reject with a reason.

The functions here turn a staged table (raw mapped columns) into a typed DuckDB table with the
columns crossrec uses, plus ``_column``/``_reason`` (NULL for clean rows). All of it is one SQL
statement per table; nothing loops over rows in Python.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from crossrec.data._duck import quote_identifier as qi
from crossrec.data._duck import quote_literal as ql
from crossrec.data.normalize import (
    loose_number_sql,
    number_sql,
    tags_sql,
    text_sql,
    timestamp_sql,
    vector_sql,
)
from crossrec.data.readers import StagedTable
from crossrec.data.security import HmacKey
from crossrec.data.sources import AttributeSpec, InteractionTable, ItemTable, UserTable

__all__ = ["Check", "ORDER_SHIFT", "attribute_sql", "type_entities", "type_interactions", "user_id_sql"]

#: ``_order = source_index << ORDER_SHIFT | rowid`` orders rows by source, then file position.
ORDER_SHIFT = 40

_SQL_TYPES = {
    "category": "VARCHAR",
    "text": "VARCHAR",
    "tags": "VARCHAR[]",
    "number": "DOUBLE",
    "vector": "FLOAT[]",
}


@dataclass(frozen=True)
class Check:
    """A validation rule: rows where ``failed`` (SQL over typed columns) are rejected."""

    column: str
    failed: str
    reason: str


def user_id_sql(column: str, pseudonymize: bool) -> str:
    """SQL for a user id: NFC text, or its keyed HMAC pseudonym (32 hex characters)."""
    value = text_sql(qi(column))
    if pseudonymize:
        return f"CASE WHEN {value} IS NULL THEN NULL ELSE left({HmacKey.sql(f'lower({value})')}, 32) END"
    return value


def attribute_sql(spec: AttributeSpec, column: str, duck_type: str) -> str:
    """SQL for an attribute of the given kind, typed for the bundle."""
    expression = qi(column)
    if spec.kind == "number":
        return number_sql(expression, duck_type)
    if spec.kind == "tags":
        return tags_sql(expression, duck_type, spec.separator)
    if spec.kind == "vector":
        return vector_sql(expression, duck_type, spec.separator)
    return text_sql(expression)


def _create_typed(
    con: duckdb.DuckDBPyConnection,
    staged: StagedTable,
    target: str,
    columns: dict[str, str],
    checks: list[Check],
    params: dict[str, object] | None,
    derived: dict[str, str] | None = None,
) -> None:
    select = ", ".join(f"{expression} AS {qi(name)}" for name, expression in columns.items())
    if checks:
        column_case = " ".join(f"WHEN {c.failed} THEN {ql(c.column)}" for c in checks)
        reason_case = " ".join(f"WHEN {c.failed} THEN {ql(c.reason)}" for c in checks)
        verdict = f"CASE {column_case} END AS _column, CASE {reason_case} END AS _reason"
    else:
        verdict = "NULL::VARCHAR AS _column, NULL::VARCHAR AS _reason"
    for name, expression in (derived or {}).items():
        verdict += f", {expression} AS {qi(name)}"
    sql = (
        f"CREATE TABLE {qi(target)} AS SELECT *, {verdict} FROM "
        f"(SELECT rowid AS _rowid, _file, {select} FROM {qi(staged.name)})"
    )
    if params:
        con.execute(sql, params)
    else:
        con.execute(sql)


def type_interactions(
    con: duckdb.DuckDBPyConnection,
    staged: StagedTable,
    target: str,
    table: InteractionTable,
    *,
    pseudonymize: bool,
    params: dict[str, object] | None,
) -> None:
    """Create ``target`` with ``user``, ``item``, ``value`` (normalised), ``raw_value``, ``ts`` and link keys.

    ``value`` is the event weight times the value rescaled by ``rating_scale``, or 1.0 for an implicit
    positive when ``positive_threshold`` is set. Rows below the threshold keep ``_reason`` NULL and
    ``positive = false``; they are filtered (and counted) by the caller, they are not errors.
    """
    types = staged.types
    columns = {
        "user": user_id_sql(table.user, pseudonymize),
        "item": text_sql(qi(table.item)),
        "raw_value": "1.0::DOUBLE"
        if table.value is None
        else number_sql(qi(table.value), types[table.value]),
        "ts": "NULL::BIGINT"
        if table.timestamp is None
        else timestamp_sql(qi(table.timestamp), types[table.timestamp], table.timestamp_format),
        "weight": "1.0::DOUBLE",
    }
    checks = [
        Check(table.user, "user IS NULL", "missing user id"),
        Check(table.item, "item IS NULL", "missing item id"),
    ]
    if table.value is not None:
        raw = qi(table.value)
        columns["_value_missing"] = (
            f"({raw} IS NULL OR {text_sql(raw)} IS NULL)"
            if types[table.value].upper() in ("VARCHAR", "JSON")
            else f"({raw} IS NULL)"
        )
        columns["_value_number"] = loose_number_sql(raw, types[table.value])
        checks += [
            Check(table.value, "_value_missing", "value is empty"),
            Check(table.value, "_value_number IS NULL", "value is not a number (e.g. '5/5', 'good', '4,0')"),
            Check(table.value, "raw_value IS NULL", "value is NaN or infinite"),
        ]
        if table.rating_scale is not None:
            low, high = table.rating_scale
            checks.append(
                Check(
                    table.value,
                    f"raw_value < {low!r} OR raw_value > {high!r}",
                    f"value outside rating_scale [{low:g}, {high:g}]",
                )
            )
    if table.timestamp is not None:
        checks.append(
            Check(
                table.timestamp,
                "ts IS NULL",
                f"timestamp is empty or not readable as {table.timestamp_format}",
            )
        )
    if table.event is not None:
        cases = " ".join(
            f"WHEN {ql(event)} THEN {float(weight)!r}"
            for event, weight in sorted(table.event_weights.items())
        )
        columns["weight"] = f"CASE {text_sql(qi(table.event))} {cases} ELSE NULL END"
        checks.append(Check(table.event, "weight IS NULL", "event type is not listed in event_weights"))
    for kind, column in table.link_keys.items():
        columns[f"_key_{kind}"] = text_sql(qi(column))
    value = "raw_value"
    if table.positive_threshold is not None:
        value = "1.0"
    elif table.rating_scale is not None:
        low, high = table.rating_scale
        value = f"(raw_value - {low!r}) / {high - low!r}"
    positive = "true" if table.positive_threshold is None else f"raw_value >= {table.positive_threshold!r}"
    derived = {"value": f"CAST({value} * weight AS DOUBLE)", "positive": positive}
    _create_typed(con, staged, target, columns, checks, params, derived)


def type_entities(
    con: duckdb.DuckDBPyConnection,
    staged: StagedTable,
    target: str,
    table: UserTable | ItemTable,
    *,
    pseudonymize: bool,
    params: dict[str, object] | None,
) -> dict[str, str]:
    """Create ``target`` with ``id``, typed attributes (``a_NAME``), link keys and item link columns.

    Returns the attribute kinds by name.
    """
    types = staged.types
    specs = table.attribute_specs()
    columns = {
        "id": user_id_sql(table.id, pseudonymize) if isinstance(table, UserTable) else text_sql(qi(table.id))
    }
    checks = [Check(table.id, "id IS NULL", "missing id")]
    for name, spec in specs.items():
        column = spec.column or name
        columns[f"a_{name}"] = (
            f"CAST({attribute_sql(spec, column, types[column])} AS {_SQL_TYPES[spec.kind]})"
        )
        if spec.kind == "number":
            checks.append(
                Check(column, f"a_{name} IS NULL AND {qi('raw_' + name)} IS NOT NULL", "not a number")
            )
            columns[f"raw_{name}"] = text_sql(qi(column))
        elif spec.kind == "vector":
            checks.append(
                Check(
                    column,
                    f"list_contains(list_transform(a_{name}, lambda x: x IS NULL), true)",
                    "not a numeric vector",
                )
            )
    for kind, column in table.link_keys.items():
        columns[f"_key_{kind}"] = text_sql(qi(column))
    if isinstance(table, ItemTable):
        if table.link_key is not None:
            columns["_item_key"] = text_sql(qi(table.link_key))
        if table.link_title is not None:
            columns["_item_title"] = text_sql(qi(table.link_title))
    _create_typed(con, staged, target, columns, checks, params)
    return {name: spec.kind for name, spec in specs.items()}
