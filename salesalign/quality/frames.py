"""The frames GX validates, computed in DuckDB: the landed batch, its profile, the raw schema.

GX's SQL data source does not work over DuckDB (the SQL it emits is a syntax error there: docs/stack.md),
so every suite validates a pandas DataFrame. Anything that needs more than the rows of the batch (is the key
already landed? does the account exist? does the currency have FX rates? how does the volume
compare?) is computed here, in DuckDB, as a plain fact column (a boolean, a count, a difference in
hours). The judgement (which value is expected, with which tolerance and severity) is the raw
contract's checks (salesalign/contract/tables.py), generated into the suites.

Frame kinds, one suite each (`raw.<table>.<kind>`):
- `rows`: the rows of the batch (only the columns the suite refers to), streamed in chunks;
- `batch`: one row of batch-level aggregates (row count, volume against previous loads);
- `schema`: one row whose columns are the columns of `raw.<table>` and values their SQL types;
- `reconciliation` (invoices): invoiced against booked amounts per close month of won deals.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import duckdb
import pandas as pd
import pyarrow as pa

from salesalign import contract
from salesalign.extract.landing import LOADS, RAW_SCHEMA, quote

ROW_ID = ("_load_id", "_source_row")  # identifies a landed row; what quarantine and dbt join on
DEFAULT_CHUNK_ROWS = 200_000
FX_TABLE = f"{RAW_SCHEMA}.fx_rates"


@dataclass(frozen=True)
class Derived:
    """A computed column of the `rows` frame: SQL over the batch row `b`, and the raw column it is about."""

    sql: str
    about: str


def _latest(table: str, column: str, key: str, value: str) -> str:
    """The value of `column` in the latest version of the `table` row whose `key` equals `value`."""
    t = contract.table(table)
    return (
        f"(SELECT arg_max(x.{column}, x.{t.updated_at}) FROM {RAW_SCHEMA}.{table} x WHERE x.{key} = {value})"
    )


def _hours_after_load(column: str) -> str:
    return f"date_diff('hour', b._loaded_at, CAST(b.{column} AS TIMESTAMP))"


def derived_columns(table_name: str) -> dict[str, Derived]:
    """Every computed column a `rows` suite of `table_name` may refer to."""
    t = contract.table(table_name)
    key = list(t.primary_key)
    same_key = " AND ".join(f"p.{k} = b.{k}" for k in key)
    newer = f" AND p.{t.updated_at} >= b.{t.updated_at}" if t.updated_at else ""
    cols: dict[str, Derived] = {
        "_key_occurrences_in_batch": Derived(
            f"count(*) OVER (PARTITION BY {', '.join('b.' + k for k in key)})", key[0]
        ),
        # A key landed before is fine only as a newer version of the record (latest version wins).
        "_is_new_key_or_version": Derived(
            f"NOT EXISTS (SELECT 1 FROM {RAW_SCHEMA}.{t.name} p WHERE {same_key}{newer} "
            f"AND p._loaded_at < (SELECT min(_loaded_at) FROM batch))",
            key[0],
        ),
    }
    for column, (ref_table, ref_column) in t.foreign_keys.items():
        cols[f"_{column}_exists"] = Derived(
            f"CASE WHEN b.{column} IS NULL THEN NULL ELSE EXISTS "
            f"(SELECT 1 FROM {RAW_SCHEMA}.{ref_table} r WHERE r.{ref_column} = b.{column}) END",
            column,
        )
    if "currency" in t.column_names and t.name != "fx_rates":
        cols["_currency_has_fx_rate"] = Derived(
            f"CASE WHEN b.currency IS NULL THEN NULL ELSE EXISTS "
            f"(SELECT 1 FROM {FX_TABLE} f WHERE f.currency = b.currency) END",
            "currency",
        )
    for c in t.columns:
        if c.type in ("DATE", "TIMESTAMP"):
            cols[f"_hours_after_load__{c.name}"] = Derived(_hours_after_load(c.name), c.name)
    cols.update(_specific_columns(t.name))
    return cols


def _specific_columns(table_name: str) -> dict[str, Derived]:
    """Computed columns that only make sense for one table (business rules that span rows or tables)."""
    opp = lambda column: _latest("opportunities", column, "opportunity_id", "b.opportunity_id")  # noqa: E731
    if table_name == "opportunities":
        return {
            "_days_created_to_close": Derived(
                "date_diff('day', CAST(b.created_at AS DATE), b.close_date)", "close_date"
            ),
            "_amount_minus_discounted_list": Derived(
                "CAST(b.amount AS DOUBLE) - CAST(b.list_amount AS DOUBLE) * (1 - b.discount)", "amount"
            ),
            # a deal without amounts needs no currency; one with amounts cannot be converted without
            "_amounts_have_currency": Derived(
                "CASE WHEN b.amount IS NULL AND b.list_amount IS NULL THEN NULL "
                "ELSE b.currency IS NOT NULL END",
                "currency",
            ),
        }
    if table_name == "opportunity_stage_history":
        return {
            "_hours_after_opportunity_created": Derived(
                f"date_diff('hour', {opp('created_at')}, b.changed_at)", "changed_at"
            ),
        }
    if table_name == "activities":
        return {
            "_account_matches_opportunity": Derived(f"b.account_id = {opp('account_id')}", "account_id"),
        }
    if table_name in ("invoices", "commissions"):
        date = "invoice_date" if table_name == "invoices" else "paid_date"
        return {
            "_opportunity_is_won": Derived(opp("is_won"), "opportunity_id"),
            "_days_after_close": Derived(f"date_diff('day', {opp('close_date')}, b.{date})", date),
        }
    if table_name == "credit_notes":
        return {
            "_share_of_invoice": Derived(
                f"CAST(b.amount AS DOUBLE) / nullif(CAST("
                f"{_latest('invoices', 'amount', 'invoice_id', 'b.invoice_id')} AS DOUBLE), 0)",
                "amount",
            ),
        }
    if table_name == "product_costs":
        return {"_validity_days": Derived("date_diff('day', b.valid_from, b.valid_to)", "valid_to")}
    if table_name in ("rep_costs", "cost_to_serve"):
        return {"_day_of_month": Derived("day(b.month)", "month")}
    return {}


def _select_expr(t: contract.Table, name: str, derived: dict[str, Derived]) -> str:
    if name in derived:
        return f"{derived[name].sql} AS {name}"
    column_type = t.column(name).type if name in t.column_names else ""
    # Money is DECIMAL in the warehouse; pandas compares doubles much faster than Decimal objects.
    if column_type.startswith("DECIMAL"):
        return f"CAST(b.{name} AS DOUBLE) AS {name}"
    return f"b.{name}"


def _batch_cte(table: str, load_ids: list[str]) -> str:
    ids = ", ".join(quote(i) for i in load_ids) or "NULL"
    return f"batch AS (SELECT * FROM {RAW_SCHEMA}.{table} WHERE _load_id IN ({ids}))"


def rows_sql(table_name: str, load_ids: list[str], columns: list[str]) -> str:
    """SQL for the `rows` frame: the batch rows with the requested (raw or derived) columns."""
    t = contract.table(table_name)
    derived = derived_columns(t.name)
    unknown = [c for c in columns if c not in derived and c not in t.column_names and c not in _METADATA]
    if unknown:
        raise KeyError(f"raw.{t.name} has no column or computed column {', '.join(unknown)}")
    wanted = list(dict.fromkeys([*ROW_ID, *t.primary_key, *columns]))
    select = ", ".join(_select_expr(t, c, derived) for c in wanted)
    return (
        f"WITH {_batch_cte(t.name, load_ids)} SELECT {select} FROM batch b ORDER BY b._load_id, b._source_row"
    )


_METADATA = {c.name for c in contract.LOAD_METADATA}


def iter_rows(
    con: duckdb.DuckDBPyConnection,
    table_name: str,
    load_ids: list[str],
    columns: list[str],
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> Iterator[pd.DataFrame]:
    """The `rows` frame of a raw batch in chunks of about `chunk_rows` rows."""
    return iter_query(con, rows_sql(table_name, load_ids, columns), chunk_rows)


def _validation_type(t: pa.DataType) -> pa.DataType:
    """Numbers as int64/float64: GX's pandas range check is vectorised only for those dtypes; an int32
    or a Decimal column falls back to a Python call per value (20M calls for raw.activities)."""
    if pa.types.is_integer(t):
        return pa.int64()
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return pa.float64()
    return t


def iter_query(con: duckdb.DuckDBPyConnection, sql: str, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """A query's result as pandas chunks of about `chunk_rows` rows (at least one, possibly empty)."""
    reader = con.sql(sql).to_arrow_reader(chunk_rows)
    schema = pa.schema([f.with_type(_validation_type(f.type)) for f in reader.schema])
    empty = True
    for record_batch in reader:
        empty = False
        yield pa.Table.from_batches([record_batch]).cast(schema).to_pandas()
    if empty:
        yield schema.empty_table().to_pandas()


