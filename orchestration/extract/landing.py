"""Landing: read source batches into the append-only raw layer of the warehouse (`raw.*`).

Every raw table holds the contract columns plus load metadata (load id, source, file, row,
loaded at). `raw._loads` logs every landed file with its SHA-256, which makes landing idempotent:
a file already landed for a table is skipped, so the same drop landed twice adds nothing, while a
new drop appends. A load is one transaction: an interrupted load leaves no partial rows.

Files are read by DuckDB itself (never through pandas), so a 20M-row batch streams through.
Values that do not fit the contract type stop the load with an error naming the file, the row
and the column; nothing is silently coerced to null.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from orchestration import contract
from orchestration.extract.sources import Batch, Source

RAW_SCHEMA = "raw"
LOADS = f"{RAW_SCHEMA}._loads"


class LandingError(Exception):
    """A batch cannot be landed; the message names the file and, where known, row and column."""


@dataclass(frozen=True)
class LoadResult:
    table: str
    file: str
    load_id: str | None
    rows: int
    skipped: bool
    extra_columns: tuple[str, ...] = field(default_factory=tuple)


def quote(path: Path | str) -> str:
    """A SQL string literal."""
    return "'" + str(path).replace("'", "''") + "'"


def ensure_raw_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the raw schema, one table per contract table, and the load log (if missing)."""
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {RAW_SCHEMA}")
    for t in contract.TABLES:
        cols = ", ".join(f"{c.name} {c.type}" for c in t.columns + contract.LOAD_METADATA)
        con.execute(f"CREATE TABLE IF NOT EXISTS {RAW_SCHEMA}.{t.name} ({cols})")
    con.execute(
        f"""CREATE TABLE IF NOT EXISTS {LOADS} (
            load_id VARCHAR PRIMARY KEY, table_name VARCHAR NOT NULL, source VARCHAR NOT NULL,
            source_file VARCHAR NOT NULL, file_sha256 VARCHAR NOT NULL, file_bytes BIGINT NOT NULL,
            rows BIGINT NOT NULL, loaded_at TIMESTAMP NOT NULL)"""
    )


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def reader_sql(batch: Batch) -> str:
    """A DuckDB table expression reading the batch. CSV is read as text so casting is ours."""
    if batch.format == "parquet":
        return f"read_parquet({quote(batch.path)})"
    if batch.format == "csv":
        return f"read_csv({quote(batch.path)}, header = true, all_varchar = true)"
    if batch.format == "jsonl":
        return f"read_json({quote(batch.path)}, format = 'newline_delimited')"
    raise LandingError(f"{batch.path}: unsupported format {batch.format!r}")


def _source_columns(con: duckdb.DuckDBPyConnection, batch: Batch) -> dict[str, str]:
    if batch.path.stat().st_size == 0:
        raise LandingError(f"{batch.path}: the file is empty (not even a header row)")
    try:
        rows = con.execute(f"DESCRIBE SELECT * FROM {reader_sql(batch)}").fetchall()
    except duckdb.Error as exc:
        raise LandingError(f"{batch.path}: cannot be read as {batch.format}: {exc}") from exc
    return {name: type_ for name, type_, *_ in rows}


def _check_conversions(con: duckdb.DuckDBPyConnection, batch: Batch, source_types: dict[str, str]) -> None:
    """Fail with file, row and column when a value cannot be cast to its contract type."""
    table = contract.table(batch.table)
    needs_cast = [c for c in table.columns if source_types[c.name].upper() != c.type.upper()]
    if not needs_cast:
        return
    bad = [f"(TRY_CAST({c.name} AS {c.type}) IS NULL AND {c.name} IS NOT NULL)" for c in needs_cast]
    failing = ", ".join(
        f"CASE WHEN {b} THEN '{c.name}=' || CAST({c.name} AS VARCHAR) END"
        for c, b in zip(needs_cast, bad, strict=True)
    )
    rows = con.execute(
        f"""SELECT _row, concat_ws('; ', {failing}) FROM (
              SELECT row_number() OVER () AS _row, * FROM {reader_sql(batch)})
            WHERE {' OR '.join(bad)} ORDER BY _row LIMIT 5"""
    ).fetchall()
    if rows:
        types = {c.name: c.type for c in needs_cast}
        detail = "; ".join(
            f"row {r} (header is row 0): {v} does not fit {types[v.split('=')[0]]}"
            for r, vals in rows
            for v in vals.split("; ")
        )
        raise LandingError(f"{batch.path}: values that do not fit the contract for {batch.table}: {detail}")


