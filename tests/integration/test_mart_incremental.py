"""Incremental facts: land the small demo, build, land a second day of changed and new rows, build
incrementally; the marts equal a full refresh on the same data."""

from __future__ import annotations

import shutil

import duckdb
import pandas as pd
import pytest
from fixtures.warehouse import land_drop, new_home, query, run_dbt

KEYS = {
    "fct_deal_margin": "opportunity_id",
    "fct_opportunities": "opportunity_id",
    "dim_accounts": "account_id",
    "dim_reps": "rep_id",
    "dim_segments": "segment_id",
    "mart_segment_performance": "segment_month_id",
    "mart_rep_performance": "rep_month_id",
}


def write_day_two(drop) -> dict:
    """Write `<table>/day2.parquet` files of changes into `drop` (landed as later batches)."""
    day2 = {}
    with duckdb.connect() as con:
        for t in ["opportunities", "invoices", "activities", "cost_to_serve", "fx_rates", "rep_costs",
                  "accounts", "product_costs", "commissions"]:
            con.execute(f"create view {t} as select * from read_parquet('{drop / (t + '.parquet')}')")
        d = con.execute("select max(close_date) + 1 from opportunities where is_closed").fetchone()[0]
        ts = f"timestamp '{d} 12:00:00'"
        day = f"date '{d}'"
        con.execute(f"""create table o2 as
            -- 15 open deals won today, 5 lost today
            select * replace ('closed_won' as stage, true as is_closed, true as is_won,
                              {day} as close_date, {ts} as updated_at)
            from (select * from opportunities where not is_closed order by opportunity_id limit 15)
            union all
            select * replace ('closed_lost' as stage, true as is_closed, false as is_won,
                              {day} as close_date, {ts} as updated_at)
            from (select * from opportunities where not is_closed order by opportunity_id limit 5 offset 15)
            -- 10 won deals renegotiated (amount changes)
            union all
            select * replace (cast(amount * 0.95 as decimal(18,2)) as amount, {ts} as updated_at)
            from (select * from opportunities where is_won order by opportunity_id limit 10)
            -- 2 lost deals reopened: they must leave fct_deal_margin
            union all
            select * replace ('negotiation' as stage, false as is_closed, false as is_won, {ts} as updated_at)
            from (select * from opportunities where is_closed and not is_won order by opportunity_id limit 2)
            -- a stale version landed late: older updated_at, must be ignored
            union all
            select * replace ('prospecting' as stage, false as is_closed, false as is_won,
                              updated_at - interval 30 day as updated_at)
            from (select * from opportunities where is_won order by opportunity_id desc limit 3)""")
        con.execute(
            "create table won2 as select * from o2 where stage = 'closed_won' and close_date = " + day
        )
        out = {
            "opportunities": "select * from o2",
            "invoices": """select 'INV-D2-' || opportunity_id as invoice_id, opportunity_id, account_id,
                                   close_date as invoice_date, amount, currency from won2""",
            "commissions": """select 'COM-D2-' || opportunity_id as commission_id, opportunity_id,
                                      owner_rep_id as rep_id, close_date as paid_date,
                                      cast(amount * 0.08 as decimal(18,2)) as amount, currency from won2""",
            "activities": """select 'ACT-D2-' || opportunity_id || '-' || k as activity_id, opportunity_id,
                                     account_id, owner_rep_id as rep_id,
                                     case when k = 1 then 'proof_of_concept' else 'call' end as activity_type,
                                     cast(close_date - 3 as timestamp) + interval 10 hour as started_at,
                                     35 as duration_minutes
                              from (select * from o2 where is_closed), range(1, 3) as r(k)
                              union all
                              select 'ACT-D2-LATE-' || opportunity_id, opportunity_id, account_id,
                                     owner_rep_id, 'executive_sponsor_meeting',
                                     cast(close_date - 10 as timestamp) + interval 9 hour, 55
                              from (select * from opportunities where is_closed
                                    order by opportunity_id desc limit 10)""",
            "cost_to_serve": f"""select account_id,
                                        cast(date_trunc('month', {day}) + interval 1 month as date) as month,
                                        cast(1234.56 as decimal(18,2)) as amount, currency from won2
                                 union all
                                 select account_id, month, cast(amount + 100 as decimal(18,2)), currency
                                 from (select * from cost_to_serve order by account_id, month limit 5)""",
            "fx_rates": """select rate_date, currency, usd_per_unit * 1.01 as usd_per_unit from fx_rates
                            where currency = 'EUR' and rate_date = (
                                select min(close_date) from opportunities
                                where is_won and currency = 'EUR')""",
            "rep_costs": """select rep_id, month,
                                   cast(loaded_cost_per_hour + 5 as decimal(18,2)) as loaded_cost_per_hour,
                                   currency
                            from (select * from rep_costs order by rep_id, month limit 3)""",
            "accounts": f"""select * replace (5000 as employee_count, {ts} as updated_at)
                            from accounts
                            where account_id = (select min(account_id) from opportunities where is_won)""",
            "product_costs": """select * replace (cogs_rate + 0.01 as cogs_rate)
                                from (select * from product_costs order by product_id, valid_from limit 1)""",
        }
        for table, sql in out.items():
            (drop / table).mkdir(exist_ok=True)
            con.execute(f"copy ({sql}) to '{drop / table / 'day2.parquet'}' (format parquet)")
            day2[table] = con.execute(f"select count(*) from ({sql})").fetchone()[0]
        day2["won_today"] = [r[0] for r in con.execute("select opportunity_id from won2").fetchall()]
        day2["reopened"] = [r[0] for r in con.execute(
            "select opportunity_id from o2 where stage = 'negotiation'").fetchall()]
    return day2