def batch_frame(con: duckdb.DuckDBPyConnection, table_name: str, load_ids: list[str]) -> pd.DataFrame:
    """One row: rows and loads in the batch, and its volume against the (up to 5) previous loads."""
    t = contract.table(table_name)
    ids = ", ".join(quote(i) for i in load_ids) or "NULL"
    return con.execute(
        f"""WITH loads AS (SELECT load_id, rows, loaded_at FROM {LOADS} WHERE table_name = $table),
            cur AS (SELECT coalesce(sum(rows), 0) AS row_count, count(*) AS load_count,
                           min(loaded_at) AS first_loaded_at FROM loads WHERE load_id IN ({ids})),
            prev AS (SELECT rows FROM loads, cur WHERE loads.loaded_at < cur.first_loaded_at AND rows > 0
                     ORDER BY loads.loaded_at DESC LIMIT 5)
            SELECT cur.row_count, cur.load_count,
                   (SELECT count(*) FROM prev) AS previous_loads,
                   cur.row_count / (SELECT avg(rows) FROM prev) AS volume_ratio_vs_previous
            FROM cur""",
        {"table": t.name},
    ).df()


def schema_frame(con: duckdb.DuckDBPyConnection, table_name: str) -> pd.DataFrame:
    """One row whose columns are the columns of `raw.<table>` and whose values are their SQL types."""
    t = contract.table(table_name)
    rows = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
        [RAW_SCHEMA, t.name],
    ).fetchall()
    return pd.DataFrame([{name: type_ for name, type_ in rows}])


