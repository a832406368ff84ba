"""A deal whose account is missing keeps its row in the marts with the unknown account (Kimball's
unknown member), flagged and counted, and the rest of the marts is what it would have been.

The tiny demo is landed twice, as generated and with some lost and open deals losing their account
(NULL) or pointing at an account that was never delivered; both go through the landing quality gate
and a real `dbt build` (every dbt test passing). Only lost and open deals are touched, so bookings,
won deals per account and the cost-to-serve allocation stay the same and every other row can be
compared exactly.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest
from fixtures.warehouse import fetchall, land_check_and_build, land_drop, new_home, query, run_dbt, warehouse

from salesalign.analytics.decision_data import read_decision_inputs
from salesalign.quality.quarantine import TABLE as QUARANTINE

NOT_DELIVERED = "ACC-NOT-DELIVERED"
# deals changed, by (outcome, new account): how many of the first (by opportunity_id) of that outcome
CHANGES = {("lost", None): 3, ("lost", NOT_DELIVERED): 2, ("open", None): 2, ("open", NOT_DELIVERED): 1}


@pytest.fixture(scope="module")
def homes(tiny_drop, tiny_marts_home, tmp_path_factory):
    """(baseline home, home with unknown accounts, {opportunity_id: new account_id}, checks' report)."""
    baseline = tiny_marts_home  # the tiny demo as generated, built once per session

    drop = tmp_path_factory.mktemp("unknown-accounts-drop")
    for f in tiny_drop.iterdir():
        (drop / f.name).write_bytes(f.read_bytes())
    opportunities = pd.read_parquet(tiny_drop / "opportunities.parquet")
    outcome = pd.Series(
        np.where(~opportunities.is_closed, "open", np.where(opportunities.is_won, "won", "lost"))
    )
    changed: dict[str, str | None] = {}
    for (kind, account), n in CHANGES.items():
        candidates = sorted(set(opportunities.opportunity_id[outcome == kind]) - set(changed))[:n]
        assert len(candidates) == n, (kind, n)
        changed.update(dict.fromkeys(candidates, account))
    with duckdb.connect() as con:
        con.register("changes", pd.DataFrame({"id": list(changed), "account": list(changed.values())}))
        con.execute(
            f"""COPY (SELECT o.* REPLACE (CASE WHEN c.id IS NULL THEN o.account_id ELSE c.account END
                                          AS account_id)
                      FROM read_parquet('{tiny_drop / "opportunities.parquet"}') o
                      LEFT JOIN changes c ON c.id = o.opportunity_id
                      ORDER BY o.opportunity_id)
                TO '{drop / "opportunities.parquet"}' (FORMAT parquet)"""
        )
    home = tmp_path_factory.mktemp("unknown-accounts")
    report = land_check_and_build(home, drop)
    return baseline, home, changed, report


def test_missing_accounts_pass_the_landing_gate_and_are_not_quarantined(homes):
    _, home, changed, report = homes
    # the orphan reference is recorded as a warning (3 rows), nothing blocks, nothing is quarantined
    assert report.passed
    failures = {f.name: (f.outcome, f.unexpected_count, f.quarantined) for f in report.failures}
    orphans = {name: v for name, v in failures.items() if "account_id" in name}
    assert list(orphans.values()) == [("warning", 3, 0)], failures
    assert query(home, f"SELECT count(*) AS n FROM {QUARANTINE}")["n"][0] == 0
    assert query(home, "SELECT count(*) AS n FROM raw.opportunities WHERE account_id IS NULL")["n"][0] == 5


def test_every_deal_reaches_the_facts_with_the_unknown_account(homes):
    baseline, home, changed, _ = homes
    facts = query(home, "SELECT * FROM marts.fct_opportunities ORDER BY opportunity_id")
    assert len(facts) == len(query(baseline, "SELECT opportunity_id FROM marts.fct_opportunities"))
    unknown = facts[~facts.has_known_account]
    assert sorted(unknown.opportunity_id) == sorted(changed)
    # account_id as the source gave it: null, or the id of the account that was not delivered
    given = {
        k: (None if pd.isna(v) else v)
        for k, v in zip(unknown.opportunity_id, unknown.account_id, strict=True)
    }
    assert given == changed
    assert unknown.segment_id.isna().all()
    assert unknown.outcome.value_counts().to_dict() == {"lost": 5, "open": 3}
    deals = query(home, "SELECT opportunity_id, has_known_account, segment_id FROM marts.fct_deal_margin")
    lost = {k for k, v in changed.items() if k in set(facts.opportunity_id[facts.outcome == "lost"])}
    assert set(deals.opportunity_id[~deals.has_known_account]) == lost
    assert deals.segment_id[~deals.has_known_account].isna().all()


def test_the_reconciliation_counts_the_unknown_account(homes):
    baseline, home, _, _ = homes
    rows = query(
        home,
        """SELECT account_status, opportunities, open_opportunities, closed_opportunities
           FROM intermediate.int_account_reconciliation ORDER BY 1""",
    )
    total, closed = query(
        baseline, "SELECT count(*), count(*) FILTER (is_closed) FROM marts.fct_opportunities"
    ).iloc[0]
    assert rows.values.tolist() == [
        ["account not delivered", 3, 1, 2],
        ["known", total - 8, total - closed - 3, closed - 5],
        ["no account", 5, 2, 3],
    ]
    assert query(
        baseline,
        "SELECT account_status, opportunities FROM intermediate.int_account_reconciliation ORDER BY 1",
    ).values.tolist() == [["account not delivered", 0], ["known", total], ["no account", 0]]


def _without_load_times(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns=["loaded_through"], errors="ignore").reset_index(drop=True)


def test_the_rest_of_the_marts_is_unchanged(homes):
    baseline, home, changed, _ = homes
    # the deals that kept their account, every column; the changed ones but for account and segment
    for fact in ("fct_opportunities", "fct_deal_margin"):
        before, after = (
            _without_load_times(query(h, f"SELECT * FROM marts.{fact} ORDER BY opportunity_id"))
            for h in (baseline, home)
        )
        assert before.has_known_account.all()
        kept = ~after.opportunity_id.isin(list(changed))
        pd.testing.assert_frame_equal(before[kept].reset_index(drop=True), after[kept].reset_index(drop=True))
        rest = [c for c in before.columns if c not in ("account_id", "has_known_account", "segment_id")]
        pd.testing.assert_frame_equal(
            before.loc[~kept, rest].reset_index(drop=True), after.loc[~kept, rest].reset_index(drop=True)
        )
    for mart, key in (
        ("dim_accounts", "account_id"),
        ("dim_segments", "segment_id"),
        ("dim_reps", "rep_id"),
        ("mart_rep_performance", "rep_month_id"),
    ):
        before, after = (
            _without_load_times(query(h, f"SELECT * FROM marts.{mart} ORDER BY {key}"))
            for h in (baseline, home)
        )
        pd.testing.assert_frame_equal(before, after, obj=mart)
    # the segment mart: the unknown account's lost deals are a group of their own, and it adds up
    sql = """SELECT coalesce(segment_id, '(unknown account)') AS segment, sum(deals_closed) AS deals,
                    sum(deals_won) AS won, sum(net_bookings) AS bookings
             FROM marts.mart_segment_performance GROUP BY 1 ORDER BY 1"""
    before, after = (query(h, sql).set_index("segment") for h in (baseline, home))
    assert after.loc["(unknown account)"].tolist() == [5, 0, 0]
    assert after.drop(index="(unknown account)").won.equals(before.won)
    assert after.drop(index="(unknown account)").bookings.equals(before.bookings)
    assert after.deals.sum() == before.deals.sum()


def test_the_analyses_read_every_closed_deal_with_no_firmographics_for_the_unknown_account(homes):
    _, home, changed, _ = homes
    with duckdb.connect(str(warehouse(home)), read_only=True) as con:
        deals = read_decision_inputs(con).deals
        closed = con.execute("SELECT count(*) FROM marts.fct_deal_margin").fetchone()[0]
    assert len(deals) == closed
    unknown = deals[deals.opportunity_id.isin(list(changed))]
    assert len(unknown) == 5
    assert unknown[["segment_id", "industry", "size_band", "region", "employee_count"]].isna().all().all()
    assert deals.drop(unknown.index).industry.notna().all()


def test_an_account_delivered_later_turns_its_deals_known_incrementally(homes, tiny_drop, tmp_path):
    _, built, changed, _ = homes
    home = new_home(tmp_path / "home", built)
    later = tmp_path / "later"
    (later / "accounts").mkdir(parents=True)
    accounts = tiny_drop / "accounts.parquet"
    with duckdb.connect() as con:
        [(account,)] = con.execute(f"SELECT min(account_id) FROM read_parquet('{accounts}')").fetchall()
        # the missing account arrives, with the attributes of an existing one
        con.execute(
            f"""COPY (SELECT * REPLACE ('{NOT_DELIVERED}' AS account_id) FROM read_parquet('{accounts}')
                      WHERE account_id = '{account}')
                TO '{later / "accounts" / "later.parquet"}' (FORMAT parquet)"""
        )
    land_drop(home, later)
    run_dbt(home, "build")  # incremental facts: the deals of the account that arrived are reprocessed
    [(segment,)] = fetchall(home, f"SELECT segment_id FROM marts.dim_accounts WHERE account_id = '{account}'")
    sql = f"""SELECT opportunity_id, has_known_account, segment_id FROM marts.{{fact}}
              WHERE account_id = '{NOT_DELIVERED}' ORDER BY 1"""
    opportunities = query(home, sql.format(fact="fct_opportunities"))
    arrived = sorted(k for k, v in changed.items() if v == NOT_DELIVERED)
    assert opportunities.opportunity_id.tolist() == arrived
    assert opportunities.has_known_account.all()
    assert set(opportunities.segment_id) == {segment}
    assert query(home, sql.format(fact="fct_deal_margin")).has_known_account.tolist() == [True, True]
    statuses = query(
        home, "SELECT account_status, opportunities FROM intermediate.int_account_reconciliation ORDER BY 1"
    )
    assert dict(statuses.values.tolist())["account not delivered"] == 0
    assert dict(statuses.values.tolist())["no account"] == 5
    # the incremental facts equal a full refresh
    full = new_home(tmp_path / "full", home)
    run_dbt(full, "run", "--full-refresh", "--select", "fct_opportunities", "fct_deal_margin")
    for fact in ("fct_opportunities", "fct_deal_margin"):
        incremental, refreshed = (
            _without_load_times(query(h, f"SELECT * FROM marts.{fact} ORDER BY opportunity_id"))
            for h in (home, full)
        )
        pd.testing.assert_frame_equal(incremental, refreshed, obj=fact)
