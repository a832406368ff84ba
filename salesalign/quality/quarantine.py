"""Quarantine: rows failing a row-level expectation configured `on_failure: quarantine`.

The raw rows stay in `raw.<table>` (nothing is lost); `raw_quarantine.quarantined_rows` names
them by (table_name, load_id, source_row) with the expectation and the reason, and dbt staging
anti-joins on it. One quarantine row per (raw row, expectation) that it failed.
"""

from __future__ import annotations

import json
from dataclasses import astuple, dataclass
from datetime import datetime

import duckdb
import pandas as pd

from salesalign.contract import Column

SCHEMA = "raw_quarantine"
TABLE = f"{SCHEMA}.quarantined_rows"
DBT_SOURCE = "dbt_project/models/staging/__quality_sources.yml"
DBT_MACRO = "dbt_project/macros/generated/quarantine.sql"
GENERATED = "Generated from salesalign/quality/quarantine.py by `make generate`; do not edit by hand."

# The ledger's columns: the one declaration its DDL (here and in dbt's on-run-start) and its dbt
# source are made from.
LEDGER_COLUMNS: tuple[Column, ...] = (
    Column("table_name", "VARCHAR", "The raw table, e.g. opportunities.", nullable=False),
    Column("load_id", "VARCHAR", "raw.<table>._load_id of the quarantined row.", nullable=False),
    Column("source_row", "BIGINT", "raw.<table>._source_row of the quarantined row.", nullable=False),
    Column("key_value", "VARCHAR", "Primary key of the row ('|'-joined if compound)."),
    Column(
        "expectation",
        "VARCHAR",
        "The failed expectation, e.g. expect_column_values_to_be_between(amount).",
        nullable=False,
    ),
    Column("column_name", "VARCHAR", "The raw column at fault."),
    Column("value", "VARCHAR", "Its value, as text."),
    Column("reason", "VARCHAR", "The suite's reason for the expectation."),
    Column("quarantined_at", "TIMESTAMP", "When the check quarantined it (UTC).", nullable=False),
)


@dataclass(frozen=True)
class QuarantinedRow:
    """One ledger row as a check produces it (the ledger adds `table_name` and `quarantined_at`)."""

    load_id: str
    source_row: int
    key_value: str
    expectation: str
    column_name: str | None
    value: str | None
    reason: str


def ledger_ddl() -> list[str]:
    """The statements that create the ledger if it is missing."""
    columns = ", ".join(f"{c.name} {c.type}{'' if c.nullable else ' NOT NULL'}" for c in LEDGER_COLUMNS)
    return [f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}", f"CREATE TABLE IF NOT EXISTS {TABLE} ({columns})"]


def ensure_quarantine_table(con: duckdb.DuckDBPyConnection) -> None:
    for statement in ledger_ddl():
        con.execute(statement)


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


def generated_files() -> dict[str, str]:
    """What dbt needs of the ledger, derived from LEDGER_COLUMNS: its source and the DDL for on-run-start
    (so staging can anti-join on it before any check has run)."""
    source = [
        f"# {GENERATED}",
        "version: 2",
        "",
        "sources:",
        "  - name: quality",
        '    description: "What the quality gates (Great Expectations checks on the raw tables) decided."',
        f"    schema: {SCHEMA}",
        "    tables:",
        f"      - name: {TABLE.split('.')[1]}",
        "        description: >",
        "          Raw rows failing a row-level expectation configured `on_failure: quarantine`, one row per",
        "          (raw row, expectation), written by the GX checks (salesalign/quality/quarantine.py).",
        "          The raw rows stay in raw; every staging model reads raw through the macro `landed`, which",
        "          leaves these rows out. In Dagster this is the asset quality/quarantined_rows.",
        "        meta:",
        "          dagster:",
        '            asset_key: ["quality", "quarantined_rows"]',
        "        columns:",
    ]
    for c in LEDGER_COLUMNS:
        source += [
            f"          - name: {c.name}",
            f"            description: {json.dumps(c.description)}",
            f"            data_type: {c.type.lower()}",
        ]
    macro = [
        f"{{#- {GENERATED} -#}}",
        "",
        "{#- Create the quarantine ledger if it is missing (dbt_project.yml runs it on-run-start). -#}",
        "{% macro quarantine_ledger_ddl() -%}",
        "    " + ";\n    ".join(ledger_ddl()),
        "{%- endmacro %}",
    ]
    return {DBT_SOURCE: "\n".join(source) + "\n", DBT_MACRO: "\n".join(macro) + "\n"}
