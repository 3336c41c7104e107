"""Ingestion: many sources in, one clean, versioned bundle out (``crossrec ingest``).

Data flows read -> type and validate (rejects) -> normalise -> threshold -> per-domain deduplicate
-> minimum value -> k-core -> vocabularies -> identity and item links -> bundle. All row work is in
DuckDB; Python only sees distinct phone numbers, link keys of kept users and items, and rejects.
"""

from __future__ import annotations

import glob
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from crossrec import __version__
from crossrec.data._duck import connect
from crossrec.data._duck import quote_identifier as qi
from crossrec.data._duck import quote_literal as ql
from crossrec.data.bundle import write_bundle, write_parquet
from crossrec.data.cleaning import Funnel, deduplicate, filter_min_value, k_core
from crossrec.data.errors import BundleError, IngestError, SourcesError
from crossrec.data.linking import LINK_COLUMNS, item_links, link_rates, user_links
from crossrec.data.normalize import identity_key_sql, item_key_sql, normalize_phones, title_sql
from crossrec.data.outputs import (
    OutputFolderError,
    check_replaceable,
    clean_stale_work_folders,
    make_work_folder,
)
from crossrec.data.readers import StagedTable, sqlite_path, stage_table
from crossrec.data.security import HmacKey, check_credential_values, check_no_emails, load_link_key
from crossrec.data.sources import SourceConfig, SourcesFile, load_sources
from crossrec.data.tables import ORDER_SHIFT, type_entities, type_interactions

__all__ = ["IngestResult", "ingest"]

log = logging.getLogger(__name__)

_BATCH = 1 << 17
_ARROW_TYPES = {
    "category": pa.string(),
    "text": pa.string(),
    "tags": pa.list_(pa.string()),
    "number": pa.float64(),
    "vector": pa.list_(pa.float32()),
}
_SQL_TYPES = {
    "category": "VARCHAR",
    "text": "VARCHAR",
    "tags": "VARCHAR[]",
    "number": "DOUBLE",
    "vector": "FLOAT[]",
}
_REJECT_SCHEMA = pa.schema(
    [
        ("source", pa.string()),
        ("table", pa.string()),
        ("file", pa.string()),
        ("row", pa.int64()),
        ("column", pa.string()),
        ("reason", pa.string()),
    ]
)
_LINK_SCHEMA = pa.schema(
    [
        ("entity", pa.string()),
        ("link_id", pa.string()),
        ("domain", pa.string()),
        ("id", pa.string()),
        ("index", pa.int64()),
        ("method", pa.string()),
        ("score", pa.float64()),
    ]
)
_FIX_EMAIL_ID = (
    "declare the column under link_keys (e.g. link_keys = {email = ...}) and set pseudonymize_user_ids = true"
)


@dataclass(frozen=True)
class IngestResult:
    """What :func:`ingest` wrote: the bundle folder and its manifest."""

    path: Path
    manifest: dict[str, Any]


@dataclass
class _DomainState:
    name: str
    sources: list[str] = field(default_factory=list)
    has_time: bool = True
    user_kinds: dict[str, str] = field(default_factory=dict)
    item_kinds: dict[str, str] = field(default_factory=dict)
    item_method: str | None = None
    typed: list[tuple[int, str]] = field(default_factory=list)
    has_users: bool = False
    has_items: bool = False


