"""Writing analytics tables into DuckDB with the schema the registry declares (BI tools depend on the
types)."""

from __future__ import annotations

import pandas as pd

from salesalign.analytics.registry import BIGINT, BOOLEAN, DOUBLE, SCHEMA, Table


def write_table(con, table: Table, frame: pd.DataFrame) -> int:
    """Replace ``analytics.<table>`` with ``frame``, atomically: exactly the declared columns, in their
    order and SQL types. A frame with other columns, or a value its column's type cannot hold, raises
    naming the table, column and row."""
    unexpected = [c for c in frame.columns if c not in table.types]
    absent = [c for c in table.types if c not in frame.columns]
    if unexpected or absent:
        raise ValueError(
            f"{SCHEMA}.{table.name}: the frame's columns differ from salesalign/analytics/registry.py "
            f"(not declared: {unexpected}; declared but missing: {absent})"
        )
    typed = _typed(table, frame)
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(table.ddl())
        if len(typed):
            con.register("_frame", typed)
            select = ", ".join(f'CAST("{c}" AS {t})' for c, t in table.types.items())
            con.execute(f"INSERT INTO {SCHEMA}.{table.name} SELECT {select} FROM _frame")
            con.unregister("_frame")
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return len(typed)


def _typed(table: Table, frame: pd.DataFrame) -> pd.DataFrame:
    """The frame in declared column order, with nullable integer and boolean dtypes so that missing
    values land as NULL (a NaN cannot be cast to an integer)."""
    out = frame.reindex(columns=table.column_names).copy()
    for col, sql in table.types.items():
        try:
            out[col] = _convert(out[col], sql)
        except (TypeError, ValueError) as exc:
            row, value = _first_bad(out[col], sql)
            raise ValueError(
                f"{SCHEMA}.{table.name}, column {col} ({sql}): row {row} holds {value!r}, which is not a "
                f"{sql} ({exc})"
            ) from None
    return out


def _convert(values: pd.Series, sql: str) -> pd.Series:
    if sql == BIGINT:
        return pd.to_numeric(values).round().astype("Int64")
    if sql == BOOLEAN:
        return values.astype("boolean")
    if sql == DOUBLE:
        return pd.to_numeric(values).astype("float64")
    return values  # VARCHAR and DATE: DuckDB casts them on insert


def _first_bad(values: pd.Series, sql: str) -> tuple[object, object]:
    """The first row (index label) and value that ``_convert`` rejects."""
    for row, value in values.items():
        try:
            _convert(pd.Series([value], dtype=object), sql)
        except (TypeError, ValueError):
            return row, value
    return None, None
