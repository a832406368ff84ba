"""Frames for the mart suites: the mart's rows (only the columns the suite reads) and its totals.

As for raw batches, DuckDB computes the facts (identity gaps, key counts, totals against staging)
and the suites in `expectations/expectations/marts/` judge them. Marts are validated whole, in
chunks; a mart has at most one row per opportunity, never one per activity. Every mart has a
`rows` suite (keys, ranges, identities on computed `_` columns) and a `totals` suite (one row of
reconciliation figures against staging or the other marts).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import duckdb
import pandas as pd

from salesalign.quality.frames import iter_query

MARTS_SCHEMA = "marts"


@dataclass(frozen=True)
class MartSpec:
    key: tuple[str, ...]
    derived: dict[str, str]  # computed column -> SQL over the mart row `m`
    totals_sql: str  # one row of reconciliation totals


def _gap(column: str, formula: str) -> str:
    return f"CAST(m.{column} AS DOUBLE) - CAST({formula} AS DOUBLE)"


def _flag(condition: str) -> str:
    """1 where the condition holds (a broken rule), else 0: the suite expects 0."""
    return f"CASE WHEN {condition} THEN 1 ELSE 0 END"


def _ratio(numerator: str, denominator: str) -> str:
    return f"CAST({numerator} AS DOUBLE) / nullif(CAST({denominator} AS DOUBLE), 0)"


def _performance(model: str, key: str, grain: str, dimension: str) -> MartSpec:
    """mart_segment_performance / mart_rep_performance: one row per <grain> and close month,
    summed from fct_deal_margin; the totals must add back up to the fact."""
    return MartSpec(
        key=(key,),
        derived={
            "_key_occurrences": f"count(*) OVER (PARTITION BY m.{key})",
            "_deal_count_gap": "m.deals_closed - m.deals_won - m.deals_lost",
            "_win_rate_gap": "m.win_rate - CAST(m.deals_won AS DOUBLE) / nullif(m.deals_closed, 0)",
            # each deal's identity holds to the cent, so the month's sum holds to a cent per deal
            "_contribution_margin_gap_per_deal": f"""({_gap(
                "contribution_margin", "m.gross_margin - m.selling_cost - m.allocated_cost_to_serve"
            )}) / nullif(m.deals_closed, 0)""",
        },
        totals_sql=f"""
            WITH mart AS (SELECT count(*) AS n, sum(deals_closed) AS deals, sum(net_bookings) AS bookings,
                                 sum(net_revenue) AS revenue, sum(contribution_margin) AS cm,
                                 sum(selling_hours) AS hours
                          FROM marts.{model}),
            fact AS (SELECT count(*) AS deals, sum(net_bookings) AS bookings, sum(net_revenue) AS revenue,
                            sum(contribution_margin) AS cm, sum(selling_minutes) / 60.0 AS hours
                     FROM marts.fct_deal_margin),
            missing AS (SELECT count(DISTINCT {grain}) AS n FROM marts.{model}
                        WHERE {grain} NOT IN (SELECT {grain} FROM marts.{dimension}))
            SELECT mart.n AS rows, {_ratio("mart.deals", "fact.deals")} AS deals_to_fct_deal_margin,
                   CAST(mart.bookings - fact.bookings AS DOUBLE) AS net_bookings_gap,
                   CAST(mart.revenue - fact.revenue AS DOUBLE) AS net_revenue_gap,
                   CAST(mart.cm - fact.cm AS DOUBLE) AS contribution_margin_gap,
                   {_ratio("mart.hours", "fact.hours")} AS selling_hours_to_fct_deal_margin,
                   missing.n AS {grain}s_missing_from_{dimension}
            FROM mart, fact, missing""",
    )


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
    "fct_opportunities": MartSpec(
        key=("opportunity_id",),
        derived={
            "_key_occurrences": "count(*) OVER (PARTITION BY m.opportunity_id)",
            "_won_but_not_closed": _flag("m.is_won AND NOT m.is_closed"),
            "_stage_contradicts_outcome": _flag(
                "(m.stage = 'closed_won') <> (m.outcome = 'won') "
                "OR (m.stage = 'closed_lost') <> (m.outcome = 'lost')"
            ),
            "_deal_above_list": _gap("deal_amount", "m.list_amount"),
        },
        # Every staged opportunity once; its closed deals are exactly fct_deal_margin's.
        totals_sql=f"""
            WITH mart AS (SELECT count(*) AS n, count(*) FILTER (WHERE is_closed) AS closed
                          FROM marts.fct_opportunities),
            staged AS (SELECT count(*) AS n FROM staging.stg_crm__opportunities),
            fact AS (SELECT count(*) AS n FROM marts.fct_deal_margin)
            SELECT mart.n AS rows, {_ratio("mart.n", "staged.n")} AS opportunities_to_staging,
                   {_ratio("mart.closed", "fact.n")} AS closed_to_fct_deal_margin
            FROM mart, staged, fact""",
    ),
    "dim_accounts": MartSpec(
        key=("account_id",),
        derived={
            "_key_occurrences": "count(*) OVER (PARTITION BY m.account_id)",
            "_customer_flag_contradicts_won_deals": _flag("m.is_customer <> (m.won_deals > 0)"),
        },
        totals_sql=f"""
            WITH mart AS (SELECT count(*) AS n, sum(won_deals) AS won FROM marts.dim_accounts),
            staged AS (SELECT count(*) AS n FROM staging.stg_crm__accounts),
            won AS (SELECT count(*) AS n FROM marts.fct_opportunities WHERE is_won)
            SELECT mart.n AS rows, {_ratio("mart.n", "staged.n")} AS accounts_to_staging,
                   {_ratio("mart.won", "won.n")} AS won_deals_to_fct_opportunities
            FROM mart, staged, won""",
    ),
    "dim_reps": MartSpec(
        key=("rep_id",),
        derived={
            "_key_occurrences": "count(*) OVER (PARTITION BY m.rep_id)",
            "_manages_self": _flag("m.manager_id = m.rep_id"),
        },
        totals_sql=f"""
            WITH mart AS (SELECT count(*) AS n FROM marts.dim_reps),
            staged AS (SELECT count(*) AS n FROM staging.stg_crm__reps),
            missing AS (SELECT count(DISTINCT rep_id) AS n FROM marts.fct_opportunities
                        WHERE rep_id NOT IN (SELECT rep_id FROM marts.dim_reps))
            SELECT mart.n AS rows, {_ratio("mart.n", "staged.n")} AS reps_to_staging,
                   missing.n AS deal_reps_missing_from_dim_reps
            FROM mart, staged, missing""",
    ),
    "dim_segments": MartSpec(
        key=("segment_id",),
        derived={"_key_occurrences": "count(*) OVER (PARTITION BY m.segment_id)"},
        totals_sql=f"""
            WITH mart AS (SELECT count(*) AS n, sum(account_count) AS accounts FROM marts.dim_segments),
            accounts AS (SELECT count(*) AS n FROM marts.dim_accounts),
            missing AS (SELECT count(DISTINCT segment_id) AS n FROM marts.dim_accounts
                        WHERE segment_id NOT IN (SELECT segment_id FROM marts.dim_segments))
            SELECT mart.n AS rows, {_ratio("mart.accounts", "accounts.n")} AS account_count_to_dim_accounts,
                   missing.n AS account_segments_missing_from_dim_segments
            FROM mart, accounts, missing""",
    ),
    "mart_segment_performance": _performance(
        "mart_segment_performance", "segment_month_id", "segment_id", "dim_segments"
    ),
    "mart_rep_performance": _performance("mart_rep_performance", "rep_month_id", "rep_id", "dim_reps"),
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