def table(home, name: str) -> pd.DataFrame:
    df = query(home, f"select * from marts.{name}")
    df = df.drop(columns=[c for c in ["loaded_through"] if c in df.columns])
    return df.sort_values(KEYS[name]).reset_index(drop=True)


@pytest.fixture(scope="module")
def incremental_and_full(small_drop, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("incremental")
    drop = tmp / "drop"
    shutil.copytree(small_drop, drop)
    home = new_home(tmp / "home")
    land_drop(home, drop)
    run_dbt(home, "run")
    before = query(home, "select count(*) as n from marts.fct_deal_margin").n[0]
    day2 = write_day_two(drop)
    land_drop(home, drop)
    run_dbt(home, "build")  # the incremental run, with every dbt test on its result
    full = new_home(tmp / "full", home)
    run_dbt(full, "run", "--full-refresh")
    return home, full, day2, before


def test_incremental_build_equals_full_refresh(incremental_and_full):
    home, full, _, _ = incremental_and_full
    for name in KEYS:
        pd.testing.assert_frame_equal(table(home, name), table(full, name), check_exact=True, obj=name)


def test_the_second_run_was_incremental_and_applied_the_changes(incremental_and_full):
    home, _, day2, before = incremental_and_full
    runs = query(home, """select loaded_through, count(*) as n from marts.fct_deal_margin
                          group by 1 order by 1""")
    assert len(runs) == 2, "the second build should have rewritten only the affected deals"
    assert 0 < runs.n.iloc[1] < runs.n.sum() / 2
    deals = query(
        home, "select opportunity_id, outcome, net_revenue from marts.fct_deal_margin"
    ).set_index("opportunity_id")
    assert len(deals) == before + 20 - 2
    assert set(day2["won_today"]) <= set(deals.index)
    assert (deals.loc[day2["won_today"], "net_revenue"] > 0).all()
    assert not set(day2["reopened"]) & set(deals.index)
    opps = query(
        home, "select opportunity_id, outcome from marts.fct_opportunities"
    ).set_index("opportunity_id")
    assert (opps.loc[day2["reopened"], "outcome"] == "open").all()
