"""Landing: read source batches into the append-only raw layer of the warehouse (`raw.*`).

Every raw table holds the contract columns plus load metadata (load id, source, file, row,
loaded at). `raw._loads` logs every landed file with its SHA-256, which makes landing idempotent:
a file already landed for a table is skipped, so the same drop landed twice adds nothing, while a
new drop appends. A load is one transaction: an interrupted load leaves no partial rows.

Files are read by DuckDB itself (never through pandas), so a 20M-row batch streams through.
Values that do not fit the contract type stop the load with an error naming the file, the row
and the column; nothing is silently coerced to null.

CSV files are UTF-8 (a byte-order mark is allowed) with a header row; the header decides the
delimiter (`,` `;` tab or `|`, whichever splits it into the most columns) and every row must have
as many fields as the header: a short row (a truncated last line), a long row, an unterminated
quote or a byte that is not UTF-8 stops the load naming the file, the row and, where it can, the
column. Nothing is guessed from the data rows (DuckDB's sniffer, given a truncated last line, can
read the whole file as one column or take a data row for the header).

A file that changes while it is landed (still being copied) is rolled back: `FileChangedError`
names it, nothing of it is landed, and a later attempt lands it whole once it is stable.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import json
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from salesalign import contract
from salesalign.extract.sources import Batch, Source

RAW_SCHEMA = "raw"
LOADS = f"{RAW_SCHEMA}._loads"
SOURCES = f"{RAW_SCHEMA}._sources"  # what each source said about itself when made ready


class LandingError(Exception):
    """A batch cannot be landed; the message names the file and, where known, row and column."""


class FileChangedError(LandingError):
    """The file changed while it was being landed (still being copied): nothing of it was landed."""


CSV_DELIMITERS = (",", ";", "\t", "|")
MAX_CSV_LINE = 64 << 20  # bytes; DuckDB's default (2 MB) rejects a row with a 3 MB text field
MESSAGE_CHARS = 300  # DuckDB quotes the offending line in its errors: keep messages readable


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
    con.execute(
        f"""CREATE TABLE IF NOT EXISTS {SOURCES} (
            described_at TIMESTAMP NOT NULL, source VARCHAR NOT NULL, description VARCHAR NOT NULL)"""
    )


def record_source(con: duckdb.DuckDBPyConnection, source: str, described: dict) -> None:
    """Log what ``source`` said when it was made ready (`Source.prepare`: the tables it lacks, rows read
    and mapped, its profile's assumptions) as JSON in `raw._sources`; the brief shows the latest. A
    rerun that says the same as the latest entry logs nothing, so rerunning changes nothing in raw."""
    ensure_raw_tables(con)
    description = json.dumps(described, default=str, sort_keys=True)
    latest = con.execute(
        f"SELECT source, description FROM {SOURCES} ORDER BY described_at DESC LIMIT 1"
    ).fetchone()
    if latest == (source, description):
        return
    now = datetime.now(UTC).replace(tzinfo=None)
    con.execute(f"INSERT INTO {SOURCES} VALUES (?, ?, ?)", [now, source, description])


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _short(text: str, limit: int = MESSAGE_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + f"... ({len(text) - limit} more characters)"


def csv_header(path: Path) -> tuple[str, list[str]]:
    """(delimiter, column names) from the header row of a contract CSV (UTF-8, optional BOM)."""
    with path.open("rb") as f:
        head = f.read(1 << 20)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise LandingError(f"{path}: the file is UTF-16 encoded; contract CSV files are UTF-8")
    if head.startswith(codecs.BOM_UTF8):
        head = head[len(codecs.BOM_UTF8) :]
    line = head.split(b"\n", 1)[0].rstrip(b"\r")
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LandingError(
            f"{path}: row 0 (the header) is not UTF-8 (byte {line[exc.start]:#04x} at offset {exc.start}); "
            "save the file as UTF-8, or map it with a profile that sets csv.encoding"
        ) from None
    if not text.strip():
        raise LandingError(f"{path}: row 0 (the header) is blank; contract CSV files start with a header row")
    delimiter = max(CSV_DELIMITERS, key=lambda d: len(next(csv.reader([text], delimiter=d))))  # tie: ","
    names = [n.strip() for n in next(csv.reader([text], delimiter=delimiter))]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise LandingError(f"{path}: row 0 (the header) names column(s) {', '.join(repeated)} more than once")
    return delimiter, names


def reader_sql(batch: Batch) -> str:
    """A DuckDB table expression reading the batch. CSV is read as text so casting is ours."""
    if batch.format == "parquet":
        return f"read_parquet({quote(batch.path)})"
    if batch.format == "csv":
        delimiter, names = csv_header(batch.path)
        columns = "{" + ", ".join(f"{quote(n)}: 'VARCHAR'" for n in names) + "}"
        return (
            f"read_csv({quote(batch.path)}, header = true, auto_detect = false, columns = {columns}, "
            f"delim = {quote(delimiter)}, quote = '\"', escape = '\"', strict_mode = true, "
            f"null_padding = false, encoding = 'utf-8', max_line_size = {MAX_CSV_LINE})"
        )
    if batch.format == "jsonl":
        return f"read_json({quote(batch.path)}, format = 'newline_delimited')"
    raise LandingError(f"{batch.path}: unsupported format {batch.format!r}")


def read_error(batch: Batch, exc: Exception) -> LandingError:
    """A LandingError for a file DuckDB could not read: file, row and (where known) column for CSV."""
    text = str(exc)
    line = re.search(r"CSV Error on Line: (\d+)", text)
    if batch.format != "csv" or not line:
        return LandingError(f"{batch.path}: cannot be read as {batch.format}: {_short(text.splitlines()[0])}")
    row = int(line.group(1)) - 1
    _, names = csv_header(batch.path)
    original = re.search(r"Original Line: ?(.*)", text)
    original = original.group(1) if original else ""
    fields = re.search(r"Expected Number of Columns: (\d+) Found: (\d+)", text)
    where = ""
    delimiter = csv_header(batch.path)[0]
    others = [d for d in CSV_DELIMITERS if d != delimiter and d in original]
    if fields and int(fields.group(2)) == 1 and others:
        why = (
            f"the row has 1 of the header's {len(names)} fields: the rows are delimited by {others[0]!r}, "
            f"the header by {delimiter!r}"
        )
    elif fields and int(fields.group(2)) < int(fields.group(1)):
        found = int(fields.group(2))
        where = f", column {names[found]}"
        why = (
            f"the row has {found} of the header's {len(names)} fields, nothing for "
            f"{', '.join(names[found:])} (a truncated last line, or a file still being copied?)"
        )
    elif fields:
        why = (
            f"the row has {fields.group(2)} fields, the header {fields.group(1)} (an unquoted delimiter "
            "in a value, or rows written with another delimiter than the header?)"
        )
    elif "unterminated quote" in text:
        opened = len(next(csv.reader([original], delimiter=csv_header(batch.path)[0]), [""]))
        where = f", column {names[min(opened, len(names)) - 1]}" if names else ""
        why = "a quoted value is never closed (a truncated file, or a file still being copied?)"
    elif "unicode" in text.lower() or "utf-8" in text.lower():
        why = "the row is not UTF-8; save the file as UTF-8, or map it with a profile that sets csv.encoding"
    elif "line size" in text.lower():
        why = f"the row is longer than {MAX_CSV_LINE} bytes"
    else:
        why = _short(text.splitlines()[0])
    return LandingError(
        f"{batch.path}: row {row} (header is row 0){where}: {why}; nothing of the file was landed"
    )


def _source_columns(con: duckdb.DuckDBPyConnection, batch: Batch) -> dict[str, str]:
    if batch.path.stat().st_size == 0:
        raise LandingError(f"{batch.path}: the file is empty (not even a header row)")
    try:
        rows = con.execute(f"DESCRIBE SELECT * FROM {reader_sql(batch)}").fetchall()
    except duckdb.Error as exc:
        raise read_error(batch, exc) from None
    return {name: type_ for name, type_, *_ in rows}


def _stat(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


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
    try:
        rows = con.execute(
            f"""SELECT _row, concat_ws('; ', {failing}) FROM (
                  SELECT row_number() OVER () AS _row, * FROM {reader_sql(batch)})
                WHERE {' OR '.join(bad)} ORDER BY _row LIMIT 5"""
        ).fetchall()
    except duckdb.Error as exc:
        raise read_error(batch, exc) from None
    if rows:
        types = {c.name: c.type for c in needs_cast}
        detail = "; ".join(
            f"row {r} (header is row 0): {_short(v, 120)} does not fit {types[v.split('=')[0]]}"
            for r, vals in rows
            for v in vals.split("; ")
        )
        raise LandingError(f"{batch.path}: values that do not fit the contract for {batch.table}: {detail}")


def land_batch(
    con: duckdb.DuckDBPyConnection, batch: Batch, source: str, *, now: datetime | None = None
) -> LoadResult:
    """Land one batch into `raw.<table>`; skip it if this exact file was landed before."""
    table = contract.table(batch.table)
    stat = _stat(batch.path)
    sha = file_sha256(batch.path)
    landed = con.execute(
        f"SELECT load_id FROM {LOADS} WHERE table_name = ? AND file_sha256 = ?", [table.name, sha]
    ).fetchone()
    if landed:
        return LoadResult(table.name, str(batch.path), landed[0], 0, skipped=True)

    source_types = _source_columns(con, batch)
    missing = [c for c in table.column_names if c not in source_types]
    extra = tuple(c for c in source_types if c not in table.column_names)
    if missing:
        hint = f"; not in the contract: {', '.join(extra)} (renamed?)" if extra else ""
        raise LandingError(
            f"{batch.path}: missing column(s) {', '.join(missing)} required by the raw contract "
            f"for {table.name} (found: {', '.join(source_types)}){hint}"
        )
    _check_conversions(con, batch, source_types)

    load_id = uuid.uuid4().hex
    loaded_at = (now or datetime.now(UTC)).replace(tzinfo=None)
    target = ", ".join(table.column_names + [c.name for c in contract.LOAD_METADATA])
    select = ", ".join(f"CAST({c.name} AS {c.type})" for c in table.columns)
    con.execute("BEGIN TRANSACTION")
    try:
        try:
            con.execute(
                f"""INSERT INTO {RAW_SCHEMA}.{table.name} ({target})
                    SELECT {select}, $load_id, $source, $file, row_number() OVER (), $loaded_at
                    FROM {reader_sql(batch)}""",
                {"load_id": load_id, "source": source, "file": str(batch.path), "loaded_at": loaded_at},
            )
        except duckdb.Error as exc:
            raise read_error(batch, exc) from None
        rows = con.execute(
            f"SELECT count(*) FROM {RAW_SCHEMA}.{table.name} WHERE _load_id = ?", [load_id]
        ).fetchone()[0]
        now_stat = _stat(batch.path) if batch.path.exists() else (-1, -1)
        if now_stat != stat:
            raise FileChangedError(
                f"{batch.path}: the file changed while it was being landed ({stat[0]} -> {now_stat[0]} "
                "bytes; still being copied?): nothing of it was landed; it lands whole once it is stable"
            )
        con.execute(
            f"INSERT INTO {LOADS} VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [load_id, table.name, source, str(batch.path), sha, stat[0], rows, loaded_at],
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