class _Run:
    """State of one ingestion run (a DuckDB connection with one table per stage)."""

    def __init__(
        self, con: duckdb.DuckDBPyConnection, config: SourcesFile, base_dir: Path, scratch: Path
    ) -> None:
        self.con = con
        self.config = config
        self.base_dir = base_dir
        self.scratch = scratch
        self.key: HmacKey | None = None
        self.funnel = Funnel()
        self.source_stats: dict[str, dict[str, Any]] = {}
        self.domains = {name: _DomainState(name) for name in config.domain_names}
        self.warnings: list[str] = []
        con.execute(
            'CREATE TABLE _rejects (source VARCHAR, "table" VARCHAR, file VARCHAR, "row" BIGINT, '
            '"column" VARCHAR, reason VARCHAR, _seq BIGINT)'
        )
        con.execute("CREATE TABLE _user_keys (domain VARCHAR, user VARCHAR, key VARCHAR)")
        self._reject_seq = 0

    # ------------------------------------------------------------------------------------- rejects

    def _add_rejects(self, table: pa.Table) -> None:
        seq = np.arange(self._reject_seq, self._reject_seq + table.num_rows, dtype=np.int64)
        self._reject_seq += table.num_rows
        batch = table.append_column("_seq", pa.array(seq))
        self.con.register("_reject_batch", batch)
        self.con.execute("INSERT INTO _rejects SELECT * FROM _reject_batch")
        self.con.unregister("_reject_batch")

    def reject_structural(self, source: str, table: str, staged: StagedTable) -> None:
        if not staged.structural_rejects:
            return
        frame = pd.DataFrame(staged.structural_rejects)
        self._add_rejects(
            pa.table(
                {
                    "source": [source] * len(frame),
                    "table": [table] * len(frame),
                    "file": frame["file"].astype(str),
                    "row": frame["row"].astype(np.int64),
                    "column": frame["column"].astype(object).where(frame["column"].notna(), None),
                    "reason": frame["reason"].astype(str),
                },
                schema=_REJECT_SCHEMA,
            )
        )

    def reject_rows(
        self, source: str, table: str, staged: StagedTable, typed: str, where: str, column: str, reason: str
    ) -> int:
        found = self.con.execute(
            f"SELECT _file, _rowid, {column} AS c, {reason} AS r FROM {qi(typed)} WHERE {where} ORDER BY "
            "_rowid"
        ).fetchnumpy()
        n = len(found["_file"])
        if n:
            file_index = np.asarray(found["_file"], dtype=np.int64)
            self._add_rejects(
                pa.table(
                    {
                        "source": pa.array([source] * n, pa.string()),
                        "table": pa.array([table] * n, pa.string()),
                        "file": pa.array(np.asarray(staged.files, dtype=object)[file_index], pa.string()),
                        "row": pa.array(staged.line_numbers(file_index, np.asarray(found["_rowid"]))),
                        "column": pa.array(np.asarray(found["c"], dtype=object), pa.string()),
                        "reason": pa.array(np.asarray(found["r"], dtype=object), pa.string()),
                    },
                    schema=_REJECT_SCHEMA,
                )
            )
        return n

    def check_reject_rate(self, source: str, table: str, read: int, rejected: int) -> float:
        """Warn above ``[rejects] warn_rate``, fail above ``fail_rate``; returns the rate."""
        rate = rejected / read if read else 0.0
        limits = self.config.rejects
        if rate <= limits.warn_rate:
            return rate
        reasons = self.con.execute(
            'SELECT reason, count(*) n FROM _rejects WHERE source = ? AND "table" = ? '
            "GROUP BY 1 ORDER BY n DESC, reason LIMIT 3",
            [source, table],
        ).fetchall()
        detail = "; ".join(f"{n:,} x {reason}" for reason, n in reasons)
        where = f"source '{source}' {table}"
        if rate > limits.fail_rate:
            raise IngestError(
                f"{where}: {rejected:,} of {read:,} rows ({rate:.1%}) were rejected, more than "
                f"[rejects] fail_rate = {limits.fail_rate:g} ({detail}); check the column mapping, types "
                "and rating_scale, or raise fail_rate in the sources file"
            )
        self.warnings.append(
            f"{where}: {rejected:,} of {read:,} rows ({rate:.1%}) were rejected, more than [rejects] "
            f"warn_rate = {limits.warn_rate:g} ({detail}); details in rejects.parquet"
        )
        return rate

    # ------------------------------------------------------------------------------------- helpers

    def count(self, table: str, where: str = "true") -> int:
        return self.con.execute(f"SELECT count(*) FROM {qi(table)} WHERE {where}").fetchall()[0][0]  # type: ignore[index]

    def params(self, needed: bool) -> dict[str, object] | None:
        if not needed:
            return None
        assert self.key is not None
        return dict(self.key.params)

    def stage(self, index: int, name: str, label: str, table: Any, columns: list[str]) -> StagedTable:
        where = f"source '{name}' {label}"
        staged = stage_table(
            self.con,
            table,
            columns,
            table_name=f"s{index}_{label}",
            base_dir=self.base_dir,
            scratch=self.scratch,
            where=where,
        )
        text_columns = [c for c in dict.fromkeys(columns) if staged.types[c] in ("VARCHAR", "JSON")]
        check_credential_values(self.con, staged.name, text_columns, where)
        return staged


