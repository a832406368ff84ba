"""The marts' invariants live in one place, the dbt tests beside each mart (`dbt build` runs them):
clean marts pass every one, and each defect planted in a built mart fails the dbt test of the
invariant it breaks (named in dbt's results and output), with the number of offending rows."""

from __future__ import annotations

import json

import duckdb
import pytest
from fixtures.warehouse import dbt_target, new_home, run_dbt, warehouse

from salesalign.transform.dbt import DbtError

# The mart invariants that have a dbt test of their own (beyond the columns' generic tests), each
# with the dbt test that checks it.
MOVED = {  # dbt test -> the invariant it checks
    "not_empty_dim_accounts_": "dim_accounts: not empty",
    "dim_accounts_has_every_staged_account": "dim_accounts: every staged account once",
    "dim_accounts_is_customer_iff_won_deals": "dim_accounts: is_customer <=> won_deals > 0",
    "not_null_dim_accounts_first_won_date": "dim_accounts: a customer has a first won date",
    "accepted_range_dim_accounts_employee_count__0": "dim_accounts: employee_count >= 0",
    "accepted_range_dim_accounts_won_deals__0": "dim_accounts: won_deals >= 0",
    "not_null_dim_accounts_account_name": "dim_accounts: account_name present (warn)",
    "assert_won_deals_add_up_to_won_opportunities":
        "dim_accounts: won_deals add up to won opportunities (warn)",
    "not_empty_dim_reps_": "dim_reps: not empty (warn: an export may name no reps)",
    "dim_reps_has_every_staged_rep": "dim_reps: every staged rep once",
    "dim_reps_no_rep_manages_themselves": "dim_reps: no one manages themselves",
    "accepted_range_dim_reps_quota_usd__0": "dim_reps: quota_usd >= 0",
    "accepted_range_dim_reps_years_experience__60__0": "dim_reps: years_experience in [0, 60] (warn)",
    "accepted_range_dim_reps_tenure_days__0": "dim_reps: tenure_days >= 0 (warn)",
    "not_empty_dim_segments_": "dim_segments: not empty",
    "accepted_range_dim_segments_account_count__1": "dim_segments: account_count >= 1",
    "assert_segments_count_every_account": "dim_segments: account_count adds up to dim_accounts",
    "not_empty_fct_deal_margin_": "fct_deal_margin: not empty",
    "fct_deal_margin_has_every_closed_deal_once": "fct_deal_margin: only closed deals (none extra)",
    "assert_lost_deals_have_no_revenue": "fct_deal_margin: a lost deal has no net revenue",
    "assert_invoiced_revenue_near_bookings": "fct_deal_margin: invoiced revenue within 5% of bookings (warn)",
    "accepted_range_fct_deal_margin_list_amount__0": "fct_deal_margin: list_amount >= 0",
    "accepted_range_fct_deal_margin_net_bookings__0": "fct_deal_margin: net_bookings >= 0",
    "accepted_range_fct_deal_margin_invoiced_revenue__0": "fct_deal_margin: invoiced_revenue >= 0",
    "accepted_range_fct_deal_margin_credits__0": "fct_deal_margin: credits >= 0",
    "accepted_range_fct_deal_margin_cogs__0": "fct_deal_margin: cogs >= 0",
    "accepted_range_fct_deal_margin_effort_cost__0": "fct_deal_margin: effort_cost >= 0",
    "accepted_range_fct_deal_margin_commissions__0": "fct_deal_margin: commissions >= 0",
    "accepted_range_fct_deal_margin_allocated_cost_to_serve__0":
        "fct_deal_margin: allocated_cost_to_serve >= 0",
    "accepted_range_fct_deal_margin_cogs_rate__1__0": "fct_deal_margin: cogs_rate in [0, 1]",
    "accepted_range_fct_deal_margin_discount_rate__True__1__0": "fct_deal_margin: discount_rate in [0, 1)",
    "accepted_range_fct_deal_margin_days_to_close__0": "fct_deal_margin: days_to_close >= 0",
    "accepted_range_fct_deal_margin_net_revenue__0": "fct_deal_margin: net_revenue >= 0 (warn)",
    "not_empty_fct_opportunities_": "fct_opportunities: not empty",
    "fct_opportunities_has_every_staged_opportunity": "fct_opportunities: every staged opportunity once",
    "fct_opportunities_closed_are_fct_deal_margin_deals":
        "fct_opportunities: closed ones are fct_deal_margin's deals",
    "fct_opportunities_won_is_closed": "fct_opportunities: won => closed",
    "fct_opportunities_stage_agrees_with_outcome": "fct_opportunities: stage agrees with outcome",
    "not_null_fct_opportunities_close_date": "fct_opportunities: a closed deal has a close date",
    "accepted_range_fct_opportunities_days_to_close__0": "fct_opportunities: days_to_close >= 0",
    "accepted_range_fct_opportunities_list_amount__0": "fct_opportunities: list_amount >= 0",
    "accepted_range_fct_opportunities_deal_amount__0": "fct_opportunities: deal_amount >= 0",
    "accepted_range_fct_opportunities_discount_rate__True__1__0":
        "fct_opportunities: discount_rate in [0, 1)",
    "accepted_range_fct_opportunities_stage_change_count__0": "fct_opportunities: stage_change_count >= 0",
    "fct_opportunities_deal_amount_within_list": "fct_opportunities: deal_amount <= list_amount (warn)",
    "accepted_range_fct_opportunities_quantity__1": "fct_opportunities: quantity >= 1 (warn)",
    **{
        test.format(mart=mart): f"{mart}: {what}"
        for mart in ("mart_segment_performance", "mart_rep_performance")
        for test, what in {
            "not_empty_{mart}_": "not empty",
            "accepted_range_{mart}_deals_closed__1": "deals_closed >= 1",
            "{mart}_deals_closed_are_won_plus_lost": "deals_closed = won + lost",
            "accepted_range_{mart}_win_rate__1__0": "win_rate in [0, 1]",
            "{mart}_win_rate_is_won_over_closed": "win_rate = won / closed",
            "{mart}_contribution_margin_adds_up": "contribution identity to the cent per deal",
            "{mart}_sums_back_to_deal_margin": "sums back to fct_deal_margin (deals, money, hours)",
            "accepted_range_{mart}_net_bookings__0": "net_bookings >= 0",
            "accepted_range_{mart}_selling_hours__0": "selling_hours >= 0",
            "accepted_range_{mart}_selling_cost__0": "selling_cost >= 0",
            "accepted_range_{mart}_allocated_cost_to_serve__0": "allocated_cost_to_serve >= 0",
            "accepted_range_{mart}_net_revenue__0": "net_revenue >= 0 (warn)",
        }.items()
    },
}


