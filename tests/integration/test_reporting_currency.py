"""The reporting currency end to end: the marts, the exports and the brief in EUR.

One module fixture takes a copy of the session's small demo warehouse (built in USD), rebuilds it
with the pipeline's `dbt build` in EUR (incrementally, as `salesalign run --currency EUR` on an
existing home does; tests/unit/test_settings.py shows the option reaching these vars), then runs
every analysis, the BI exports and the brief as assets with `WarehouseResource(reporting_currency="EUR")`.

Every money column is checked against an oracle computed here, independently of the dbt models,
from the documents the USD build read (deals, invoices, credit notes, commissions, cost-to-serve,
activity costs: each in its own currency) and the FX rates (USD per unit of a currency): each
document converted at its own date, rounded to the cent, then added up per deal. The same oracle
reproduces the USD build, so it tests the conversion, not a copy of it.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest
from fixtures.warehouse import analytics_resources, new_home, warehouse

from orchestration import analytics
from orchestration.publish import build_publish_assets
from orchestration.resources import WarehouseResource
from orchestration.transform import PRODUCTION_BUILD
from salesalign.transform.dbt import run_dbt

CENT = Decimal("0.01")
RATE_DIGITS = Decimal("1e-10")  # the marts multiply money by a rate held as DECIMAL(14,10)
WATERFALL = (
    "list_amount", "discount_amount", "deal_amount", "net_bookings", "invoiced_revenue", "credits",
    "net_revenue", "cogs", "gross_margin", "effort_cost", "commissions", "selling_cost",
    "allocated_cost_to_serve", "contribution_margin",
)
PERFORMANCE = (
    "net_bookings", "net_revenue", "gross_margin", "selling_cost", "allocated_cost_to_serve",
    "contribution_margin",
)
# Every money column of the marts this module checks; the test below fails when a mart gains one.
CHECKED = {
    "fct_deal_margin": set(WATERFALL),
    "fct_opportunities": {"list_amount", "deal_amount"},
    "mart_rep_performance": set(PERFORMANCE),
    "mart_segment_performance": set(PERFORMANCE),
}
USD_BY_CONTRACT = {"dim_reps": {"quota_usd"}}  # the CRM sets quotas in USD: kept and named so


def rows(home: Path, sql: str) -> pd.DataFrame:
    """`sql` on `home`'s warehouse with DECIMAL values kept exact (Python Decimals)."""
    with duckdb.connect(str(warehouse(home)), read_only=True) as con:
        cursor = con.execute(sql)
        names = [d[0] for d in cursor.description]
        return pd.DataFrame(cursor.fetchall(), columns=names)


def cents(value) -> Decimal:
    return Decimal(value).quantize(CENT, ROUND_HALF_UP)


class Converter:
    """Amounts in any currency of the FX table into `currency` on a day, rounded to the cent."""

    def __init__(self, usd_home: Path, currency: str):
        fx = rows(usd_home, "SELECT rate_date, currency, usd_per_unit FROM staging.stg_finance__fx_rates")
        target = {day: usd for day, cur, usd in fx.itertuples(index=False) if cur == currency}
        self.currency = currency
        self.rates = {(cur, day): usd / target[day] for day, cur, usd in fx.itertuples(index=False)
                      if day in target}

    def rate(self, currency: str, day: date) -> float | None:
        return self.rates.get((currency, day))

    def __call__(self, amount: Decimal | None, currency: str, day: date) -> Decimal | None:
        if amount is None or currency == self.currency:
            return amount
        rate = self.rate(currency, day)
        return None if rate is None else cents(amount * Decimal(rate).quantize(RATE_DIGITS, ROUND_HALF_UP))


def _per_deal(usd_home: Path, convert: Converter, table: str, day: str) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = defaultdict(Decimal)
    documents = rows(usd_home, f"SELECT opportunity_id, amount, currency, {day} FROM staging.{table}")
    for deal, amount, currency, on in documents.itertuples(index=False):
        totals[deal] += convert(amount, currency, on)
    return totals


def _effort(usd_home: Path, convert: Converter) -> dict[str, Decimal]:
    """Minutes x the rep's hourly cost of the activity's month, converted, rounded once per deal."""
    exact: dict[str, Decimal] = defaultdict(Decimal)  # rep costs already in the reporting currency
    converted: dict[str, list[float]] = defaultdict(list)
    activities = rows(usd_home, """
        SELECT a.opportunity_id, a.activity_month, a.cost_minute_money, r.currency
        FROM intermediate.int_activities_costed AS a
        JOIN staging.stg_finance__rep_costs AS r ON r.rep_id = a.rep_id AND r.month = a.activity_month
        WHERE a.counts_as_effort""")
    for deal, month, minute_money, currency in activities.itertuples(index=False):
        if currency == convert.currency:
            exact[deal] += minute_money
        else:
            converted[deal].append(float(minute_money) * convert.rate(currency, month))
    out = {}
    for deal in exact.keys() | converted.keys():
        minute_cents = (float(exact[deal] * 100) + math.fsum(converted[deal]) * 100) / 60
        out[deal] = Decimal(math.floor(abs(minute_cents) + 0.5)).copy_sign(Decimal(minute_cents)) / 100
    return out