# ------------------------------------------------------------------------------------------------ sources


def _ingest_interactions(run: _Run, index: int, name: str, source: SourceConfig) -> None:
    domain = run.config.domain_of(name)
    state = run.domains[domain]
    state.sources.append(name)
    table = source.interactions
    state.has_time &= table.timestamp is not None
    columns = [table.user, table.item] + [c for c in (table.value, table.timestamp, table.event) if c]
    columns += list(table.link_keys.values())
    staged = run.stage(index, name, "interactions", table, columns)
    where = f"source '{name}' interactions"
    if not source.pseudonymize_user_ids:
        check_no_emails(run.con, staged.name, [table.user], where, _FIX_EMAIL_ID)
    check_no_emails(run.con, staged.name, [table.item], where, "item ids must not be personal identifiers")
    typed = f"t{index}_interactions"
    type_interactions(
        run.con,
        staged,
        typed,
        table,
        pseudonymize=source.pseudonymize_user_ids,
        params=run.params(source.pseudonymize_user_ids),
    )
    run.con.execute(f"DROP TABLE {qi(staged.name)}")
    run.reject_structural(name, "interactions", staged)
    rejected = run.reject_rows(
        name, "interactions", staged, typed, "_reason IS NOT NULL", "_column", "_reason"
    )
    read = staged.rows + len(staged.structural_rejects)
    valid = staged.rows - rejected
    rate = run.check_reject_rate(name, "interactions", read, read - valid)
    run.funnel.add(domain, name, "read", read)
    run.funnel.add(domain, name, "valid", valid)
    kept = valid
    if table.positive_threshold is not None:
        kept = run.count(typed, "_reason IS NULL AND positive")
        run.funnel.add(domain, name, f"value >= {table.positive_threshold:g} (positive)", kept)
    if kept == 0:
        reasons = run.con.execute(
            f"SELECT _reason, count(*) n FROM {qi(typed)} WHERE _reason IS NOT NULL GROUP BY 1 ORDER BY n "
            "DESC LIMIT 3"
        ).fetchall()
        detail = "; ".join(f"{n} x {r}" for r, n in reasons) or "every row is below positive_threshold"
        raise IngestError(
            f"source '{name}' interactions: no rows left after validation and filtering ({detail}); "
            "check the column mapping, types and positive_threshold"
        )
    if table.link_keys:
        _collect_identity_keys(run, name, domain, "interactions", staged, typed, "user", table.link_keys)
    state.typed.append((index, typed))
    run.source_stats[name]["tables"]["interactions"] = {
        "location": table.describe(),
        "format": "sql" if table.is_sql else table.file_format,
        "files": len(staged.files),
        "rows_read": read,
        "rejected": read - valid,
        "reject_rate": round(rate, 6),
        "kept": kept,
        "ignored_columns": list(table.ignore_columns),
    }
    log.info("source %r: %d interactions read, %d kept", name, read, kept)


def _exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    return bool(
        con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [table]
        ).fetchall()[0][0]  # type: ignore[index]
    )