def _results(home) -> dict[str, dict]:
    """The tests of the last dbt invocation on `home`: test name -> {status, failures}."""
    run = json.loads((dbt_target(home) / "run_results.json").read_text())
    return {
        r["unique_id"].split(".")[2]: {"status": r["status"], "failures": r["failures"]}
        for r in run["results"]
        if r["unique_id"].startswith("test.")
    }


def test_clean_small_marts_pass_every_mart_invariant(small_marts_home):
    results = _results(small_marts_home)  # the fixture's `dbt build`
    missing = sorted(name for name in MOVED if name not in results)
    assert missing == []
    assert {name: results[name]["status"] for name in MOVED} == dict.fromkeys(MOVED, "pass")


# (defect, SQL planting it in the built marts, {dbt test that must fail: offending rows, None = some})
DEFECTS = [
    (
        "stage outside the vocabulary",
        "UPDATE marts.fct_opportunities SET stage = 'won-ish' WHERE opportunity_id IN "
        "(SELECT opportunity_id FROM marts.fct_opportunities WHERE is_won ORDER BY 1 LIMIT 2)",
        {
            "accepted_values_fct_opportunities_stage___stages_": 1,
            "fct_opportunities_stage_agrees_with_outcome": 2,
        },
    ),
    (
        "an opportunity twice",
        "INSERT INTO marts.fct_opportunities (SELECT * FROM marts.fct_opportunities "
        "WHERE NOT is_closed ORDER BY opportunity_id DESC LIMIT 1)",
        {"unique_fct_opportunities_opportunity_id": 1, "fct_opportunities_has_every_staged_opportunity": 1},
    ),
    (
        "won but not closed",
        "UPDATE marts.fct_opportunities SET is_closed = false WHERE opportunity_id = "
        "(SELECT max(opportunity_id) FROM marts.fct_opportunities WHERE is_won)",
        {"fct_opportunities_won_is_closed": 1, "fct_opportunities_closed_are_fct_deal_margin_deals": 1},
    ),
    (
        "customer flag contradicts won deals",
        "UPDATE marts.dim_accounts SET is_customer = false WHERE account_id IN "
        "(SELECT account_id FROM marts.dim_accounts WHERE won_deals > 0 ORDER BY 1 LIMIT 3)",
        {"dim_accounts_is_customer_iff_won_deals": 3},
    ),
    (
        "a rep manages themselves",
        "UPDATE marts.dim_reps SET manager_id = rep_id "
        "WHERE rep_id = (SELECT min(rep_id) FROM marts.dim_reps)",
        {"dim_reps_no_rep_manages_themselves": 1},
    ),
    (
        "a segment missing",
        "DELETE FROM marts.dim_segments WHERE segment_id = (SELECT min(segment_id) FROM marts.dim_segments)",
        {
            "assert_segments_count_every_account": 1,
            "relationships_dim_accounts_segment_id__segment_id__ref_dim_segments_": None,
        },
    ),
    (
        "deal counts do not add up",
        "UPDATE marts.mart_segment_performance SET deals_won = deals_won + 1 "
        "WHERE segment_month_id = (SELECT min(segment_month_id) FROM marts.mart_segment_performance)",
        {
            "mart_segment_performance_deals_closed_are_won_plus_lost": 1,
            "mart_segment_performance_win_rate_is_won_over_closed": 1,
        },
    ),
    (
        "contribution off by 100",
        "UPDATE marts.mart_rep_performance SET contribution_margin = contribution_margin + 100 "
        "WHERE rep_month_id = (SELECT min(rep_month_id) FROM marts.mart_rep_performance)",
        # the rep mart's contribution no longer sums to the fact's: one row of the reconciliation
        {
            "mart_rep_performance_contribution_margin_adds_up": 1,
            "mart_rep_performance_sums_back_to_deal_margin": 1,
        },
    ),
    (
        "discount rate of 100%",
        "UPDATE marts.fct_deal_margin SET discount_rate = 1 "
        "WHERE opportunity_id = (SELECT min(opportunity_id) FROM marts.fct_deal_margin)",
        {"accepted_range_fct_deal_margin_discount_rate__True__1__0": 1},
    ),
]
# A failed warn-severity invariant is reported and does not fail the build.
WARNED = (
    "UPDATE marts.fct_opportunities SET quantity = 0 WHERE opportunity_id = "
    "(SELECT min(opportunity_id) FROM marts.fct_opportunities WHERE NOT is_closed)",
    "accepted_range_fct_opportunities_quantity__1",
)


