"""Readers: stage one declared table (files or a SQL query) into DuckDB, streaming, without per-row Python.

A staged table holds only the mapped columns (as declared; text formats as VARCHAR so that type
coercion failures become rejects, not crashes) plus ``_file``, the index of the file a row came from.
DuckDB's ``rowid`` keeps file order, which gives every reject its line or row number.
"""

from __future__ import annotations

import codecs
import csv
import glob
import io
import os
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from crossrec._extras import require_extra
from crossrec.data._duck import quote_identifier as qi
from crossrec.data._duck import quote_literal as ql
from crossrec.data.errors import IngestError
from crossrec.data.security import check_column_names
from crossrec.data.sources import Location

__all__ = ["StagedTable", "atomic_header", "stage_table"]

_BATCH_ROWS = 65_536


@dataclass
class StagedTable:
    """A table staged in DuckDB.

    Attributes
    ----------
    name
        DuckDB table name.
    files
        Display names of the files (as declared, or the database description), indexed by ``_file``.
    file_starts
        ``rowid`` of each file's first row.
    first_line
        Line number of a file's first data row (2 for text files with a header; 1 for row-numbered formats).
    broken_lines
        Per file, sorted line numbers that could not be parsed (already in the rejects).
    types
        DuckDB type of each staged column.
    rows
        Rows staged.
    structural_rejects
        Rejects found while parsing (wrong number of fields, unterminated quotes).
    """

    name: str
    files: list[str]
    file_starts: list[int]
    first_line: int
    types: dict[str, str]
    rows: int = 0
    broken_lines: dict[int, np.ndarray] = field(default_factory=dict)
    structural_rejects: list[dict[str, object]] = field(default_factory=list)

    def line_numbers(self, file_index: np.ndarray, rowid: np.ndarray) -> np.ndarray:
        """Line (text formats) or row (others) numbers of staged rows."""
        starts = np.asarray(self.file_starts, dtype=np.int64)
        lines = rowid.astype(np.int64) - starts[file_index] + self.first_line
        for index, broken in self.broken_lines.items():
            mine = file_index == index
            for line in broken:  # lines skipped by the parser shift the ones after them
                lines[mine & (lines >= line)] += 1
        return lines


def atomic_header(line: str) -> list[tuple[str, str]]:
    """Parse a RecBole atomic header such as ``user_id:token\\trating:float`` into (name, type) pairs."""
    pairs = []
    for field_text in line.rstrip("\r\n").split("\t"):
        name, _, kind = field_text.partition(":")
        pairs.append((name.strip(), kind.strip() or "token"))
    return pairs


def stage_table(
    con: duckdb.DuckDBPyConnection,
    location: Location,
    columns: list[str],
    *,
    table_name: str,
    base_dir: Path,
    scratch: Path,
    where: str,
) -> StagedTable:
    """Stage the ``columns`` of a declared table into the DuckDB table ``table_name``.

    Parameters
    ----------
    con
        Connection to stage into.
    location
        Where the table is and its format.
    columns
        Mapped columns to keep (others are never read into crossrec).
    table_name
        Name of the DuckDB table to create.
    base_dir
        Folder that relative paths and SQLite files are resolved against.
    scratch
        Folder for temporary files (transcoded text, database exports).
    where
        Human description (``source 'shop' interactions``) used in error messages.

    Raises
    ------
    IngestError
        When files are missing, unreadable, empty or lack mapped columns; CredentialError for
        credential-like columns.
    """
    columns = list(dict.fromkeys(columns))
    check_column_names(columns, where)
    if location.is_sql:
        staged = _stage_sql(con, location, columns, table_name, base_dir, scratch, where)
    else:
        staged = _stage_files(con, location, columns, table_name, base_dir, scratch, where)
    if staged.rows == 0:
        raise IngestError(
            f"{where}: {location.describe()} has no data rows; point the source at a non-empty table or "
            "remove it"
        )
    return staged


# ---------------------------------------------------------------------------------------------- files