def reconciliation_frame(
    con: duckdb.DuckDBPyConnection, table_name: str, load_ids: list[str]
) -> pd.DataFrame:
    """Invoiced vs booked USD per close month of won deals, for the months the batch invoices touch.

    Latest versions of deals and invoices, over everything landed; amounts converted with the FX
    rate of the close date (or the last rate before it).
    """
    if table_name != "invoices":
        raise ValueError(f"no reconciliation frame for {table_name}")
    ids = ", ".join(quote(i) for i in load_ids) or "NULL"
    return con.execute(
        f"""WITH opp AS (
                SELECT opportunity_id, arg_max(is_won, updated_at) AS is_won,
                       arg_max(amount, updated_at) AS amount, arg_max(currency, updated_at) AS currency,
                       arg_max(close_date, updated_at) AS close_date
                FROM {RAW_SCHEMA}.opportunities GROUP BY opportunity_id),
            inv AS (
                SELECT opportunity_id, sum(amount) AS invoiced FROM (
                    SELECT invoice_id, arg_max(opportunity_id, _loaded_at) AS opportunity_id,
                           arg_max(amount, _loaded_at) AS amount
                    FROM {RAW_SCHEMA}.invoices GROUP BY invoice_id)
                GROUP BY opportunity_id),
            months AS (
                SELECT DISTINCT date_trunc('month', o.close_date) AS month
                FROM {RAW_SCHEMA}.invoices i JOIN opp o USING (opportunity_id)
                WHERE i._load_id IN ({ids})),
            won AS (
                SELECT o.*, coalesce(inv.invoiced, 0) AS invoiced, fx.usd_per_unit
                FROM opp o LEFT JOIN inv USING (opportunity_id)
                ASOF LEFT JOIN {FX_TABLE} fx ON fx.currency = o.currency AND fx.rate_date <= o.close_date
                WHERE o.is_won)
            SELECT m.month, count(w.opportunity_id) AS won_deals,
                   sum(w.amount * w.usd_per_unit) AS booked_usd,
                   sum(w.invoiced * w.usd_per_unit) AS invoiced_usd,
                   sum(w.invoiced * w.usd_per_unit) / nullif(sum(w.amount * w.usd_per_unit), 0)
                       AS invoiced_to_booked
            FROM months m LEFT JOIN won w ON date_trunc('month', w.close_date) = m.month
            GROUP BY m.month ORDER BY m.month"""
    ).df()


def referenced_columns(expectation_kwargs: dict) -> list[str]:
    """Columns an expectation reads: its column arguments and the columns of its row condition."""
    names: list[str] = []
    for arg in ("column", "column_A", "column_B"):
        if expectation_kwargs.get(arg):
            names.append(expectation_kwargs[arg])
    names += list(expectation_kwargs.get("column_list") or [])
    return names + _condition_columns(expectation_kwargs.get("row_condition"))


def _condition_columns(condition) -> list[str]:
    """Column names in a GX 1.x condition object ({"column": {"name": ...}}, and/or nestings)."""
    if isinstance(condition, dict):
        found = [condition["name"]] if set(condition) == {"name"} else []
        return found + [c for v in condition.values() for c in _condition_columns(v)]
    if isinstance(condition, list):
        return [c for v in condition for c in _condition_columns(v)]
    return []