def land_batch(
    con: duckdb.DuckDBPyConnection, batch: Batch, source: str, *, now: datetime | None = None
) -> LoadResult:
    """Land one batch into `raw.<table>`; skip it if this exact file was landed before."""
    table = contract.table(batch.table)
    sha = file_sha256(batch.path)
    landed = con.execute(
        f"SELECT load_id FROM {LOADS} WHERE table_name = ? AND file_sha256 = ?", [table.name, sha]
    ).fetchone()
    if landed:
        return LoadResult(table.name, str(batch.path), landed[0], 0, skipped=True)

    source_types = _source_columns(con, batch)
    missing = [c for c in table.column_names if c not in source_types]
    if missing:
        raise LandingError(
            f"{batch.path}: missing column(s) {', '.join(missing)} required by the raw contract "
            f"for {table.name} (found: {', '.join(source_types)})"
        )
    extra = tuple(c for c in source_types if c not in table.column_names)
    _check_conversions(con, batch, source_types)

    load_id = uuid.uuid4().hex
    loaded_at = (now or datetime.now(UTC)).replace(tzinfo=None)
    target = ", ".join(table.column_names + [c.name for c in contract.LOAD_METADATA])
    select = ", ".join(f"CAST({c.name} AS {c.type})" for c in table.columns)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(
            f"""INSERT INTO {RAW_SCHEMA}.{table.name} ({target})
                SELECT {select}, $load_id, $source, $file, row_number() OVER (), $loaded_at
                FROM {reader_sql(batch)}""",
            {"load_id": load_id, "source": source, "file": str(batch.path), "loaded_at": loaded_at},
        )
        rows = con.execute(
            f"SELECT count(*) FROM {RAW_SCHEMA}.{table.name} WHERE _load_id = ?", [load_id]
        ).fetchone()[0]
        con.execute(
            f"INSERT INTO {LOADS} VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [load_id, table.name, source, str(batch.path), sha, batch.path.stat().st_size, rows, loaded_at],
        )
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return LoadResult(table.name, str(batch.path), load_id, rows, skipped=False, extra_columns=extra)


def preview(con: duckdb.DuckDBPyConnection, table: str, load_ids: list[str], limit: int = 5) -> list[dict]:
    """The first rows of the given loads, with personal data masked (for run metadata)."""
    t = contract.table(table)
    cols = ", ".join(f"'***' AS {c.name}" if c.pii else c.name for c in t.columns)
    if not load_ids:
        return []
    ids = ", ".join(quote(i) for i in load_ids)
    cur = con.execute(
        f"SELECT {cols} FROM {RAW_SCHEMA}.{table} WHERE _load_id IN ({ids}) "
        f"ORDER BY _load_id, _source_row LIMIT {limit}"
    )
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def row_count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    return con.execute(f"SELECT count(*) FROM {RAW_SCHEMA}.{contract.table(table).name}").fetchone()[0]


def land_source(
    con: duckdb.DuckDBPyConnection, source: Source, tables: Iterable[str] = contract.TABLE_NAMES
) -> list[LoadResult]:
    """Land every batch the source has for `tables` (all contract tables by default), oldest first."""
    ensure_raw_tables(con)
    return [land_batch(con, batch, source.name) for table in tables for batch in source.batches(table)]