def _cost_to_serve(usd_home: Path, convert: Converter, won: pd.DataFrame) -> dict[str, Decimal]:
    """Each account-month's cost, converted, shared among the account's won deals in service (the 12
    months after the close month) by their converted bookings."""
    in_service = defaultdict(list)
    for deal in won.itertuples():
        in_service[deal.account_id].append(deal)
    shares: dict[str, float] = defaultdict(float)
    costs = rows(usd_home, "SELECT account_id, month, amount, currency "
                           "FROM staging.stg_finance__cost_to_serve")
    for account, month, amount, currency in costs.itertuples(index=False):
        cost = convert(amount, currency, month)
        deals = [
            d for d in in_service[account]
            if 0 < (month.year - d.close_date.year) * 12 + month.month - d.close_date.month <= 12
        ]
        bookings = sum(d.bookings for d in deals)
        for d in deals if bookings > 0 else []:
            shares[d.opportunity_id] += float(cost * d.bookings) / float(bookings)
    # rounded as the mart rounds: to 10 decimals, then to the cent
    return {deal: cents(Decimal(v).quantize(RATE_DIGITS, ROUND_HALF_UP)) for deal, v in shares.items()}


def expected_deal_margin(usd_home: Path, currency: str) -> pd.DataFrame:
    """The money columns of fct_deal_margin in `currency`, from the documents of the USD build."""
    convert = Converter(usd_home, currency)
    deals = rows(usd_home, """
        SELECT o.opportunity_id, o.account_id, o.currency, o.close_date, o.list_amount, o.amount, o.is_won,
               m.cogs_rate
        FROM staging.stg_crm__opportunities AS o
        JOIN marts.fct_deal_margin AS m USING (opportunity_id)""")
    deals["bookings"] = [
        convert(a, c, d) for a, c, d in zip(deals.amount, deals.currency, deals.close_date, strict=True)
    ]
    invoiced = _per_deal(usd_home, convert, "stg_finance__invoices", "invoice_date")
    credited = _per_deal(usd_home, convert, "stg_finance__credit_notes", "credit_date")
    commissions = _per_deal(usd_home, convert, "stg_finance__commissions", "paid_date")
    effort = _effort(usd_home, convert)
    served = _cost_to_serve(usd_home, convert, deals[deals.is_won])
    zero = Decimal(0)
    out = {}
    for d in deals.itertuples():
        deal = d.opportunity_id
        list_amount = convert(d.list_amount, d.currency, d.close_date)
        net_revenue = invoiced.get(deal, zero) - credited.get(deal, zero)
        cogs = cents(net_revenue * Decimal(d.cogs_rate).quantize(RATE_DIGITS, ROUND_HALF_UP))
        selling_cost = effort.get(deal, zero) + commissions.get(deal, zero)
        cost_to_serve = served.get(deal, zero)
        out[deal] = {
            "list_amount": list_amount, "discount_amount": list_amount - d.bookings,
            "deal_amount": d.bookings, "net_bookings": d.bookings if d.is_won else zero,
            "invoiced_revenue": invoiced.get(deal, zero), "credits": credited.get(deal, zero),
            "net_revenue": net_revenue, "cogs": cogs, "gross_margin": net_revenue - cogs,
            "effort_cost": effort.get(deal, zero), "commissions": commissions.get(deal, zero),
            "selling_cost": selling_cost, "allocated_cost_to_serve": cost_to_serve,
            "contribution_margin": net_revenue - cogs - selling_cost - cost_to_serve,
        }
    return pd.DataFrame.from_dict(out, orient="index").sort_index()


def _mismatches(expected: pd.DataFrame, actual: pd.DataFrame, columns) -> dict[str, int]:
    """Column -> how many rows differ (a null equals a null); rows matched on the index."""
    assert sorted(actual.index) == sorted(expected.index)
    actual = actual.loc[expected.index]
    counts = {
        c: sum(a != e for a, e in zip(actual[c], expected[c], strict=True) if not (a is None and e is None))
        for c in columns
    }
    return {c: n for c, n in counts.items() if n}


@pytest.fixture(scope="module")
def eur_home(small_marts_home, tmp_path_factory) -> Path:
    home = new_home(tmp_path_factory.mktemp("eur-home"), small_marts_home)
    # a build with its data tests: it raises unless the EUR marts pass every one of them
    run_dbt(PRODUCTION_BUILD, warehouse_path=warehouse(home), reporting_currency="EUR")
    resources = {
        **analytics_resources(home), "warehouse": WarehouseResource(home=str(home), reporting_currency="EUR"),
    }
    bi_outputs, brief, _ = build_publish_assets([k for a in analytics.assets for k in a.keys])
    assert dg.materialize([*analytics.assets, bi_outputs, brief], resources=resources).success
    return home