def _ingest_entities(run: _Run, index: int, name: str, source: SourceConfig, label: str) -> None:
    table = source.users if label == "users" else source.items
    if table is None:
        return
    domain = run.config.domain_of(name)
    state = run.domains[domain]
    specs = table.attribute_specs()
    columns = (
        [table.id] + [spec.column or attr for attr, spec in specs.items()] + list(table.link_keys.values())
    )
    if label == "items":
        columns += [c for c in (table.link_key, table.link_title) if c]  # type: ignore[union-attr]
    staged = run.stage(index, name, label, table, columns)
    where = f"source '{name}' {label}"
    visible = [
        spec.column or attr for attr, spec in specs.items() if spec.kind in ("category", "text", "tags")
    ]
    pseudonymize = label == "users" and source.pseudonymize_user_ids
    check_no_emails(
        run.con, staged.name, ([] if pseudonymize else [table.id]) + visible, where, _FIX_EMAIL_ID
    )
    typed = f"t{index}_{label}"
    kinds = type_entities(
        run.con, staged, typed, table, pseudonymize=pseudonymize, params=run.params(pseudonymize)
    )
    run.con.execute(f"DROP TABLE {qi(staged.name)}")
    run.reject_structural(name, label, staged)
    rejected = run.reject_rows(name, label, staged, typed, "_reason IS NOT NULL", "_column", "_reason")
    if table.link_keys:
        _collect_identity_keys(run, name, domain, label, staged, typed, "id", table.link_keys)
    all_kinds = state.user_kinds if label == "users" else state.item_kinds
    all_kinds.update(kinds)
    target = f"{label}_{domain}"
    link_sql = "NULL::VARCHAR"
    if label == "items":
        state.has_items = True
        if table.link_key is not None:  # type: ignore[union-attr]
            link_sql, state.item_method = item_key_sql("_item_key"), "key"
        elif table.link_title is not None:  # type: ignore[union-attr]
            link_sql, state.item_method = title_sql("_item_title"), "title"
    else:
        state.has_users = True
    if not _exists(run.con, target):
        run.con.execute(f"CREATE TABLE {qi(target)} (id VARCHAR, _link VARCHAR, _order BIGINT)")
    for attr, kind in kinds.items():
        run.con.execute(
            f"ALTER TABLE {qi(target)} ADD COLUMN IF NOT EXISTS {qi('a_' + attr)} {_SQL_TYPES[kind]}"
        )
    attributes = "".join(f", {qi('a_' + attr)}" for attr in kinds)
    run.con.execute(
        f"INSERT INTO {qi(target)} BY NAME SELECT id, {link_sql} AS _link, "
        f"({index}::BIGINT << {ORDER_SHIFT}) + _rowid AS _order{attributes} FROM {qi(typed)} WHERE _reason "
        "IS NULL"
    )
    run.con.execute(f"DROP TABLE {qi(typed)}")
    read = staged.rows + len(staged.structural_rejects)
    rate = run.check_reject_rate(name, label, read, read - (staged.rows - rejected))
    run.source_stats[name]["tables"][label] = {
        "location": table.describe(),
        "format": "sql" if table.is_sql else table.file_format,
        "files": len(staged.files),
        "rows_read": read,
        "rejected": read - (staged.rows - rejected),
        "reject_rate": round(rate, 6),
        "kept": staged.rows - rejected,
        "ignored_columns": list(table.ignore_columns),
    }


def _collect_identity_keys(
    run: _Run,
    source: str,
    domain: str,
    label: str,
    staged: StagedTable,
    typed: str,
    id_column: str,
    link_keys: dict[str, str],
) -> None:
    """Normalise and HMAC the link keys of valid rows into ``_user_keys``; invalid keys become rejects."""
    if run.key is None:  # pragma: no cover - load_link_key runs first whenever link keys are declared
        raise IngestError("identity linking needs an HMAC key")
    con = run.con
    for kind, column in link_keys.items():
        raw = qi(f"_key_{kind}")
        tmp = f"_keys_{typed}_{kind}"
        if kind == "phone":
            distinct = con.execute(
                f"SELECT DISTINCT {raw} FROM {qi(typed)} WHERE _reason IS NULL AND {raw} IS NOT NULL ORDER "
                "BY 1"
            ).fetchnumpy()[f"_key_{kind}"]
            values = np.asarray(distinct, dtype=object)
            mapping = pa.table(
                {
                    "raw": pa.array(values, pa.string()),
                    "norm": pa.array(normalize_phones(values, run.config.link.phone_region), pa.string()),
                }
            )
            con.register("_phone_map", mapping)
            con.execute(
                f"CREATE TEMP TABLE {qi(tmp)} AS SELECT t._file, t._rowid, t.{qi(id_column)} AS user, m.norm "
                f"FROM {qi(typed)} t JOIN _phone_map m ON m.raw = t.{raw} WHERE t._reason IS NULL"
            )
            con.unregister("_phone_map")
            reason = f"not a possible phone number for region {run.config.link.phone_region}"
        else:
            con.execute(
                f"CREATE TEMP TABLE {qi(tmp)} AS SELECT _file, _rowid, {qi(id_column)} AS user, "
                f"{identity_key_sql(kind, raw)} AS norm FROM {qi(typed)} WHERE _reason IS NULL AND {raw} IS "
                "NOT NULL"
            )
            reason = f"not a valid {kind}"
        run.reject_rows(
            source,
            label,
            staged,
            tmp,
            "norm IS NULL",
            ql(column),
            ql(f"{reason}; link key ignored, row kept"),
        )
        con.execute(
            f"INSERT INTO _user_keys SELECT DISTINCT {ql(domain)}, user, "
            f"{HmacKey.sql(ql(kind + ':') + ' || norm')} FROM {qi(tmp)} WHERE norm IS NOT NULL",
            run.key.params,
        )
        con.execute(f"DROP TABLE {qi(tmp)}")