def _resolve_files(location: Location, base_dir: Path, where: str) -> list[tuple[str, Path]]:
    assert location.path is not None
    pattern = Path(os.path.expanduser(location.path))
    if not pattern.is_absolute():
        pattern = base_dir / pattern
    if glob.has_magic(str(pattern)):
        matches = sorted(Path(p) for p in glob.glob(str(pattern)) if Path(p).is_file())
        if not matches:
            raise IngestError(
                f"{where}: no file matches {location.path!r} (looked in {pattern.parent}); "
                "check 'path' or pass --data-dir"
            )
        return [(str(Path(location.path).parent / m.name), m) for m in matches]
    if not pattern.is_file():
        raise IngestError(
            f"{where}: file {location.path!r} not found (looked for {pattern}); check 'path' or pass "
            "--data-dir"
        )
    return [(location.path, pattern)]


def _stage_files(
    con: duckdb.DuckDBPyConnection,
    location: Location,
    columns: list[str],
    table_name: str,
    base_dir: Path,
    scratch: Path,
    where: str,
) -> StagedTable:
    files = _resolve_files(location, base_dir, where)
    ignore = list(getattr(location, "ignore_columns", []))
    fmt = location.file_format
    staged = StagedTable(
        name=table_name,
        files=[label for label, _ in files],
        file_starts=[],
        first_line=2 if fmt in ("csv", "tsv", "atomic") else 1,
        types={},
    )
    for index, (label, path) in enumerate(files):
        file_where = f"{where}, file {label}"
        rejects = None
        if fmt == "parquet":
            source_sql = _parquet_sql(path, columns, file_where, ignore)
        elif fmt == "jsonl":
            source_sql = _jsonl_sql(con, path, columns, file_where, ignore)
        else:
            source_sql, rejects = _text_sql(
                con, staged, index, location, path, columns, scratch, file_where, ignore
            )
        select = ", ".join(qi(c) for c in columns)
        staged.file_starts.append(staged.rows)
        verb = f"CREATE TABLE {qi(table_name)} AS" if index == 0 else f"INSERT INTO {qi(table_name)}"
        try:
            con.execute(f"{verb} SELECT {select}, {index}::INTEGER AS _file FROM {source_sql}")
        except duckdb.InterruptException:
            raise KeyboardInterrupt from None
        except duckdb.Error as error:
            # DuckDB messages may quote raw lines (identifiers); report only the kind of problem
            raise IngestError(f"{file_where}: cannot read the file as {fmt}: {_safe_reason(error)}") from None
        if rejects is not None:
            _collect_structural_rejects(con, staged, index, rejects, file_where)
        staged.rows = con.execute(f"SELECT count(*) FROM {qi(table_name)}").fetchall()[0][0]  # type: ignore[index]
    staged.types = _describe(con, table_name)
    for name, kind in staged.types.items():
        if kind == "JSON":  # mixed-type JSON fields: their text, unquoted, is typed later like CSV text
            con.execute(
                f"ALTER TABLE {qi(table_name)} ALTER {qi(name)} TYPE VARCHAR "
                f"USING json_extract_string({qi(name)}, '$')"
            )
            staged.types[name] = "VARCHAR"
    return staged


