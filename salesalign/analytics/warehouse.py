"""Writing analytics tables into DuckDB with a stable, declared schema (BI tools depend on the types)."""

from __future__ import annotations

import pandas as pd

SCHEMA = "analytics"


def write_table(con, name: str, frame: pd.DataFrame, types: dict[str, str]) -> int:
    """Replace ``analytics.<name>`` with ``frame`` (columns and SQL types from ``types``), atomically."""
    cols = list(types)
    frame = frame.reindex(columns=cols)
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    con.execute("BEGIN TRANSACTION")
    try:
        ddl = ", ".join(f'"{c}" {t}' for c, t in types.items())
        con.execute(f"CREATE OR REPLACE TABLE {SCHEMA}.{name} ({ddl})")
        if len(frame):
            con.register("_frame", frame)
            select = ", ".join(f'CAST("{c}" AS {t})' for c, t in types.items())
            con.execute(f"INSERT INTO {SCHEMA}.{name} SELECT {select} FROM _frame")
            con.unregister("_frame")
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return len(frame)