# ------------------------------------------------------------------------------------------------ domains


def _clean_domain(run: _Run, state: _DomainState) -> None:
    con, name = run.con, state.name
    settings = run.config.domain_config(name)
    rule = settings.duplicates or ("latest" if state.has_time else "max")
    if rule == "latest" and not state.has_time:
        raise SourcesError(
            f"[domains.{name}] duplicates = 'latest' needs a timestamp in every source of the domain; "
            "map 'timestamp' or use 'first', 'max' or 'sum'"
        )
    raw = f"inter_{name}"
    con.execute(
        f"CREATE VIEW {qi(raw)} AS "
        + " UNION ALL ".join(
            f"SELECT user, item, value, ts, ({index}::BIGINT << {ORDER_SHIFT}) + _rowid AS _order "
            f"FROM {qi(typed)} WHERE _reason IS NULL AND positive"
            for index, typed in state.typed
        )
    )
    combined = run.count(raw)
    run.funnel.add(name, None, "combined", combined)
    # ids become integer codes (in id order) once, so that every later step groups and joins integers
    for entity, column in (("users", "user"), ("items", "item")):
        con.execute(
            f"CREATE TABLE {qi(f'codes_{entity}_{name}')} AS SELECT id, (row_number() OVER (ORDER BY id) - "
            "1)::BIGINT "
            f"AS code FROM (SELECT DISTINCT {column} AS id FROM {qi(raw)})"
        )
    coded = f"coded_{name}"
    con.execute(
        f"CREATE TABLE {qi(coded)} AS SELECT u.code AS user, i.code AS item, r.value, r.ts, r._order "
        f"FROM {qi(raw)} r JOIN {qi('codes_users_' + name)} u ON u.id = r.user "
        f"JOIN {qi('codes_items_' + name)} i ON i.id = r.item"
    )
    con.execute(f"DROP VIEW {qi(raw)}")
    for _, typed in state.typed:
        con.execute(f"DROP TABLE {qi(typed)}")
    raw = coded
    clean = f"clean_{name}"
    rows = deduplicate(con, raw, clean, rule, state.has_time)
    con.execute(f"DROP TABLE {qi(raw)}")
    run.funnel.add(name, None, f"deduplicated ({rule})", rows)
    step = "deduplication"
    if settings.min_value is not None:
        rows = filter_min_value(con, clean, settings.min_value)
        run.funnel.add(name, None, f"value >= {settings.min_value:g}", rows)
        step = f"min_value = {settings.min_value:g}"
    if settings.k_core > 0:
        rows = k_core(con, clean, settings.k_core)
        run.funnel.add(name, None, f"{settings.k_core}-core", rows)
        step = f"k_core = {settings.k_core}"
    if rows == 0:
        raise IngestError(
            f"domain '{name}': no interactions left after {step} ({combined} before cleaning); "
            f"loosen [domains.{name}] (k_core, min_value) or the sources' positive_threshold"
        )
    for entity, column in (("users", "user"), ("items", "item")):
        codes = qi(f"codes_{entity}_{name}")
        con.execute(
            f"CREATE TABLE {qi(f'vocab_{entity}_{name}')} AS SELECT c.id, c.code, "
            f"(row_number() OVER (ORDER BY c.code) - 1)::BIGINT AS index FROM {codes} c "
            f"SEMI JOIN (SELECT DISTINCT {column} AS code FROM {qi(clean)}) k ON k.code = c.code ORDER BY "
            "index"
        )
        con.execute(f"DROP TABLE {codes}")
        table = f"{entity}_{name}"
        if _exists(con, table):
            before = run.count(table)
            con.execute(
                f"CREATE TABLE {qi(table + '_first')} AS SELECT * FROM {qi(table)} "
                "QUALIFY row_number() OVER (PARTITION BY id ORDER BY _order) = 1"
            )
            con.execute(f"DROP TABLE {qi(table)}")
            con.execute(f"ALTER TABLE {qi(table + '_first')} RENAME TO {qi(table)}")
            duplicates = before - run.count(table)
            if duplicates:
                run.warnings.append(
                    f"domain '{name}': {duplicates} duplicate {entity} rows (same id); kept the first"
                )


