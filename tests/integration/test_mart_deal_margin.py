"""fct_deal_margin against an independent pandas computation and the demo's own bookkeeping."""

from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pandas as pd
import pytest
from fixtures.warehouse import dbt_target, new_home, query, run_dbt

from salesalign import contract

MONEY = ["list_amount", "discount_amount", "deal_amount", "net_bookings", "invoiced_revenue", "credits",
         "net_revenue", "cogs", "gross_margin", "effort_cost", "commissions", "selling_cost",
         "allocated_cost_to_serve", "contribution_margin"]


@pytest.fixture(scope="module")
def built_home(small_home, tmp_path_factory):
    """A copy of the small landed warehouse with the whole dbt project built (models and tests)."""
    home = new_home(tmp_path_factory.mktemp("mart-home"), small_home)
    run_dbt(home, "build")
    return home


def r2(x):
    """Round half away from zero to the cent, as the SQL round() does."""
    x = np.asarray(x, dtype=float)
    return np.sign(x) * np.floor(np.abs(x) * 100 + 0.5) / 100


def times_rate(amounts, rates) -> np.ndarray:
    """money x rate rounded to the cent in exact decimal arithmetic, the rate taken to 10 places."""
    cent, places = Decimal("0.01"), Decimal("1e-10")
    return np.array([
        float(
            (Decimal(repr(float(a))) * Decimal(repr(float(r))).quantize(places)).quantize(
                cent, ROUND_HALF_UP
            )
        )
        for a, r in zip(amounts, rates, strict=True)
    ])


def latest(home, table: str) -> pd.DataFrame:
    """The raw table with the latest version of each record (updated_at, _loaded_at, _source_row)."""
    t = contract.table(table)
    df = query(home, f"select * from raw.{table}")
    order = ([t.updated_at] if t.updated_at else []) + ["_loaded_at", "_source_row"]
    return df.sort_values(order).drop_duplicates(list(t.primary_key), keep="last").reset_index(drop=True)


