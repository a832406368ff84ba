"""Landing custom attributes: the extra source columns a mapping profile keeps (`attributes:`).

`raw.attributes` has the columns of `contract.tables.ATTRIBUTES` (entity, entity_id, name, value)
plus the load metadata of every raw table. A profile export is one snapshot, so a newly staged
attributes file (new by SHA-256) replaces the rows that file delivered before, in one
transaction; the same file again adds nothing (`raw._loads` logs it like any landed file).
Analyses read them through `salesalign.analytics.config` (causal.yml `attribute:` variables).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import duckdb

from salesalign import contract
from salesalign.contract.tables import ATTRIBUTES
from salesalign.extract.landing import LOADS, RAW_SCHEMA, LoadResult, ensure_raw_tables, file_sha256
from salesalign.extract.sources import Batch

TABLE = f"{RAW_SCHEMA}.{ATTRIBUTES.name}"


def ensure_attributes_table(con: duckdb.DuckDBPyConnection) -> None:
    """Create `raw.attributes` (and the rest of raw) if missing."""
    ensure_raw_tables(con)
    cols = ", ".join(f"{c.name} {c.type}" for c in ATTRIBUTES.columns + contract.LOAD_METADATA)
    con.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} ({cols})")


def land_attributes(con: duckdb.DuckDBPyConnection, batch: Batch, source: str) -> LoadResult:
    """Replace `source`'s attributes of entity `batch.table` with the staged file's rows."""
    ensure_attributes_table(con)
    sha = file_sha256(batch.path)
    landed = con.execute(
        f"SELECT load_id FROM {LOADS} WHERE table_name = ? AND file_sha256 = ? AND source = ?",
        [ATTRIBUTES.name, sha, source],
    ).fetchone()
    if landed:
        return LoadResult(ATTRIBUTES.name, str(batch.path), landed[0], 0, skipped=True)
    load_id = uuid.uuid4().hex
    loaded_at = datetime.now(UTC).replace(tzinfo=None)
    names = [c.name for c in ATTRIBUTES.columns]
    target = ", ".join(names + [c.name for c in contract.LOAD_METADATA])
    select = ", ".join(f"CAST({c.name} AS {c.type})" for c in ATTRIBUTES.columns)
    con.execute("BEGIN TRANSACTION")
    try:
        # the staged file of one profile table keeps its path: its previous snapshot is replaced
        con.execute(
            f"DELETE FROM {TABLE} WHERE entity = ? AND _source = ? AND _source_file = ?",
            [batch.table, source, str(batch.path)],
        )
        con.execute(
            f"""INSERT INTO {TABLE} ({target})
                SELECT {select}, $load_id, $source, $file, row_number() OVER (), $loaded_at
                FROM read_parquet($file) WHERE entity = $entity""",
            {"load_id": load_id, "source": source, "file": str(batch.path), "loaded_at": loaded_at,
             "entity": batch.table},
        )
        rows = con.execute(f"SELECT count(*) FROM {TABLE} WHERE _load_id = ?", [load_id]).fetchone()[0]
        con.execute(
            f"INSERT INTO {LOADS} VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [load_id, ATTRIBUTES.name, source, str(batch.path), sha, batch.path.stat().st_size, rows,
             loaded_at],
        )
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return LoadResult(ATTRIBUTES.name, str(batch.path), load_id, rows, skipped=False)


def land_source_attributes(con: duckdb.DuckDBPyConnection, source, table: str) -> list[LoadResult]:
    """Land the attributes a source staged for contract table `table` (none for most sources)."""
    batches = getattr(source, "attribute_batches", None)
    return [land_attributes(con, b, source.name) for b in (batches(table) if batches else [])]
