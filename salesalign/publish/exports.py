"""BI outputs: every `marts.*` and `analytics.*` table as Parquet and as CSV, plus a serving copy.

- `exports/<schema>/<table>.parquet`: typed data (zstd) for BI tools, Power Query, pandas, DuckDB.
  Values are exactly the warehouse's: Parquet is typed data, not a spreadsheet, and nothing reading
  it evaluates formulas, so a text value is never rewritten there.
- `exports/<schema>/<table>.csv`: the same rows for people who open files in Excel (or another
  spreadsheet): UTF-8 with a byte-order mark (so Excel detects the encoding), a header row, comma
  separated, `"` quoting, NULL as an empty cell. **Formula injection is neutralised**: a text value
  that starts with `=`, `+`, `-`, `@`, a tab or a carriage return would be run as a formula by a
  spreadsheet (`=HYPERLINK(...)`, `+cmd|' /C calc'!A0`, `@SUM(...)`), so it is written with a single
  quote in front (`'=HYPERLINK(...)`), as the OWASP CSV injection guidance recommends. Only text
  columns are touched (VARCHAR, ENUM, JSON, nested types): numbers, booleans, dates and timestamps
  are written as they are (a negative number is a number, not a formula). The rewriting happens in
  DuckDB SQL inside the `COPY` (`csv_select`), never by loading tables into Python.
- `exports/manifest.json`: the run id, publish time, the reporting currency of every money column
  (the marts', `currency.py`) and, per table, both files, the row count and the column names and types.
- `serving.duckdb`: a separate DuckDB file that BI tools open read-only while the pipeline holds the
  main warehouse for writing (original values, like the Parquet files).

Readers never see a half-written file: each file is written under a temporary name beside its
target and renamed into place (an atomic replace on POSIX); the manifest is replaced last, so it
always describes files that are complete.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from salesalign.publish.currency import marts_currency

PUBLISHED_SCHEMAS = ("marts", "analytics")
# A cell starting with one of these is a formula (or becomes one) in Excel, LibreOffice and Sheets.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
# Column types whose CSV text is not free text: written unchanged. Everything else is neutralised.
NOT_TEXT = re.compile(
    r"^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT|FLOAT|DOUBLE"
    r"|DECIMAL(\(\d+,\s*\d+\))?|BOOLEAN|DATE|TIME|TIME WITH TIME ZONE|TIMESTAMP(_S|_MS|_NS)?"
    r"|TIMESTAMP WITH TIME ZONE|INTERVAL|UUID|BIT)$"
)
UTF8_BOM = b"\xef\xbb\xbf"
CSV_OPTIONS = "FORMAT csv, HEADER true, DELIMITER ',', QUOTE '\"', ESCAPE '\"', NULL ''"


@dataclass(frozen=True)
class PublishedTable:
    schema: str
    table: str
    rows: int
    file: str  # the Parquet file, relative to SALESALIGN_HOME
    csv: str  # the CSV file (formula-neutralised text), relative to SALESALIGN_HOME
    columns: list[dict[str, str]]
    csv_neutralised_columns: list[str]  # the text columns whose CSV cells are guarded against formulas


def published_tables(con: duckdb.DuckDBPyConnection, schemas=PUBLISHED_SCHEMAS) -> list[tuple[str, str]]:
    placeholders = ", ".join("?" for _ in schemas)
    return con.execute(
        f"SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = current_database() "
        f"AND schema_name IN ({placeholders}) ORDER BY 1, 2",
        list(schemas),
    ).fetchall()


def ident(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def _path_literal(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def is_text(data_type: str) -> bool:
    """Whether a column of this DuckDB type is written to CSV as free text (and so is neutralised)."""
    return not NOT_TEXT.match(data_type.upper())


def neutralise_sql(expr: str) -> str:
    """SQL that prefixes `'` to a text value starting with a formula trigger (NULL stays NULL)."""
    text = f"CAST({expr} AS VARCHAR)"
    triggers = ", ".join(f"chr({ord(c)})" for c in FORMULA_TRIGGERS)  # = + - @ tab CR, by code point
    return f"CASE WHEN left({text}, 1) IN ({triggers}) THEN '''' || {text} ELSE {text} END"


def csv_select(schema: str, table: str, columns: list[tuple[str, str]]) -> str:
    """The SELECT the CSV export copies: text columns neutralised, the others as they are."""
    cols = ", ".join(
        f"{neutralise_sql(ident(name))} AS {ident(name)}" if is_text(dtype) else ident(name)
        for name, dtype in columns
    )
    return f"SELECT {cols} FROM {ident(schema)}.{ident(table)}"


def _temporary(target: Path, run_id: str) -> Path:
    return target.with_name(f".{target.name}.{run_id}.tmp")


def _columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[tuple[str, str]]:
    return con.execute(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = current_database() "
        "AND schema_name = ? AND table_name = ? ORDER BY column_index",
        [schema, table],
    ).fetchall()


def _write_parquet(
    con: duckdb.DuckDBPyConnection, schema: str, table: str, target: Path, run_id: str
) -> None:
    tmp = _temporary(target, run_id)
    con.execute(
        f"COPY (SELECT * FROM {ident(schema)}.{ident(table)}) TO {_path_literal(tmp)} "
        "(FORMAT parquet, COMPRESSION zstd)"
    )
    os.replace(tmp, target)


def _write_csv(
    con: duckdb.DuckDBPyConnection, schema: str, table: str, columns: list[tuple[str, str]], target: Path,
    run_id: str,
) -> None:
    body = target.with_name(f".{target.name}.{run_id}.body.tmp")
    tmp = _temporary(target, run_id)
    try:
        con.execute(f"COPY ({csv_select(schema, table, columns)}) TO {_path_literal(body)} ({CSV_OPTIONS})")
        with tmp.open("wb") as out, body.open("rb") as src:  # the BOM first: Excel then reads UTF-8
            out.write(UTF8_BOM)
            shutil.copyfileobj(src, out, 1 << 20)
        os.replace(tmp, target)
    finally:
        body.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)


def export_tables(con: duckdb.DuckDBPyConnection, home: Path, run_id: str) -> list[PublishedTable]:
    """Write `$home/exports/<schema>/<table>.parquet` and `.csv` for every published table, then the
    manifest. Tables dropped from the warehouse leave the exports."""
    root = home / "exports"
    published = []
    for schema, table in published_tables(con):
        folder = root / schema
        folder.mkdir(parents=True, exist_ok=True)
        columns = _columns(con, schema, table)
        parquet, csv = folder / f"{table}.parquet", folder / f"{table}.csv"
        _write_parquet(con, schema, table, parquet, run_id)
        _write_csv(con, schema, table, columns, csv, run_id)
        rows = con.execute(f"SELECT count(*) FROM {ident(schema)}.{ident(table)}").fetchone()[0]
        published.append(
            PublishedTable(
                schema, table, rows, str(parquet.relative_to(home)), str(csv.relative_to(home)),
                [{"name": n, "type": t} for n, t in columns], [n for n, t in columns if is_text(t)],
            )
        )
    current = {home / p.file for p in published} | {home / p.csv for p in published}
    for schema in PUBLISHED_SCHEMAS:  # a table dropped from the warehouse leaves the exports too
        folder = root / schema
        for stale in [*folder.glob("*.parquet"), *folder.glob("*.csv")] if folder.is_dir() else []:
            if stale not in current:
                stale.unlink()
    manifest = {
        "run_id": run_id,
        "published_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "reporting_currency": marts_currency(con),  # of the marts and the analytics computed from them
        "csv": {
            "encoding": "UTF-8 with byte-order mark",
            "formula_neutralisation": "text cells starting with = + - @ tab or carriage return are written "
            "with a leading single quote ('); Parquet files and serving.duckdb keep the original values",
        },
        "tables": [asdict(p) for p in published],
    }
    _write_atomically(root / "manifest.json", json.dumps(manifest, indent=2), run_id)
    return published


def write_serving_snapshot(con: duckdb.DuckDBPyConnection, home: Path, run_id: str) -> Path:
    """Copy every published table into `$home/serving.duckdb` (built aside, then renamed into place)."""
    target = home / "serving.duckdb"
    tmp = _temporary(target, run_id)
    tmp.unlink(missing_ok=True)
    con.execute(f"ATTACH {_path_literal(tmp)} AS serving_snapshot")
    try:
        tables = published_tables(con)
        for schema in sorted({s for s, _ in tables}):
            con.execute(f"CREATE SCHEMA serving_snapshot.{ident(schema)}")
        for schema, table in tables:
            con.execute(
                f"CREATE TABLE serving_snapshot.{ident(schema)}.{ident(table)} AS "
                f"SELECT * FROM {ident(schema)}.{ident(table)}"
            )
    finally:
        con.execute("DETACH serving_snapshot")
    os.replace(tmp, target)
    return target


def _write_atomically(target: Path, text: str, run_id: str) -> None:
    tmp = _temporary(target, run_id)
    tmp.write_text(text)
    os.replace(tmp, target)
