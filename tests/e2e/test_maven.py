"""The whole pipeline on the real Maven CRM export (`../shared/data/maven_crm`), as a user would run it.

The data is copied into a temporary folder (it is never committed). The export has no activities,
costs or invoices: the run must land what it has, keep the deals whose account is blank (with the
unknown account), and write status rows instead of estimates where inputs are missing.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fixtures.cli import salesalign_run
from fixtures.warehouse import fetchall

pytestmark = pytest.mark.slow
MAVEN = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "maven_crm"


@pytest.fixture(scope="module")
def maven_run(tmp_path_factory):
    if not MAVEN.is_dir():
        pytest.skip(f"the Maven CRM data set is not at {MAVEN} (../shared/data/maven_crm from the repo root)")
    root = tmp_path_factory.mktemp("maven")
    drop = Path(shutil.copytree(MAVEN, root / "drop"))
    home = root / "home"
    return home, salesalign_run(home, "--source", "files", "--path", str(drop), "--profile", "maven")


def test_maven_export_lands_with_its_quirks_handled(maven_run):
    home, _ = maven_run
    counts = dict(fetchall(home, "SELECT table_name, rows FROM raw._loads"))
    assert counts == {"accounts": 85, "products": 7, "reps": 35, "opportunities": 8800, "fx_rates": 457}
    for table in ("activities", "invoices", "product_costs", "rep_costs", "commissions", "cost_to_serve"):
        assert fetchall(home, f"SELECT count(*) FROM raw.{table}") == [(0,)]
    # GTXPro (pipeline) is GTX Pro (products.csv); misspellings corrected
    assert fetchall(home, "SELECT count(*) FROM raw.opportunities WHERE product_id = 'GTX Pro'") == [(1480,)]
    assert fetchall(
        home, "SELECT count(*) FROM raw.opportunities o ANTI JOIN raw.products p USING (product_id)"
    ) == [(0,)]
    assert fetchall(home, "SELECT count(*) FROM raw.accounts WHERE industry = 'technolgy'") == [(0,)]
    # blank accounts (open deals only) land as NULL: the account is optional, nothing is quarantined
    assert fetchall(
        home,
        """SELECT count(*), count(DISTINCT is_closed), bool_and(NOT is_closed) FROM raw.opportunities
           WHERE account_id IS NULL""",
    ) == [(1425, 1, True)]
    assert fetchall(
        home,
        """SELECT count(*) FROM raw_quarantine.quarantined_rows
           WHERE table_name = 'opportunities' AND column_name = 'account_id'""",
    ) == [(0,)]


def test_maven_run_succeeds(maven_run):
    _, run = maven_run
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "SUCCESS" in run.stdout


def test_maven_marts_carry_bookings_and_flag_missing_cost_lines(maven_run):
    home, _ = maven_run
    # every closed deal (none of them lacks an account): 4,238 won, 2,473 lost; bookings are real
    closed = fetchall(
        home, "SELECT outcome, count(*), sum(net_bookings) FROM marts.fct_deal_margin GROUP BY 1 ORDER BY 1"
    )
    assert closed == [("lost", 2473, 0), ("won", 4238, 10005534)]
    # fct_opportunities: all 8,800 exported deals; the 1,425 open ones with a blank account carry the
    # unknown account (no account id, no segment), and the reconciliation counts them
    assert fetchall(
        home,
        """SELECT stage, count(*), count(*) FILTER (NOT has_known_account),
                  count(*) FILTER (NOT has_known_account AND coalesce(account_id, segment_id) IS NOT NULL)
           FROM marts.fct_opportunities GROUP BY 1 ORDER BY 1""",
    ) == [
        ("closed_lost", 2473, 0, 0),
        ("closed_won", 4238, 0, 0),
        ("prospecting", 500, 337, 0),
        ("qualification", 1589, 1088, 0),
    ]
    assert fetchall(
        home,
        """SELECT account_status, opportunities, open_opportunities, closed_opportunities
           FROM intermediate.int_account_reconciliation ORDER BY 1""",
    ) == [("account not delivered", 0, 0, 0), ("known", 7375, 664, 6711), ("no account", 1425, 1425, 0)]
    assert fetchall(home, "SELECT count(*) FROM marts.fct_deal_margin WHERE NOT has_known_account") == [(0,)]
    # every deal names its sales agent and product, and both were delivered: no unknown rep or product
    for parent in ("rep", "product"):
        assert fetchall(
            home,
            f"""SELECT {parent}_status, opportunities FROM intermediate.int_{parent}_reconciliation
                ORDER BY 1""",
        ) == [("known", 8800), (f"no {parent}", 0), (f"{parent} not delivered", 0)]
    assert fetchall(
        home,
        "SELECT count(*) FILTER (NOT (has_known_rep AND has_known_product)) FROM marts.fct_opportunities",
    ) == [(0,)]
    # no finance or activity tables delivered: the mart says so and leaves those lines null, not 0
    assert fetchall(
        home,
        """SELECT DISTINCT cost_basis, has_cost_data, has_invoice_data, has_activity_data, has_invoices
           FROM marts.fct_deal_margin""",
    ) == [("bookings only: no finance data", False, False, False, None)]
    assert fetchall(
        home,
        """SELECT count(invoiced_revenue), count(credits), count(net_revenue), count(cogs),
                  count(gross_margin), count(selling_hours), count(effort_cost), count(commissions),
                  count(selling_cost),
                  count(allocated_cost_to_serve), count(contribution_margin), count(has_proof_of_concept)
           FROM marts.fct_deal_margin""",
    ) == [(0,) * 12]
    assert fetchall(home, "SELECT count(list_amount), count(deal_amount) FROM marts.fct_deal_margin") == [
        (6711, 6711)
    ]
    for mart in ("mart_segment_performance", "mart_rep_performance"):
        assert fetchall(
            home,
            f"""SELECT DISTINCT cost_basis, has_cost_data, net_revenue IS NULL, contribution_margin IS NULL,
                       selling_hours IS NULL FROM marts.{mart}""",
        ) == [("bookings only: no finance data", False, True, True, True)]
        assert fetchall(
            home, f"SELECT sum(deals_won), sum(deals_lost), sum(net_bookings) FROM marts.{mart}"
        ) == [(4238, 2473, 10005534)]
    # 30 agents closed deals (5 of the 35 in sales_teams.csv have none)
    assert fetchall(home, "SELECT count(DISTINCT rep_id) FROM marts.mart_rep_performance") == [(30,)]


def test_maven_analytics_compute_what_the_data_supports(maven_run):
    home, _ = maven_run
    # rep variance on winning: a model, not a status row
    win = fetchall(
        home,
        """SELECT n_deals, n_reps, status, icc BETWEEN 0 AND 1, icc_ci_low <= icc AND icc <= icc_ci_high
           FROM analytics.rep_variance_summary WHERE outcome = 'win'""",
    )
    assert win == [(6711, 30, "ok", True, True)]
    assert fetchall(
        home,
        """SELECT count(*), count(adjusted_mean), min(n_deals) > 0 FROM analytics.rep_performance
           WHERE outcome = 'win'""",
    ) == [(30, 30, True)]
    # win rates per segment and channel are computed; the ICP ranks on net bookings, labelled
    assert fetchall(
        home, "SELECT sum(n_deals), sum(n_won), count(win_rate) FROM analytics.roi_by_segment"
    ) == [(6711, 4238, 36)]
    segs = fetchall(
        home,
        """SELECT count(*), sum(n_deals), sum(n_won), count(win_rate), count(DISTINCT basis),
                  min(basis LIKE 'net bookings per closed deal (cost basis%')
           FROM analytics.icp_segments""",
    )
    assert segs == [(36, 6711, 4238, 36, 1, True)]
    fit = fetchall(
        home,
        """SELECT count(*), count(fit_score), min(status), min(basis LIKE 'net bookings per closed deal%'),
                  min(model LIKE '%net bookings per closed deal%')
           FROM analytics.icp_account_fit""",
    )
    assert fit == [(85, 85, "ok", True, True)]


def test_maven_status_rows_for_what_cannot_be_computed(maven_run):
    home, _ = maven_run
    # practice effects: no activities, so no estimates, only status rows saying why
    assert fetchall(
        home, "SELECT count(*) FROM analytics.practice_effects WHERE estimate IS NOT NULL"
    ) == [(0,)]
    statuses = fetchall(home, "SELECT DISTINCT status FROM analytics.practice_effects")
    assert len(statuses) == 1 and "no causal assumptions declared for this source" in statuses[0][0]
    # contribution-margin models and cost-based ROI: status rows naming the cost basis
    no_cost = "not estimable: contribution margin needs cost data the source did not deliver"
    for table, where in (
        ("rep_variance_summary", "outcome = 'contribution_margin'"),
        ("rep_performance", "outcome = 'contribution_margin'"),
        ("roi_by_segment", "true"),
        ("roi_by_channel", "true"),
        ("roi_by_rep", "true"),
    ):
        rows = fetchall(home, f"SELECT DISTINCT status FROM analytics.{table} WHERE {where}")
        assert len(rows) == 1 and rows[0][0].startswith(no_cost), (table, rows)
        assert "bookings only: no finance data" in rows[0][0]
    assert fetchall(
        home,
        """SELECT count(contribution_margin), count(cm_per_selling_hour), count(cm_per_selling_dollar)
           FROM analytics.roi_by_segment""",
    ) == [(0, 0, 0)]
    for table in ("roi_by_practice", "practice_alignment"):
        assert fetchall(home, f"SELECT count(*) FROM analytics.{table} WHERE status = 'ok'") == [(0,)]
        assert fetchall(home, f"SELECT count(*) FROM analytics.{table} WHERE status IS NULL") == [(0,)]
    assert fetchall(
        home,
        "SELECT count(*), min(status LIKE 'not estimable: no selling activities%') "
        "FROM analytics.strategy_alignment",
    )[0][1]
    # no hire dates in the export (none assumed): the ramp is a status row
    ramp = fetchall(home, "SELECT kind, status FROM analytics.rep_ramp")
    assert len(ramp) == 1 and ramp[0][0] == "status" and "none of the 30 reps has a hire date" in ramp[0][1]


def test_maven_brief_says_what_the_export_delivered_and_assumed(maven_run):
    home, _ = maven_run
    html = (home / "reports" / "alignment-brief.html").read_text().replace("&#34;", '"').replace("&#39;", "'")
    assert 'id="delivered"' in html and "Source <code>files+maven" in html
    for missing in ("crm.activities", "finance.invoices", "finance.rep_costs"):
        assert f"<td>{missing}</td><td>not delivered</td>" in html
    n = fetchall(home, "SELECT count(*) FROM raw.opportunities")[0][0]
    assert f"<td>crm.opportunities</td><td>{n:,}</td>" in html
    assert "<li><code>opportunities.quantity</code>: one unit per deal:" in html
