"""Every mart's GX suites: clean marts pass; each planted defect fails the expectation it should,
with a message that names the expectation and the offending rows."""

from __future__ import annotations

import shutil

import duckdb
import pytest

from salesalign.quality.marts import MARTS
from salesalign.quality.validate import BLOCKING, validate_mart


def _validate(home, model: str, tamper: str = ""):
    warehouse = home / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        if tamper:
            con.execute(tamper)
        return validate_mart(con, model, home, build_docs=False)


@pytest.fixture
def marts_copy(small_marts_home, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(small_marts_home / "warehouse.duckdb", home / "warehouse.duckdb")
    return home


def test_clean_small_marts_pass_every_mart_suite(marts_copy):
    assert set(MARTS) == {
        "fct_deal_margin",
        "fct_opportunities",
        "dim_accounts",
        "dim_reps",
        "dim_segments",
        "mart_segment_performance",
        "mart_rep_performance",
    }
    for model in MARTS:
        report = _validate(marts_copy, model)
        assert report.passed, report.summary()
        assert not report.failures, [o.message(report.table) for o in report.failures]
        assert report.rows > 0, model
        assert len(report.outcomes) >= 9, model  # rows and totals suites both ran


# (mart, SQL planting the defect, expectation that must fail (blocking), unexpected rows, text in the sample)
CASES = [
    (
        "fct_opportunities",
        "UPDATE marts.fct_opportunities SET stage = 'won-ish' WHERE opportunity_id IN "
        "(SELECT opportunity_id FROM marts.fct_opportunities WHERE is_closed ORDER BY 1 LIMIT 2)",
        "expect_column_values_to_be_in_set(stage)",
        2,
        "stage=won-ish",
    ),
    (
        "fct_opportunities",
        "INSERT INTO marts.fct_opportunities "
        "(SELECT * FROM marts.fct_opportunities ORDER BY opportunity_id LIMIT 1)",
        "expect_column_values_to_be_between(_key_occurrences)",
        2,
        "opportunity_id=",
    ),
    (
        "dim_accounts",
        "UPDATE marts.dim_accounts SET is_customer = false WHERE account_id IN "
        "(SELECT account_id FROM marts.dim_accounts WHERE won_deals > 0 ORDER BY 1 LIMIT 3)",
        "expect_column_values_to_be_between(_customer_flag_contradicts_won_deals)",
        3,
        "account_id=",
    ),
    (
        "dim_reps",
        "UPDATE marts.dim_reps SET manager_id = rep_id "
        "WHERE rep_id = (SELECT min(rep_id) FROM marts.dim_reps)",
        "expect_column_values_to_be_between(_manages_self)",
        1,
        "rep_id=",
    ),
    (
        "dim_segments",
        "DELETE FROM marts.dim_segments WHERE segment_id = (SELECT min(segment_id) FROM marts.dim_segments)",
        "expect_column_values_to_be_between(account_segments_missing_from_dim_segments)",
        1,
        "",
    ),
    (
        "mart_segment_performance",
        "UPDATE marts.mart_segment_performance SET deals_won = deals_won + 1 "
        "WHERE segment_month_id = (SELECT min(segment_month_id) FROM marts.mart_segment_performance)",
        "expect_column_values_to_be_between(_deal_count_gap)",
        1,
        "segment_month_id=",
    ),
    (
        "mart_rep_performance",
        "UPDATE marts.mart_rep_performance SET contribution_margin = contribution_margin + 100 "
        "WHERE rep_month_id = (SELECT min(rep_month_id) FROM marts.mart_rep_performance)",
        "expect_column_values_to_be_between(_contribution_margin_gap_per_deal)",
        1,
        "rep_month_id=",
    ),
    (
        "mart_rep_performance",
        "DELETE FROM marts.mart_rep_performance "
        "WHERE rep_month_id = (SELECT min(rep_month_id) FROM marts.mart_rep_performance)",
        "expect_column_values_to_be_between(deals_to_fct_deal_margin)",
        1,
        "",
    ),
]


@pytest.mark.parametrize(
    ("model", "tamper", "expectation", "unexpected", "sample"),
    CASES,
    ids=[f"{c[0]}-{c[2].split('(')[1].rstrip(')')}" for c in CASES],
)
def test_planted_mart_defect_fails_its_expectation(
    marts_copy, model, tamper, expectation, unexpected, sample
):
    report = _validate(marts_copy, model, tamper)
    assert not report.passed
    failed = {o.name: o for o in report.by_outcome(BLOCKING)}
    assert expectation in failed, sorted(failed)
    outcome = failed[expectation]
    assert outcome.unexpected_count == unexpected, outcome
    message = outcome.message(report.table)
    assert f"marts.{model}" in message and expectation in message and outcome.reason in message
    if sample:
        assert sample in message, message