def expected_deal_margin(home) -> pd.DataFrame:
    """The margin waterfall of every closed deal from the raw tables, written independently of the SQL."""
    opp = latest(home, "opportunities")
    for c in ["list_amount", "amount"]:
        opp[c] = opp[c].astype(float)
    opp["close_date"] = pd.to_datetime(opp["close_date"])
    fx = latest(home, "fx_rates")
    fx["rate_date"] = pd.to_datetime(fx["rate_date"])
    rate = dict(zip(zip(fx["currency"], fx["rate_date"], strict=True), fx["usd_per_unit"], strict=True))

    def usd(amount, currency, day):
        rates = np.array(
            [1.0 if c == "USD" else rate[(c, d)] for c, d in zip(currency, pd.to_datetime(day), strict=True)]
        )
        return np.where(np.asarray(currency) == "USD", np.asarray(amount, float), times_rate(amount, rates))

    deals = opp[opp["is_closed"]].copy()
    deals["list_amount_usd"] = usd(deals["list_amount"], deals["currency"], deals["close_date"])
    deals["deal_amount_usd"] = usd(deals["amount"], deals["currency"], deals["close_date"])
    deals["net_bookings"] = np.where(deals["is_won"], deals["deal_amount_usd"], 0.0)

    def per_deal(table, date_col):
        df = latest(home, table)
        df["usd"] = usd(df["amount"].astype(float), df["currency"], df[date_col])
        return df.groupby("opportunity_id")["usd"].sum()

    deals = deals.set_index("opportunity_id")
    deals["invoiced_revenue"] = per_deal("invoices", "invoice_date").reindex(deals.index).fillna(0)
    deals["credits"] = per_deal("credit_notes", "credit_date").reindex(deals.index).fillna(0)
    deals["commissions"] = per_deal("commissions", "paid_date").reindex(deals.index).fillna(0)
    deals["net_revenue"] = deals["invoiced_revenue"] - deals["credits"]

    costs = latest(home, "product_costs")
    m = deals.reset_index()[["opportunity_id", "product_id", "close_date"]].merge(costs, on="product_id")
    valid_to = pd.to_datetime(m["valid_to"]).fillna(pd.Timestamp("2262-01-01"))
    m = m[(m["close_date"] >= pd.to_datetime(m["valid_from"])) & (m["close_date"] <= valid_to)]
    deals["cogs_rate"] = m.set_index("opportunity_id")["cogs_rate"].reindex(deals.index)
    deals["cogs"] = times_rate(deals["net_revenue"].round(2), deals["cogs_rate"].fillna(0))

    # effort in integer minute-cents: exact, rounded half up once per deal
    act = latest(home, "activities").merge(deals[["close_date"]], left_on="opportunity_id", right_index=True)
    act["day"] = act["started_at"].dt.normalize()
    act["month"] = act["started_at"].dt.to_period("M").dt.to_timestamp()
    rc = latest(home, "rep_costs")
    assert set(rc["currency"]) == {"USD"}, "this check assumes USD rep costs"
    rc["month"] = pd.to_datetime(rc["month"])
    rc["rate_cents"] = (rc["loaded_cost_per_hour"].astype(float) * 100).round().astype("int64")
    act = act.merge(rc[["rep_id", "month", "rate_cents"]], on=["rep_id", "month"], how="left")
    effort = act[act["day"] <= act["close_date"]].copy()
    effort["minute_cents"] = effort["duration_minutes"].fillna(0).astype("int64") * effort["rate_cents"]
    g = effort.groupby("opportunity_id")
    minute_cents = g["minute_cents"].sum().reindex(deals.index).fillna(0).astype("int64")
    deals["effort_cost"] = ((2 * minute_cents + 60) // 120) / 100
    deals["selling_hours"] = (g["duration_minutes"].sum() / 60).reindex(deals.index).fillna(0)
    deals["activity_count"] = g.size().reindex(deals.index).fillna(0)
    before = act[act["day"] < act["close_date"]]
    for p in contract.PRACTICE_ACTIVITY_TYPES:
        deals[f"{p}_count"] = (
            before[before["activity_type"] == p]
            .groupby("opportunity_id")
            .size()
            .reindex(deals.index)
            .fillna(0)
        )

    # cost-to-serve: each account-month to the won deals in service (12 months after the close month)
    cts = latest(home, "cost_to_serve")
    cts["month"] = pd.to_datetime(cts["month"])
    cts["usd"] = usd(cts["amount"].astype(float), cts["currency"], cts["month"])
    won = deals[deals["is_won"]].reset_index()[["opportunity_id", "account_id", "close_date", "net_bookings"]]
    won["close_month"] = won["close_date"].dt.to_period("M")
    s = cts.merge(won, on="account_id")
    offset = s["month"].dt.to_period("M").astype("int64") - s["close_month"].astype("int64")
    s = s[(offset >= 1) & (offset <= 12)].copy()
    s["share"] = s["net_bookings"] / s.groupby(["account_id", "month"])["net_bookings"].transform("sum")
    s["allocated"] = s["usd"] * s["share"]
    deals["allocated_cost_to_serve"] = r2(
        s.groupby("opportunity_id")["allocated"].sum().reindex(deals.index).fillna(0)
    )

    deals["list_amount"] = deals["list_amount_usd"]
    deals["deal_amount"] = deals["deal_amount_usd"]
    deals["discount_amount"] = deals["list_amount_usd"] - deals["deal_amount_usd"]
    deals["gross_margin"] = deals["net_revenue"] - deals["cogs"]
    deals["selling_cost"] = deals["effort_cost"] + deals["commissions"]
    deals["contribution_margin"] = (
        deals["gross_margin"] - deals["selling_cost"] - deals["allocated_cost_to_serve"]
    )
    deals["days_to_close"] = (deals["close_date"] - deals["created_at"].dt.normalize()).dt.days
    return deals


def test_deal_margin_matches_an_independent_pandas_computation_to_the_cent(built_home):
    expected = expected_deal_margin(built_home)
    mart = query(built_home, "select * from marts.fct_deal_margin").set_index("opportunity_id")
    assert len(mart) == len(expected) and set(mart.index) == set(expected.index)
    mart = mart.loc[expected.index]
    for col in MONEY:
        diff = (mart[col].astype(float) - expected[col].astype(float)).abs()
        assert diff.max() < 0.005, (
            f"{col}: {int((diff >= 0.005).sum())} deals differ, e.g.\n{diff.nlargest(3)}"
        )
    for col in ["selling_hours", "activity_count", "days_to_close"] + [
        f"{p}_count" for p in contract.PRACTICE_ACTIVITY_TYPES
    ]:
        np.testing.assert_allclose(
            mart[col].astype(float), expected[col].astype(float), atol=1e-9, err_msg=col
        )
    np.testing.assert_allclose(
        mart["cogs_rate"].astype(float), expected["cogs_rate"].astype(float), err_msg="cogs_rate"
    )
    # lost deals: no revenue, but they carry their selling cost
    lost = mart[~mart["is_won"]]
    assert (lost["net_revenue"] == 0).all() and (lost["selling_cost"] > 0).all()
    assert (lost["contribution_margin"] == -lost["selling_cost"]).all()


def test_mart_agrees_with_the_demo_bookkeeping(built_home, small_drop):
    book = json.loads((small_drop / "truth.json").read_text())["bookkeeping"]
    t = query(built_home, """
        select count(*) as n_closed, sum(case when is_won then 1 else 0 end) as n_won,
               sum(invoiced_revenue) as invoiced, sum(credits) as credits, sum(net_revenue) as net_revenue,
               sum(net_bookings) as bookings, sum(commissions) as commissions, sum(selling_hours) as hours,
               sum(effort_cost) as effort
        from marts.fct_deal_margin""").iloc[0]
    lines = query(
        built_home,
        "select (select count(*) from raw.invoices) + (select count(*) from raw.credit_notes) as n",
    ).n[0]
    assert t.n_closed == book["n_closed"] and t.n_won == book["n_won"]
    # the generator sums unrounded conversions; the mart converts each document to the cent:
    # at most half a cent per document apart
    tol = 0.005 * lines
    assert abs(float(t.invoiced) - book["invoiced_usd"]) <= tol
    assert abs(float(t.credits) - book["credits_usd"]) <= tol
    assert abs(float(t.net_revenue) - book["net_revenue_usd"]) <= tol
    assert abs(float(t.bookings) - book["bookings_usd"]) <= 0.005 * t.n_won
    assert abs(float(t.commissions) - book["commissions_usd"]) <= 0.005 * t.n_won
    assert abs(float(t.hours) - book["selling_hours_closed"]) < 1e-3
    assert abs(float(t.effort) - book["effort_cost_closed_usd"]) <= 0.005 * t.n_closed


def test_cost_to_serve_is_fully_accounted_for(built_home, small_drop):
    book = json.loads((small_drop / "truth.json").read_text())["bookkeeping"]
    r = query(built_home, """
        select sum(cost_to_serve) as total, sum(allocated_cost_to_serve) as allocated,
               sum(unallocated_cost_to_serve) as unallocated
        from intermediate.int_cost_to_serve_reconciliation""").iloc[0]
    assert abs(float(r.allocated) + float(r.unallocated) - float(r.total)) < 1e-6
    assert abs(float(r.total) - book["cost_to_serve_usd"]) <= 0.005 * book["rows"]["cost_to_serve"]


def test_marts_carry_no_personal_data(built_home):
    cols = query(
        built_home,
        "select table_name, column_name from information_schema.columns where table_schema = 'marts'",
    )
    pii = {c.name for t in contract.TABLES for c in t.columns if c.pii and c.name != "rep_name"}
    assert not pii & set(cols["column_name"]), pii & set(cols["column_name"])
    assert set(cols["table_name"]) >= {"fct_deal_margin", "fct_opportunities", "dim_accounts", "dim_reps",
                                       "dim_segments", "mart_segment_performance", "mart_rep_performance"}


def test_dbt_build_ran_every_unit_and_data_test(built_home):
    """`make test` runs dbt's unit tests (production builds exclude them: transform/assets.py)."""
    results = json.loads((dbt_target(built_home) / "run_results.json").read_text())["results"]
    kinds = pd.Series([r["unique_id"].split(".")[0] for r in results]).value_counts()
    assert kinds["unit_test"] >= 10 and kinds["test"] >= 250 and kinds["model"] >= 30, kinds.to_dict()
    failed = [r["unique_id"] for r in results if r["status"] not in ("success", "pass", "no-op")]
    assert not failed, failed