# ------------------------------------------------------------------------------------------------ links


def _links(run: _Run) -> tuple[pd.DataFrame, dict[str, Any]]:
    con = run.con
    order = run.config.domain_names
    user_frames, item_frames = [], []
    for name, state in run.domains.items():
        user_frames.append(
            con.execute(
                f"SELECT {ql(name)} AS domain, v.id, v.index, k.key FROM _user_keys k "
                f"JOIN {qi('vocab_users_' + name)} v ON v.id = k.user WHERE k.domain = {ql(name)}"
            ).df()
        )
        if state.item_method is not None:
            item_frames.append(
                con.execute(
                    f"SELECT {ql(name)} AS domain, v.id, v.index, {ql(state.item_method)} AS method, "
                    "e._link AS key "
                    f"FROM {qi('vocab_items_' + name)} v JOIN {qi('items_' + name)} e ON e.id = v.id "
                    "WHERE e._link IS NOT NULL"
                ).df()
            )
    users = user_links(pd.concat(user_frames, ignore_index=True), order)
    items = item_links(
        pd.concat(item_frames, ignore_index=True) if item_frames else pd.DataFrame(),
        order,
        run.config.link.item_fuzzy_threshold,
    )
    n_users = {name: run.count(f"vocab_users_{name}") for name in order}
    n_items = {name: run.count(f"vocab_items_{name}") for name in order}
    summary = {
        "users": link_rates(users, n_users, order),
        "items": link_rates(items, n_items, order),
        "user_link_rate": {
            name: round(users.loc[users["domain"] == name, "index"].nunique() / n_users[name], 6)
            for name in order
        },
        "item_match_rate": {
            name: round(items.loc[items["domain"] == name, "index"].nunique() / n_items[name], 6)
            for name in order
        },
        "item_methods": {name: state.item_method for name, state in run.domains.items()},
    }
    links = (
        pd.concat([users, items], ignore_index=True)
        if len(users) or len(items)
        else pd.DataFrame(columns=LINK_COLUMNS)
    )
    return links, summary


def _overlap_warnings(run: _Run, summary: dict[str, Any]) -> None:
    roles = {name: run.config.domain_config(name).role for name in run.config.domain_names}
    sources = [name for name, role in roles.items() if role == "source"]
    for target in (name for name, role in roles.items() if role == "target"):
        shared = sum(
            pair["shared"]
            for entity in ("users", "items")
            for pair in summary[entity]
            if {pair["a"], pair["b"]} & set(sources)
            and target in (pair["a"], pair["b"])
            and pair["a"] != pair["b"]
        )
        if shared == 0:
            run.warnings.append(
                f"target domain '{target}' shares no users or items with any source domain; "
                "transfer can only go through content features"
            )


# ------------------------------------------------------------------------------------------------ writing


