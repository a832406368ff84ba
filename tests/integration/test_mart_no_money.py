"""A deal without money (no amount, no list amount) needs no currency: it lands, reaches both facts
with its amounts and currency NULL, and nothing is invented for it. A deal with an amount but no
currency cannot be converted: it is quarantined with the reason, never converted as if it were in
the reporting currency.

The tiny demo's opportunities are changed in a copy of its drop: two open deals and one lost deal
lose their amounts and currency; one open deal keeps its amount and loses only its currency. The
drop goes through the landing quality gate and a real `dbt build` (every dbt test passing).
"""

from __future__ import annotations

import pandas as pd
import pytest
from fixtures.warehouse import land_check_and_build, query

from salesalign.quality.quarantine import TABLE as QUARANTINE

MONEY = ("quantity", "list_amount", "amount", "discount", "currency")


@pytest.fixture(scope="module")
def built(tiny_drop, tmp_path_factory):
    """(home, ids of the deals without money, id of the deal with an amount but no currency, report)."""
    drop = tmp_path_factory.mktemp("no-money-drop")
    for f in tiny_drop.iterdir():
        (drop / f.name).write_bytes(f.read_bytes())
    opps = pd.read_parquet(tiny_drop / "opportunities.parquet").sort_values("opportunity_id")
    open_ids = list(opps.opportunity_id[~opps.is_closed])
    lost_ids = list(opps.opportunity_id[opps.is_closed & ~opps.is_won])
    no_money, no_currency = [*open_ids[:2], lost_ids[0]], open_ids[2]
    opps.loc[opps.opportunity_id.isin(no_money), list(MONEY)] = None
    opps.loc[opps.opportunity_id == no_currency, "currency"] = None
    opps.to_parquet(drop / "opportunities.parquet", index=False)
    home = tmp_path_factory.mktemp("no-money")
    report = land_check_and_build(home, drop)
    return home, no_money, no_currency, report


def test_a_deal_without_money_needs_no_currency_and_gets_none(built):
    home, no_money, _, report = built
    assert report.passed
    facts = query(home, "SELECT * FROM marts.fct_opportunities ORDER BY opportunity_id").set_index(
        "opportunity_id"
    )
    rows = facts.loc[no_money]
    assert rows.deal_currency.isna().all() and rows.deal_amount.isna().all() and rows.list_amount.isna().all()
    assert facts.drop(index=no_money).deal_currency.notna().all()
    lost = query(home, f"SELECT * FROM marts.fct_deal_margin WHERE opportunity_id = '{no_money[2]}'")
    assert len(lost) == 1 and pd.isna(lost.deal_amount[0]) and lost.net_bookings[0] == 0


def test_an_amount_without_its_currency_is_quarantined_with_the_reason(built):
    home, _, no_currency, report = built
    held = query(home, f"SELECT * FROM {QUARANTINE} WHERE table_name = 'opportunities'")
    assert list(held.key_value) == [no_currency]
    assert held.reason[0] == "a deal with an amount must name its currency"
    reached = query(home, "SELECT opportunity_id FROM marts.fct_opportunities").opportunity_id
    assert no_currency not in set(reached)
    failures = {f.name: (f.outcome, f.unexpected_count, f.quarantined) for f in report.failures}
    assert [v for name, v in failures.items() if "_amounts_have_currency" in name] == [("quarantined", 1, 1)]