def _describe(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    return {
        name: kind for name, kind, *_ in con.execute(f"DESCRIBE {qi(table)}").fetchall() if name != "_file"
    }


def _safe_reason(error: Exception) -> str:
    text = str(error)
    first = text.splitlines()[0] if text else type(error).__name__
    if "Invalid unicode" in text or "byte sequence" in text:
        return "the text is not valid in the declared encoding; set 'encoding' (e.g. 'latin-1', 'cp1252')"
    first = re.sub(r"Original Line:.*", "", first)
    return first[:200]


def _parquet_sql(path: Path, columns: list[str], where: str, ignore: list[str]) -> str:
    try:
        names = pq.read_schema(path).names
    except (OSError, pa.ArrowInvalid) as error:
        raise IngestError(f"{where}: not a readable Parquet file ({error})") from None
    _check_columns(names, columns, where, ignore)
    return f"read_parquet({ql(str(path))})"


def _jsonl_sql(
    con: duckdb.DuckDBPyConnection, path: Path, columns: list[str], where: str, ignore: list[str]
) -> str:
    source = f"read_json({ql(str(path))}, format='newline_delimited', records=true, sample_size=-1)"
    try:
        names = [row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()]
    except duckdb.Error as error:
        raise IngestError(f"{where}: not readable JSON lines: {_safe_reason(error)}") from None
    _check_columns(names, columns, where, ignore)
    return source


def _check_columns(
    available: list[str], columns: list[str], where: str, ignore: list[str] | None = None
) -> None:
    duplicated = sorted({name for name in available if available.count(name) > 1})
    if duplicated:
        raise IngestError(f"{where}: duplicate column names {duplicated}; give every column a distinct name")
    missing = [c for c in columns if c not in available]
    if missing:
        raise IngestError(
            f"{where}: mapped column(s) {missing} not found; the file has {available}. "
            "Fix the column mapping in the sources file"
        )
    check_column_names(columns, where)
    ignore = list(ignore or [])
    both = sorted(set(ignore) & set(columns))
    if both:
        raise IngestError(f"{where}: {both} are both mapped and in ignore_columns; keep one")
    absent = sorted(set(ignore) - set(available))
    if absent:
        raise IngestError(
            f"{where}: ignore_columns lists {absent}, which the table does not have (it has {available})"
        )
    check_column_names([c for c in available if c not in ignore], where, unmapped=True)


_DUCKDB_ENCODINGS = {"utf-8": "utf-8", "iso8859-1": "latin-1", "utf-16": "utf-16"}


def _text_sql(
    con: duckdb.DuckDBPyConnection,
    staged: StagedTable,
    index: int,
    location: Location,
    path: Path,
    columns: list[str],
    scratch: Path,
    where: str,
    ignore: list[str],
) -> tuple[str, str]:
    fmt = location.file_format
    try:
        encoding = codecs.lookup(location.encoding).name
    except LookupError:
        raise IngestError(
            f"{where}: unknown encoding {location.encoding!r}; use e.g. 'utf-8' or 'latin-1'"
        ) from None
    if encoding not in _DUCKDB_ENCODINGS:
        path = _transcode(path, encoding, scratch / f"{staged.name}_{index}.utf8", where)
        encoding = "utf-8"
    delimiter = location.delimiter or ("," if fmt == "csv" else "\t")
    header_line = _first_line(path, encoding, where)
    if fmt == "atomic":
        names = [name for name, _ in atomic_header(header_line)]
    else:
        names = [name.strip() for name in next(csv.reader(io.StringIO(header_line), delimiter=delimiter), [])]
    _check_columns(names, columns, where, ignore)
    rejects = f"_rejects_{staged.name}_{index}"
    options = [
        "header=true",
        "all_varchar=true",
        f"delim={ql(delimiter)}",
        f"encoding={ql(_DUCKDB_ENCODINGS[encoding])}",
        "names=[" + ", ".join(ql(n) for n in names) + "]",
        "ignore_errors=true",
        "store_rejects=true",
        f"rejects_table={ql(rejects)}",
        f"rejects_scan={ql(rejects + '_scan')}",
        "parallel=true",
    ]
    if fmt == "atomic":
        options += ["quote=''", "escape=''"]
    return f"read_csv({ql(str(path))}, {', '.join(options)})", rejects


def _collect_structural_rejects(
    con: duckdb.DuckDBPyConnection, staged: StagedTable, index: int, rejects: str, where: str
) -> None:
    try:
        found = con.execute(
            f"SELECT line, column_name, error_type FROM {qi(rejects)} ORDER BY line"
        ).fetchall()
    except duckdb.CatalogException:
        found = []
    for table in (rejects, rejects + "_scan"):
        con.execute(f"DROP TABLE IF EXISTS {qi(table)}")
    if any(kind == "INVALID ENCODING" for _, _, kind in found):
        raise IngestError(
            f"{where}: the text is not valid in the declared encoding; set 'encoding' (e.g. 'latin-1', "
            "'cp1252')"
        )
    if found:
        staged.broken_lines[index] = np.array(sorted({int(line) for line, _, _ in found}), dtype=np.int64)
        for line, column, kind in found:
            staged.structural_rejects.append(
                {
                    "file": staged.files[index],
                    "row": int(line),
                    "column": column,
                    "reason": _parse_reason(kind),
                }
            )


def _parse_reason(kind: str) -> str:
    return {
        "TOO MANY COLUMNS": "line has more fields than the header",
        "MISSING COLUMNS": "line has fewer fields than the header",
        "UNQUOTED VALUE": "unquoted value where a quote was expected",
        "LINE SIZE OVER MAXIMUM": "line is too long",
    }.get(kind, f"unparsable line ({kind.lower()})")


def _first_line(path: Path, encoding: str, where: str) -> str:
    try:
        with open(path, encoding=encoding, newline="") as handle:
            line = handle.readline()
    except UnicodeDecodeError:
        raise IngestError(
            f"{where}: the header is not valid {encoding}; set 'encoding' (e.g. 'latin-1', 'cp1252', "
            "'utf-16')"
        ) from None
    except OSError as error:
        raise IngestError(f"{where}: cannot read the file ({error.strerror})") from None
    if not line.strip():
        raise IngestError(
            f"{where}: the file is empty (no header line); point the source at a file with data"
        )
    return line.lstrip("\ufeff")


def _transcode(path: Path, encoding: str, target: Path, where: str) -> Path:
    try:
        with (
            open(path, encoding=encoding, newline="") as src,
            open(target, "w", encoding="utf-8", newline="") as dst,
        ):
            while chunk := src.read(1 << 20):
                dst.write(chunk)
    except UnicodeDecodeError as error:
        raise IngestError(
            f"{where}: byte {error.start} is not valid {encoding}; set 'encoding' to the file's real encoding"
        ) from None
    return target


# ------------------------------------------------------------------------------------------------ SQL


def _stage_sql(
    con: duckdb.DuckDBPyConnection,
    location: Location,
    columns: list[str],
    table_name: str,
    base_dir: Path,
    scratch: Path,
    where: str,
) -> StagedTable:
    ignore = list(getattr(location, "ignore_columns", []))
    url = location.url or os.environ.get(location.url_env or "", "")
    if not url:
        raise IngestError(
            f"{where}: environment variable {location.url_env} (url_env) is not set; set it to a URL"
        )
    inner = f"SELECT * FROM {location.table}" if location.table else location.query
    label = location.describe()
    staged = StagedTable(name=table_name, files=[label], file_starts=[0], first_line=1, types={})
    select = ", ".join(qi(c) for c in columns)
    scheme = url.split(":", 1)[0].split("+", 1)[0].lower()
    try:
        if scheme == "sqlite":
            _stage_sqlite(con, url, base_dir, inner, columns, table_name, where, ignore)
        elif scheme in ("postgresql", "postgres"):
            _stage_postgres(con, url, inner, columns, select, table_name, scratch, where, ignore)
        else:
            _stage_sqlalchemy(con, url, inner, columns, table_name, where, ignore)
    except (IngestError, KeyboardInterrupt):
        raise
    except duckdb.InterruptException:
        raise KeyboardInterrupt from None
    except (
        Exception
    ) as error:  # drivers raise their own hierarchies; never echo the URL (it may hold a password)
        raise IngestError(
            f"{where}: cannot read {label}: {type(error).__name__}: {_safe_reason(error)}"
        ) from None
    staged.rows = con.execute(f"SELECT count(*) FROM {qi(table_name)}").fetchall()[0][0]  # type: ignore[index]
    staged.types = _describe(con, table_name)
    return staged


def sqlite_path(url: str, base_dir: Path) -> Path:
    rest = url.split(":///", 1)[1] if ":///" in url else ""
    path = Path(rest) if rest.startswith("/") else base_dir / rest
    return path


def _stage_sqlite(
    con: duckdb.DuckDBPyConnection,
    url: str,
    base_dir: Path,
    inner: str | None,
    columns: list[str],
    table: str,
    where: str,
    ignore: list[str] | None = None,
) -> None:
    path = sqlite_path(url, base_dir)
    if not path.is_file():
        raise IngestError(
            f"{where}: SQLite file {path} not found; check 'url': sqlite:///name.db (three slashes) is "
            f"relative to the data folder {base_dir}, sqlite:////abs/path/name.db (four) is absolute"
        )
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        probe = db.execute(f"SELECT * FROM ({inner}) LIMIT 0")
        _check_columns([d[0] for d in probe.description], columns, where, ignore)
        cast = ", ".join(f"CAST({qi(c)} AS TEXT)" for c in columns)
        cursor = db.execute(f"SELECT {cast} FROM ({inner})")
        _load_batches(con, table, columns, _dbapi_batches(cursor, columns))
    finally:
        db.close()


def _stage_sqlalchemy(
    con: duckdb.DuckDBPyConnection,
    url: str,
    inner: str | None,
    columns: list[str],
    table: str,
    where: str,
    ignore: list[str] | None = None,
) -> None:
    require_extra("db", "reading SQL sources")
    import sqlalchemy

    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as connection:
            probe = connection.exec_driver_sql(f"SELECT * FROM ({inner}) AS q WHERE 1 = 0")
            _check_columns(list(probe.keys()), columns, where, ignore)
            probe.close()
            select = ", ".join(qi(c) for c in columns)
            result = connection.execution_options(stream_results=True).exec_driver_sql(
                f"SELECT {select} FROM ({inner}) AS q"
            )
            _load_batches(con, table, columns, _dbapi_batches(result, columns, stringify=True))
    finally:
        engine.dispose()


def _stage_postgres(
    con: duckdb.DuckDBPyConnection,
    url: str,
    inner: str | None,
    columns: list[str],
    select: str,
    table: str,
    scratch: Path,
    where: str,
    ignore: list[str] | None = None,
) -> None:
    require_extra("db", "reading PostgreSQL sources")
    import psycopg

    url = re.sub(r"^postgres(ql)?\+\w+://", "postgresql://", url)
    export = scratch / f"{table}.csv"
    with psycopg.connect(url) as db, db.cursor() as cursor:
        cursor.execute(f"SELECT * FROM ({inner}) AS q LIMIT 0")
        _check_columns([d.name for d in cursor.description or []], columns, where, ignore)
        # COPY streams the rows as CSV bytes: no Python object per row
        with (
            open(export, "wb") as out,
            cursor.copy(
                f"COPY (SELECT {select} FROM ({inner}) AS q) TO STDOUT WITH (FORMAT csv, HEADER false)"
            ) as copy,
        ):
            for chunk in copy:
                out.write(chunk)
    con.execute(
        f"CREATE TABLE {qi(table)} AS SELECT {select}, 0::INTEGER AS _file FROM read_csv({ql(str(export))}, "
        f"header=false, all_varchar=true, delim=',', quote='\"', escape='\"', "
        "auto_detect=false, columns={" + ", ".join(f"{ql(c)}: 'VARCHAR'" for c in columns) + "})"
    )
    export.unlink()


def _dbapi_batches(
    cursor: object, columns: list[str], *, stringify: bool = False
) -> Iterator[pa.RecordBatch]:
    schema = pa.schema([(c, pa.string()) for c in columns])
    while rows := cursor.fetchmany(_BATCH_ROWS):  # type: ignore[attr-defined]
        values = list(zip(*rows, strict=True))
        if stringify:
            values = [[None if v is None else str(v) for v in column] for column in values]
        yield pa.RecordBatch.from_arrays([pa.array(v, type=pa.string()) for v in values], schema=schema)


def _load_batches(
    con: duckdb.DuckDBPyConnection, table: str, columns: list[str], batches: Iterator[pa.RecordBatch]
) -> None:
    # Batches are materialised one at a time in this thread (DB-API cursors are not thread-safe).
    select = ", ".join(qi(c) for c in columns)
    con.execute(
        f"CREATE TABLE {qi(table)} (" + ", ".join(f"{qi(c)} VARCHAR" for c in columns) + ", _file INTEGER)"
    )
    for batch in batches:
        con.register("_sql_batch", batch)
        try:
            con.execute(f"INSERT INTO {qi(table)} SELECT {select}, 0 FROM _sql_batch")
        finally:
            con.unregister("_sql_batch")