def _entity_writer(run: _Run, entity: str) -> Any:
    column = "user" if entity == "users" else "item"
    kinds: dict[str, str] = {}
    for state in run.domains.values():
        kinds.update(state.user_kinds if entity == "users" else state.item_kinds)
    schema = pa.schema(
        [("domain", pa.string()), (column, pa.string()), ("index", pa.int64())]
        + [(attr, _ARROW_TYPES[kind]) for attr, kind in kinds.items()]
    )

    def batches() -> Any:
        for name, state in run.domains.items():
            mine = state.user_kinds if entity == "users" else state.item_kinds
            has_table = state.has_users if entity == "users" else state.has_items
            attrs = "".join(
                f", {'e.' + qi('a_' + attr) if attr in mine and has_table else 'NULL::' + _SQL_TYPES[kind]} "
                f"AS {qi(attr)}"
                for attr, kind in kinds.items()
            )
            join = f"LEFT JOIN {qi(entity + '_' + name)} e ON e.id = v.id" if has_table else ""
            query = (
                f"SELECT {ql(name)} AS domain, v.id AS {column}, v.index{attrs} "
                f"FROM {qi(f'vocab_{entity}_{name}')} v {join} ORDER BY v.index"
            )
            yield from run.con.sql(query).to_arrow_reader(_BATCH)

    return lambda path: write_parquet(path, batches(), schema)


def _interactions_writer(run: _Run) -> Any:
    schema = pa.schema(
        [
            ("domain", pa.string()),
            ("user_index", pa.int64()),
            ("item_index", pa.int64()),
            ("value", pa.float32()),
            ("timestamp", pa.int64()),
        ]
    )

    def batches() -> Any:
        for name in run.domains:
            query = (
                f"SELECT {ql(name)} AS domain, u.index AS user_index, i.index AS item_index, "
                f"CAST(c.value AS FLOAT) AS value, c.ts AS timestamp FROM {qi('clean_' + name)} c "
                f"JOIN {qi('vocab_users_' + name)} u ON u.code = c.user JOIN {qi('vocab_items_' + name)} i "
                "ON i.code = c.item "
                "ORDER BY user_index, item_index"
            )
            yield from run.con.sql(query).to_arrow_reader(_BATCH)

    return lambda path: write_parquet(path, batches(), schema)


def _domain_summary(run: _Run) -> dict[str, Any]:
    out = {}
    for name, state in run.domains.items():
        settings = run.config.domain_config(name)
        out[name] = {
            "role": settings.role,
            "sources": state.sources,
            "users": run.count(f"vocab_users_{name}"),
            "items": run.count(f"vocab_items_{name}"),
            "interactions": run.count(f"clean_{name}"),
            "has_timestamps": state.has_time,
            "duplicates": settings.duplicates or ("latest" if state.has_time else "max"),
            "min_value": settings.min_value,
            "k_core": settings.k_core,
            "user_attributes": dict(state.user_kinds),
            "item_attributes": dict(state.item_kinds),
        }
    return out


def _unwritable(output: Path, error: OSError) -> str:
    where = f" ({error.filename})" if error.filename else ""
    return (
        f"cannot write the bundle {output}: {error.strerror or error}{where}; choose a folder you can write "
        "to, with enough free space"
    )


def _input_paths(config: SourcesFile, sources_path: Path, base_dir: Path) -> list[Path]:
    """Files and folders the ingest reads: the output folder may be none of them and contain none."""
    inputs = [sources_path, base_dir]
    for source in config.sources.values():
        for table in (source.interactions, source.users, source.items):
            if table is None:
                continue
            if table.path is not None:
                path = Path(os.path.expanduser(table.path))
                path = path if path.is_absolute() else base_dir / path
                while glob.has_magic(str(path)):
                    path = path.parent
                inputs.append(path)
            elif table.url and table.url.lower().startswith("sqlite"):
                inputs.append(sqlite_path(table.url, base_dir))
    if config.link.key_file is not None:
        key_file = Path(config.link.key_file)
        inputs.append(key_file if key_file.is_absolute() else sources_path.resolve().parent / key_file)
    return inputs