@pytest.mark.parametrize("currency", ["USD", "EUR"])
def test_every_money_column_of_the_deal_margin_mart_is_its_documents_converted(
    currency, small_marts_home, request
):
    """Per deal, to the cent: the USD build reproduces the oracle (so the oracle is right), and the
    EUR build is the same documents converted to EUR at their own dates."""
    built = small_marts_home if currency == "USD" else request.getfixturevalue("eur_home")
    expected = expected_deal_margin(small_marts_home, currency)
    actual = rows(built, f"SELECT opportunity_id, reporting_currency, {', '.join(WATERFALL)} "
                         "FROM marts.fct_deal_margin").set_index("opportunity_id")
    assert set(actual.reporting_currency) == {currency}
    assert len(expected) > 4000 and _mismatches(expected, actual, WATERFALL) == {}
    if currency == "EUR":  # EUR is not USD relabelled: most deals were converted at a rate far from 1
        usd = rows(small_marts_home, "SELECT opportunity_id, net_revenue, contribution_margin "
                                     "FROM marts.fct_deal_margin").set_index("opportunity_id")
        changed = (usd.loc[actual.index, "contribution_margin"] != actual.contribution_margin).mean()
        assert changed > 0.95
        assert actual.net_revenue.sum() != usd.net_revenue.sum()


def test_opportunity_amounts_are_converted_at_the_close_date(small_marts_home, eur_home):
    convert = Converter(small_marts_home, "EUR")
    source = rows(small_marts_home, "SELECT opportunity_id, currency, close_date, list_amount, amount "
                                    "FROM staging.stg_crm__opportunities").set_index("opportunity_id")
    expected = pd.DataFrame({
        column: [convert(*v) for v in zip(source[amount], source.currency, source.close_date, strict=True)]
        for column, amount in (("list_amount", "list_amount"), ("deal_amount", "amount"))
    }, index=source.index)
    actual = rows(eur_home, "SELECT opportunity_id, reporting_currency, list_amount, deal_amount "
                            "FROM marts.fct_opportunities").set_index("opportunity_id")
    assert set(actual.reporting_currency) == {"EUR"}
    assert actual.deal_amount.notna().sum() > 4500  # open deals too, where a rate exists
    assert _mismatches(expected, actual, ["list_amount", "deal_amount"]) == {}


@pytest.mark.parametrize("mart, by", [("mart_rep_performance", "rep_id"),
                                      ("mart_segment_performance", "segment_id")])
def test_performance_marts_add_up_the_converted_deals(mart, by, eur_home):
    deals = rows(eur_home, f"SELECT {by}, close_month, {', '.join(PERFORMANCE)} FROM marts.fct_deal_margin")
    expected = deals.groupby([by, "close_month"])[list(PERFORMANCE)].sum()
    actual = rows(eur_home, f"SELECT {by}, close_month, {', '.join(PERFORMANCE)} FROM marts.{mart}")
    assert _mismatches(expected, actual.set_index([by, "close_month"]), PERFORMANCE) == {}


def test_every_money_column_of_the_marts_follows_the_currency_but_the_usd_quota(small_marts_home, eur_home):
    money = rows(eur_home, "SELECT table_name, column_name FROM information_schema.columns "
                           "WHERE table_schema = 'marts' AND data_type LIKE 'DECIMAL%'")
    found = money.groupby("table_name").column_name.agg(set).to_dict()
    assert found == {**CHECKED, **USD_BY_CONTRACT}  # a new money column must be added to a check here
    sql = "SELECT rep_id, quota_usd FROM marts.dim_reps ORDER BY rep_id"
    quotas = rows(eur_home, sql)
    assert quotas.equals(rows(small_marts_home, sql)) and quotas.quota_usd.sum() > 0


def test_exports_carry_the_marts_currency(eur_home):
    manifest = json.loads((eur_home / "exports" / "manifest.json").read_text())
    assert manifest["reporting_currency"] == "EUR"
    for table in ("fct_deal_margin", "fct_opportunities"):
        exported = pd.read_parquet(eur_home / "exports" / "marts" / f"{table}.parquet")
        assert set(exported.reporting_currency) == {"EUR"}
    exported = pd.read_parquet(eur_home / "exports" / "marts" / "fct_deal_margin.parquet")
    in_warehouse = rows(eur_home, "SELECT sum(contribution_margin) AS cm FROM marts.fct_deal_margin").cm[0]
    assert exported.contribution_margin.sum() == in_warehouse


def test_the_brief_shows_money_in_euros(eur_home):
    html = (eur_home / "reports" / "alignment-brief.html").read_text()
    assert "Not available in this run" not in html  # every section drew its money
    assert "$" not in html
    assert "Money is in EUR (€), the reporting currency of the marts" in " ".join(html.split())
    assert html.count("€") > 100
    assert html.count(", in EUR</text>") == 6  # the axis label of every money chart