@pytest.fixture(scope="module")
def defective_marts(small_marts_home, tmp_path_factory):
    """The small marts with every defect of DEFECTS planted at once (they touch different rows), then
    `dbt test` on the marts (as `dbt build` runs them after the models): the tests' results."""
    home = new_home(tmp_path_factory.mktemp("defective-marts"), small_marts_home)
    with duckdb.connect(str(warehouse(home))) as con:
        for _, tamper, _ in DEFECTS:
            con.execute(tamper)
        con.execute(WARNED[0])
    with pytest.raises(DbtError, match="Failure in test"):
        run_dbt(home, "test", "--select", "marts")
    return _results(home)


@pytest.mark.parametrize(("defect", "tamper", "failing"), DEFECTS, ids=[d[0] for d in DEFECTS])
def test_planted_mart_defect_fails_the_test_of_its_invariant(defective_marts, defect, tamper, failing):
    results = defective_marts
    for name, rows in failing.items():
        assert results[name]["status"] == "fail", (defect, name, results.get(name))
        if rows is None:
            assert results[name]["failures"] > 0, (defect, name)
        else:
            assert results[name]["failures"] == rows, (defect, name, results[name])


def test_only_the_planted_defects_fail_and_warnings_do_not(defective_marts):
    results = defective_marts
    planted = {name for _, _, failing in DEFECTS for name in failing}
    failed = {name for name, r in results.items() if r["status"] == "fail"}
    assert planted <= failed
    # the planted defects also break what depends on the rows they touch, and nothing else
    knock_on = {
        "relationships_fct_opportunities_segment_id__segment_id__ref_dim_segments_",
        "relationships_fct_deal_margin_segment_id__segment_id__ref_dim_segments_",
        "relationships_mart_segment_performance_segment_id__segment_id__ref_dim_segments_",
        # a duplicated or reopened opportunity no longer matches the account reconciliation's counts
        "assert_unknown_accounts_reconcile",
        "assert_unknown_reps_and_products_reconcile",
    }
    assert failed - planted <= knock_on, sorted(failed - planted)
    assert results[WARNED[1]] == {"status": "warn", "failures": 1}


def test_an_empty_mart_fails_not_empty(small_marts_home, tmp_path):
    home = new_home(tmp_path / "home", small_marts_home)
    with duckdb.connect(str(warehouse(home))) as con:
        con.execute("DELETE FROM marts.dim_segments")
        con.execute("DELETE FROM marts.dim_reps")
    with pytest.raises(DbtError, match="Failure in test not_empty_dim_segments_"):
        run_dbt(home, "test", "--select", "dim_segments", "dim_reps")
    results = _results(home)
    assert results["not_empty_dim_segments_"]["status"] == "fail"
    # an export may name no reps (every deal has the unknown rep): an empty dim_reps is a warning,
    # but reps that were staged and are missing from it fail
    assert results["not_empty_dim_reps_"]["status"] == "warn"
    assert results["dim_reps_has_every_staged_rep"]["status"] == "fail"