def ingest(
    sources: str | Path,
    output: str | Path,
    *,
    data_dir: str | Path | None = None,
    overwrite: bool = False,
    threads: int | None = None,
    memory_limit: str | None = None,
) -> IngestResult:
    """Ingest the sources declared in a sources file into a bundle folder.

    Parameters
    ----------
    sources
        The sources TOML file.
    output
        Bundle folder to create (atomically: it appears complete or not at all).
    data_dir
        Folder that relative data paths are resolved against (default: the sources file's folder).
    overwrite
        Replace an existing bundle.
    threads, memory_limit
        DuckDB limits (default 2 threads and ``2GB``; see :func:`crossrec.data._duck.connect`).

    Returns
    -------
    IngestResult
        The bundle path and its manifest (counts, funnel, link rates, warnings).

    Raises
    ------
    IngestError
        With the source, file, key or column at fault and what to change.
    """
    sources_path = Path(sources)
    config, sources_sha = load_sources(sources_path)
    output = Path(output)
    base_dir = Path(data_dir) if data_dir is not None else sources_path.resolve().parent
    try:
        check_replaceable(
            output, kind="bundle", force=overwrite, inputs=_input_paths(config, sources_path, base_dir)
        )
    except OutputFolderError as error:
        raise BundleError(str(error)) from None
    if not base_dir.is_dir():
        raise IngestError(f"data folder {base_dir} does not exist; check --data-dir")
    key = load_link_key(config.link, sources_path.resolve().parent) if config.links_identities else None
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        stale = clean_stale_work_folders(output.parent, output.name)
        scratch = make_work_folder(output.parent, output.name, "scratch")
    except OSError as error:
        raise BundleError(_unwritable(output, error)) from None
    con = connect(scratch, threads=threads, memory_limit=memory_limit)
    try:
        run = _Run(con, config, base_dir, scratch)
        run.key = key
        run.warnings.extend(stale.messages())
        for removed in stale.removed:
            log.info("removed %s, left behind by an earlier run that did not finish", removed)
        for index, (name, source) in enumerate(config.sources.items()):
            run.source_stats[name] = {"domain": config.domain_of(name), "tables": {}}
            _ingest_interactions(run, index, name, source)
            _ingest_entities(run, index, name, source, "users")
            _ingest_entities(run, index, name, source, "items")
        for state in run.domains.values():
            _clean_domain(run, state)
        links, link_summary = _links(run)
        _overlap_warnings(run, link_summary)
        reject_rows = run.count("_rejects")
        by_reason = dict(
            con.execute(
                "SELECT reason, count(*) FROM _rejects GROUP BY reason ORDER BY count(*) DESC, reason"
            ).fetchall()
        )
        manifest = {
            "crossrec_version": __version__,
            "sources_file": sources_path.name,
            "sources_sha256": sources_sha,
            "sources": run.source_stats,
            "domains": _domain_summary(run),
            "funnel": run.funnel.steps,
            "links": link_summary,
            "rejects": {
                "rows": reject_rows,
                "by_reason": by_reason,
                "warn_rate": config.rejects.warn_rate,
                "fail_rate": config.rejects.fail_rate,
            },
            "ignored_columns": {
                f"{name}.{label}": list(table.ignore_columns)
                for name, source in config.sources.items()
                for label, table in (
                    ("interactions", source.interactions),
                    ("users", source.users),
                    ("items", source.items),
                )
                if table is not None and table.ignore_columns
            },
            "warnings": run.warnings,
        }
        tables = {
            "interactions": _interactions_writer(run),
            "users": _entity_writer(run, "users"),
            "items": _entity_writer(run, "items"),
            "links": lambda path: write_parquet(
                path,
                pa.Table.from_pandas(links, schema=_LINK_SCHEMA, preserve_index=False).to_batches(),
                _LINK_SCHEMA,
            ),
            "rejects": lambda path: write_parquet(
                path,
                con.sql(
                    'SELECT source, "table", file, "row", "column", reason FROM _rejects ORDER BY _seq'
                ).to_arrow_reader(_BATCH),
                _REJECT_SCHEMA,
            ),
        }
        try:
            manifest = write_bundle(output, tables, manifest, overwrite=overwrite)
        except OSError as error:
            raise BundleError(_unwritable(output, error)) from None
    finally:
        con.close()
        shutil.rmtree(scratch, ignore_errors=True)
    for warning in manifest["warnings"]:
        log.info("warning: %s", warning)
    return IngestResult(path=output, manifest=manifest)
