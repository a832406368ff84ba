"""Quarantine: rows failing a row-level expectation configured `on_failure: quarantine`.

The raw rows stay in `raw.<table>` (nothing is lost); `raw_quarantine.quarantined_rows` names
them by (table_name, load_id, source_row) with the expectation and the reason, and dbt staging
anti-joins on it. One quarantine row per (raw row, expectation) that it failed.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass
from datetime import datetime

import duckdb
import pandas as pd

SCHEMA = "raw_quarantine"
TABLE = f"{SCHEMA}.quarantined_rows"


@dataclass(frozen=True)
class QuarantinedRow:
    load_id: str
    source_row: int
    key_value: str
    expectation: str
    column_name: str | None
    value: str | None
    reason: str


def ensure_quarantine_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    con.execute(
        f"""CREATE TABLE IF NOT EXISTS {TABLE} (
            table_name VARCHAR NOT NULL,   -- raw table, e.g. opportunities
            load_id VARCHAR NOT NULL,      -- raw.<table>._load_id
            source_row BIGINT NOT NULL,    -- raw.<table>._source_row
            key_value VARCHAR,             -- primary key of the row ('|'-joined if compound)
            expectation VARCHAR NOT NULL,  -- e.g. expect_column_values_to_be_between(amount)
            column_name VARCHAR,           -- the raw column at fault
            value VARCHAR,                 -- its value, as text
            reason VARCHAR,                -- the suite's reason for the expectation
            quarantined_at TIMESTAMP NOT NULL)"""
    )


def replace_quarantine(
    con: duckdb.DuckDBPyConnection,
    table_name: str,
    load_ids: list[str],
    rows: list[QuarantinedRow],
    now: datetime,
) -> int:
    """Replace the quarantine of these loads by `rows` (re-validating a batch is idempotent).

    Returns the number of distinct raw rows quarantined.
    """
    ensure_quarantine_table(con)
    at = now.replace(tzinfo=None)
    con.execute("BEGIN TRANSACTION")
    try:
        if load_ids:
            con.execute(
                f"DELETE FROM {TABLE} WHERE table_name = ? AND list_contains(?, load_id)",
                [table_name, load_ids],
            )
        if rows:
            frame = pd.DataFrame(
                [astuple(r) for r in rows], columns=list(QuarantinedRow.__dataclass_fields__)
            )
            frame.insert(0, "table_name", table_name)
            frame["quarantined_at"] = at
            con.register("_quarantine_batch", frame)
            try:
                con.execute(f"INSERT INTO {TABLE} BY NAME SELECT * FROM _quarantine_batch")
            finally:
                con.unregister("_quarantine_batch")
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return len({(r.load_id, r.source_row) for r in rows})


def ledger_summary(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """Quarantined raw rows per (table, expectation): how many, in how many loads, the latest reason."""
    ensure_quarantine_table(con)
    rows = con.execute(
        f"""SELECT table_name, expectation, count(DISTINCT (load_id, source_row)) AS rows,
                   count(DISTINCT load_id) AS loads, arg_max(reason, quarantined_at) AS reason
            FROM {TABLE} GROUP BY ALL ORDER BY rows DESC, table_name, expectation"""
    ).fetchall()
    return [dict(zip(("table", "expectation", "rows", "loads", "reason"), r, strict=True)) for r in rows]


def quarantined_by_table(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Distinct raw rows held back from the marts per table (a row failing two expectations counts once)."""
    ensure_quarantine_table(con)
    rows = con.execute(
        f"SELECT table_name, count(DISTINCT (load_id, source_row)) FROM {TABLE} GROUP BY 1 ORDER BY 1"
    ).fetchall()
    return dict(rows)
