"""Frames for the mart suites: the mart's rows (only the columns the suite reads) and its totals.

As for raw batches, DuckDB computes the facts (identity gaps, key counts, totals against staging)
and the suites in `expectations/expectations/marts/` judge them. Marts are validated whole, in
chunks; a mart has one row per deal, never one per activity.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import duckdb
import pandas as pd

from orchestration.quality.frames import iter_query

MARTS_SCHEMA = "marts"


@dataclass(frozen=True)
class MartSpec:
    key: tuple[str, ...]
    derived: dict[str, str]  # computed column -> SQL over the mart row `m`
    totals_sql: str  # one row of reconciliation totals


def _gap(column: str, formula: str) -> str:
    return f"CAST(m.{column} AS DOUBLE) - CAST({formula} AS DOUBLE)"


MARTS: dict[str, MartSpec] = {
    "fct_deal_margin": MartSpec(
        key=("opportunity_id",),
        derived={
            "_key_occurrences": "count(*) OVER (PARTITION BY m.opportunity_id)",
            "_discount_gap": _gap("discount_amount", "m.list_amount - m.deal_amount"),
            "_net_revenue_gap": _gap("net_revenue", "m.invoiced_revenue - m.credits"),
            "_gross_margin_gap": _gap("gross_margin", "m.net_revenue - m.cogs"),
            "_selling_cost_gap": _gap("selling_cost", "m.effort_cost + m.commissions"),
            "_contribution_margin_gap": _gap(
                "contribution_margin", "m.net_revenue - m.cogs - m.selling_cost - m.allocated_cost_to_serve"
            ),
        },
        # The mart against staging: every closed deal is in it once, and it carries every invoice.
        totals_sql="""
            WITH closed AS (SELECT count(*) AS n FROM staging.stg_crm__opportunities WHERE is_closed),
            mart AS (SELECT count(*) AS n, sum(invoiced_revenue) AS invoiced,
                            sum(net_bookings) AS bookings FROM marts.fct_deal_margin),
            invoiced AS (SELECT sum(amount_reporting) AS amount FROM staging.stg_finance__invoices
                         WHERE opportunity_id IN (SELECT opportunity_id FROM marts.fct_deal_margin))
            SELECT mart.n AS closed_deals, closed.n AS closed_deals_in_staging,
                   mart.n / nullif(closed.n, 0) AS closed_deals_to_staging,
                   CAST(mart.invoiced AS DOUBLE) / nullif(CAST(invoiced.amount AS DOUBLE), 0)
                       AS invoiced_revenue_to_staging_invoices,
                   CAST(mart.invoiced AS DOUBLE) / nullif(CAST(mart.bookings AS DOUBLE), 0)
                       AS invoiced_revenue_to_net_bookings
            FROM mart, closed, invoiced""",
    ),
}


def mart(model: str) -> MartSpec:
    try:
        return MARTS[model]
    except KeyError:
        raise KeyError(f"no quality frames for mart {model!r}; known: {', '.join(MARTS)}") from None


def iter_mart_rows(
    con: duckdb.DuckDBPyConnection, model: str, columns: list[str], chunk_rows: int
) -> Iterator[pd.DataFrame]:
    spec = mart(model)
    wanted = list(dict.fromkeys([*spec.key, *columns]))
    select = ", ".join(f"{spec.derived[c]} AS {c}" if c in spec.derived else f"m.{c}" for c in wanted)
    order = ", ".join(f"m.{k}" for k in spec.key)
    return iter_query(con, f"SELECT {select} FROM {MARTS_SCHEMA}.{model} m ORDER BY {order}", chunk_rows)


def totals_frame(con: duckdb.DuckDBPyConnection, model: str) -> pd.DataFrame:
    return con.execute(mart(model).totals_sql).df()
