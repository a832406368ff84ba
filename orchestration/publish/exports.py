"""BI outputs: every `marts.*` and `analytics.*` table as Parquet, plus a serving copy of the warehouse.

Readers never see a half-written file: each file is written under a temporary name beside its
target and renamed into place (an atomic replace on POSIX); the manifest is replaced last, so it
always describes files that are complete. The serving snapshot (`serving.duckdb`) is a separate
DuckDB file that BI tools open read-only while the pipeline holds the main warehouse for writing.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

PUBLISHED_SCHEMAS = ("marts", "analytics")


@dataclass(frozen=True)
class PublishedTable:
    schema: str
    table: str
    rows: int
    file: str
    columns: list[dict[str, str]]


def published_tables(con: duckdb.DuckDBPyConnection, schemas=PUBLISHED_SCHEMAS) -> list[tuple[str, str]]:
    placeholders = ", ".join("?" for _ in schemas)
    return con.execute(
        f"SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = current_database() "
        f"AND schema_name IN ({placeholders}) ORDER BY 1, 2",
        list(schemas),
    ).fetchall()


def _temporary(target: Path, run_id: str) -> Path:
    return target.with_name(f".{target.name}.{run_id}.tmp")


def export_parquet(con: duckdb.DuckDBPyConnection, home: Path, run_id: str) -> list[PublishedTable]:
    """Write `$home/exports/<schema>/<table>.parquet` for every published table, then the manifest."""
    root = home / "exports"
    published = []
    for schema, table in published_tables(con):
        target = root / schema / f"{table}.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = _temporary(target, run_id)
        con.execute(f"COPY (SELECT * FROM {schema}.{table}) TO '{tmp}' (FORMAT parquet, COMPRESSION zstd)")
        os.replace(tmp, target)
        columns = con.execute(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = current_database() "
            "AND schema_name = ? AND table_name = ? ORDER BY column_index",
            [schema, table],
        ).fetchall()
        rows = con.execute(f"SELECT count(*) FROM {schema}.{table}").fetchone()[0]
        published.append(
            PublishedTable(schema, table, rows, str(target.relative_to(home)),
                           [{"name": n, "type": t} for n, t in columns])
        )
    current = {home / p.file for p in published}
    for schema in PUBLISHED_SCHEMAS:  # a table dropped from the warehouse leaves the exports too
        for stale in (root / schema).glob("*.parquet") if (root / schema).is_dir() else []:
            if stale not in current:
                stale.unlink()
    manifest = {
        "run_id": run_id,
        "published_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "tables": [asdict(p) for p in published],
    }
    _write_atomically(root / "manifest.json", json.dumps(manifest, indent=2), run_id)
    return published


def write_serving_snapshot(con: duckdb.DuckDBPyConnection, home: Path, run_id: str) -> Path:
    """Copy every published table into `$home/serving.duckdb` (built aside, then renamed into place)."""
    target = home / "serving.duckdb"
    tmp = _temporary(target, run_id)
    tmp.unlink(missing_ok=True)
    con.execute(f"ATTACH '{tmp}' AS serving_snapshot")
    try:
        tables = published_tables(con)
        for schema in sorted({s for s, _ in tables}):
            con.execute(f"CREATE SCHEMA serving_snapshot.{schema}")
        for schema, table in tables:
            con.execute(f"CREATE TABLE serving_snapshot.{schema}.{table} AS SELECT * FROM {schema}.{table}")
    finally:
        con.execute("DETACH serving_snapshot")
    os.replace(tmp, target)
    return target


def _write_atomically(target: Path, text: str, run_id: str) -> None:
    tmp = _temporary(target, run_id)
    tmp.write_text(text)
    os.replace(tmp, target)
