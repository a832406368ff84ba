"""Each analysis states what it needs from the data and checks it; one failure never blocks the rest.

A corpus of degraded worlds (tests/fixtures/degraded.py: the small demo's dbt-built marts changed by
SQL in a copy) runs every registered analysis and the brief: per world, the status of every analytics
table is named here ("ok" only where the data supports it, "not estimable: ..." with the expected
reason otherwise) and the brief has exactly the sections the data supports. An analysis that raises
writes "failed: ..." rows, logs its traceback, and the analyses after it and the brief still run.
"""

from __future__ import annotations

import dataclasses
import re

import dagster as dg
import duckdb
import pandas as pd
import pytest
from fixtures.degraded import WORLDS, build_world, run_all
from fixtures.warehouse import analytics_resources, new_home, query

from orchestration.analytics import build_asset
from orchestration.publish import build_publish_assets
from salesalign.analytics import registry
from salesalign.analytics.preconditions import table_status
from salesalign.publish.brief import write_brief

OK = "ok"
ONE_REP = "not estimable: 1 rep on the closed deals (REP-0000) (needs at least 5 reps"
LEAKAGE = (
    "not estimable: the rep is known only on won deals: the 2,047 lost deals all have REP-UNASSIGNED, the "
    "2,555 won deals have 39 (outcome leakage)"
)
ONE_SEGMENT = "not estimable: 1 segment on the closed deals (software|mid|na) (needs at least 2 segments"
ONE_DAY = "not estimable: every closed deal has the same close date (2025-06-30)"
NO_ACTIVITIES = "not estimable: the source delivered no activities, so which deals had this practice"
NO_HOURS = "not estimable: no selling activities: the source delivered none"
NO_COST = "not estimable: contribution margin needs cost data the source did not deliver (cost basis: partial"
NO_SEGMENT_EFFECTS = "not estimable: no per-segment effects for this practice"
MOVE_LOSES = "moving effort as the strategy intends would lose contribution"
NO_FINANCE = (
    "not estimable: contribution margin needs cost data the source did not deliver (cost basis: bookings "
    "only: no finance data"
)
NO_MARGIN_OUTCOME = "not estimable: contribution_margin is unknown on every closed deal"
SHARES_ONLY = "effort shares only: " + NO_FINANCE
NO_MARGIN_TO_MOVE = "not estimable: contribution margin is known on 0 of "
NO_CONFOUNDER = (
    "not estimable: confounders causal.yml declares for this practice are unknown on every closed deal: "
    "log_list_amount"
)
NO_REPS = "not estimable: 0 reps on the closed deals (needs at least 5 reps"
NO_SEGMENTS = "not estimable: 0 segments on the closed deals (needs at least 2 segments"

# world -> table -> the start of its status (tables not named: "ok")
EXPECTED: dict[str, dict[str, str]] = {
    "one_rep": dict.fromkeys(("rep_performance", "rep_variance_summary", "rep_ramp"), ONE_REP),
    "reps_known_only_on_won_deals": {
        **dict.fromkeys(
            (
                "practice_effects",  # causal.yml's confounders describe the owner rep
                "practice_effects_by_segment",
                "effect_diagnostics",
                "rep_performance",
                "rep_variance_summary",
                "rep_ramp",
                "roi_by_rep",
                "roi_by_practice",
            ),
            LEAKAGE,
        ),
        "practice_alignment": NO_SEGMENT_EFFECTS,
    },
    "one_segment": {
        **dict.fromkeys(("icp_segments", "icp_account_fit", "icp_validation"), ONE_SEGMENT),
        "effort_reallocation": MOVE_LOSES,  # computed: every deal is mid-market, nothing gains
    },
    "segments_all_won": {},
    "all_closes_on_one_day": {"icp_validation": ONE_DAY},
    "no_activities": {
        **dict.fromkeys(
            ("practice_effects", "practice_effects_by_segment", "effect_diagnostics", "roi_by_practice"),
            NO_ACTIVITIES,
        ),
        **dict.fromkeys(("roi_by_segment", "roi_by_channel", "roi_by_rep"), NO_COST),
        **dict.fromkeys(("strategy_alignment", "effort_reallocation"), NO_HOURS),
        "practice_alignment": NO_SEGMENT_EFFECTS,
    },
    # activities but no finance: bookings, hours and outcomes; nothing that needs revenue or costs
    "no_finance": {
        **dict.fromkeys(("roi_by_segment", "roi_by_channel", "roi_by_rep"), NO_FINANCE),
        "roi_by_practice": NO_MARGIN_OUTCOME,
        "strategy_alignment": SHARES_ONLY,
        "practice_alignment": NO_SEGMENT_EFFECTS,
        "effort_reallocation": NO_MARGIN_TO_MOVE,
    },
    # no money at all: as without finance, the ICP ranks on the win rate, and the practice effects lack
    # the deal size causal.yml adjusts for
    "no_amounts": {
        **dict.fromkeys(
            ("practice_effects", "practice_effects_by_segment", "effect_diagnostics", "roi_by_practice"),
            NO_CONFOUNDER,
        ),
        **dict.fromkeys(("roi_by_segment", "roi_by_channel", "roi_by_rep"), NO_FINANCE),
        "strategy_alignment": SHARES_ONLY,
        "practice_alignment": NO_SEGMENT_EFFECTS,
        "effort_reallocation": NO_MARGIN_TO_MOVE,
    },
    "opportunities_only": {
        **dict.fromkeys(
            ("practice_effects", "practice_effects_by_segment", "effect_diagnostics", "roi_by_practice"),
            NO_ACTIVITIES,
        ),
        **dict.fromkeys(("rep_performance", "rep_variance_summary", "rep_ramp"), NO_REPS),
        **dict.fromkeys(("icp_segments", "icp_account_fit", "icp_validation"), NO_SEGMENTS),
        **dict.fromkeys(("roi_by_segment", "roi_by_channel", "roi_by_rep"), NO_FINANCE),
        **dict.fromkeys(("strategy_alignment", "effort_reallocation"), NO_HOURS),
        "practice_alignment": NO_SEGMENT_EFFECTS,
    },
    "owner_unknown_on_some_deals": {},
    "leads_with_open_outcomes": {  # the funnel's tables are ok: it counts deals, open ones censored
        **dict.fromkeys(
            ("practice_effects", "practice_effects_by_segment", "effect_diagnostics", "roi_by_practice"),
            NO_CONFOUNDER,
        ),
        **dict.fromkeys(("roi_by_segment", "roi_by_channel", "roi_by_rep"), NO_FINANCE),
        "strategy_alignment": SHARES_ONLY,
        "practice_alignment": NO_SEGMENT_EFFECTS,
        "effort_reallocation": NO_MARGIN_TO_MOVE,
    },
}
SECTIONS = ("practices", "icp", "roi", "reps", "alignment", "reallocation", "funnel")
# world -> the brief sections the data supports
SUPPORTED = {
    "one_rep": {"practices", "icp", "roi", "alignment", "reallocation", "funnel"},
    "reps_known_only_on_won_deals": {"icp", "roi", "alignment", "reallocation", "funnel"},
    "one_segment": {"practices", "roi", "reps", "alignment", "funnel"},
    "segments_all_won": set(SECTIONS),
    "all_closes_on_one_day": set(SECTIONS),
    "no_activities": {"icp", "reps", "funnel"},  # reps on the win rate: no contribution margin
    "no_finance": {"practices", "icp", "reps", "funnel"},
    "no_amounts": {"icp", "reps", "funnel"},
    "opportunities_only": {"funnel"},  # counts of deals by lead source and month need nothing else
    "owner_unknown_on_some_deals": set(SECTIONS),
    "leads_with_open_outcomes": {"icp", "reps", "funnel"},
}


@pytest.fixture(scope="module")
def worlds(small_marts_home, tmp_path_factory):
    """Every degraded world with every analysis run and the brief written: name -> (home, runs, brief)."""
    tmp = tmp_path_factory.mktemp("degraded")
    out = {}
    for name in WORLDS:
        home = build_world(name, small_marts_home, tmp)
        runs = run_all(home)
        with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
            brief = write_brief(con, home, f"world-{name}")
        out[name] = home, runs, brief
    return out


def test_the_corpus_covers_every_world():
    assert set(EXPECTED) == set(SUPPORTED) == set(WORLDS)


@pytest.mark.parametrize("world", list(WORLDS))
def test_every_analytics_table_has_the_status_the_data_supports(worlds, world):
    home, runs, _ = worlds[world]
    assert not any(r.failed for r in runs.values()), {n: r.error for n, r in runs.items() if r.failed}
    got = {name: table_status(query(home, f"select * from analytics.{name}")) for name in registry.TABLES}
    for name, status in got.items():
        expected = EXPECTED[world].get(name, OK)
        assert status.startswith(expected), (world, name, status)
        if status != OK:
            # a table without numbers says so on every row: no stray "ok" row beside the reason
            statuses = query(home, f"select status from analytics.{name}").status
            assert (statuses != OK).all() and statuses.notna().all(), (world, name)
    # what the runner reports is what the warehouse holds
    assert {t: s for r in runs.values() for t, s in r.statuses.items()} == got


@pytest.mark.parametrize("world", list(WORLDS))
def test_the_brief_renders_the_sections_the_data_supports_and_the_coverage(worlds, world):
    home, _, brief = worlds[world]
    shown = {s.anchor for s in brief.sections if s.ok}
    assert shown == SUPPORTED[world], (world, {s.anchor: s.status[:120] for s in brief.sections})
    html = (home / "reports" / "alignment-brief.html").read_text()
    assert 'id="coverage"' in html and not re.search(r"\bnan\b", html, re.IGNORECASE)
    not_ok = [c for c in brief.coverage if not c.ok]
    assert len(brief.coverage) == len(registry.TABLES)
    assert f"{len(registry.TABLES) - len(not_ok)} of {len(registry.TABLES)} analytics tables" in html
    for c in not_ok:  # every table without numbers is listed with its reason
        assert c.status.split(" (needs")[0][:60] in html, (world, c.table)


def test_one_rep_is_not_a_variance_at_the_boundary(worlds):
    home, _, _ = worlds["one_rep"]
    summary = query(home, "select * from analytics.rep_variance_summary")
    assert list(summary.outcome) == ["win", "contribution_margin"]
    assert summary.icc.isna().all() and summary.boundary.isna().all()
    assert summary.period_start.notna().all()  # status rows keep the period they describe


def test_leaked_rep_gives_no_icc(worlds):
    home, _, _ = worlds["reps_known_only_on_won_deals"]
    summary = query(home, "select icc, status from analytics.rep_variance_summary")
    assert summary.icc.isna().all() and summary.status.str.startswith(LEAKAGE).all()
    ranked = query(home, "select count(*) as n from analytics.rep_performance where raw_rank is not null")
    assert ranked.n[0] == 0  # no rep ranked on raw win rates of 1.0


def test_leaked_rep_gives_no_funnel_rates_by_rep_and_keeps_its_counts(worlds):
    home, _, _ = worlds["reps_known_only_on_won_deals"]
    conversion = query(home, "select * from analytics.funnel_conversion")
    by_rep = conversion[conversion.dimension == "rep"]
    assert by_rep.status.str.startswith(LEAKAGE).all() and by_rep.conversion_180d.isna().all()
    assert by_rep.opportunities.sum() == 5000  # the counts stay: they are facts, not rates
    assert (conversion[conversion.dimension.isin(["all", "lead_source"])].status == OK).all()


def test_separated_segments_are_left_out_of_the_win_model_and_said_so(worlds, small_marts_home):
    home, _, _ = worlds["segments_all_won"]
    summary = query(home, "select * from analytics.rep_variance_summary").set_index("outcome")
    win = summary.loc["win"]
    all_won = query(
        home,
        "select count(*) as n from marts.fct_deal_margin where segment_id in (select segment_id from "
        "marts.fct_deal_margin group by 1 having bool_and(is_won))",
    ).n[0]
    assert all_won == 866
    assert win.n_deals == 4602 - all_won and 0 < win.icc < 1 and win.icc_ci_low <= win.icc <= win.icc_ci_high
    assert win.notes.startswith("left out of the win model: 866 deals of 20 strata where every deal was won")
    assert "segment_id=healthcare|small|emea (80 deals, all won)" in win.notes
    assert pd_isna(summary.loc["contribution_margin"].notes)  # the linear model needs no such step
    perf = query(home, "select notes from analytics.rep_performance where outcome = 'win'")
    assert perf.notes.str.startswith("left out of the win model").all()


def pd_isna(v) -> bool:
    return v is None or v != v


def _boom(inputs):
    """An analysis function with a programming error."""
    return {"rep_performance": 1 / 0}


def test_a_failing_analysis_is_written_as_failed_and_blocks_nothing(small_marts_home, tmp_path):
    home = new_home(tmp_path / "home", small_marts_home)
    broken = dataclasses.replace(registry.analysis("rep_variance"), function=f"{__name__}:_boom")
    assets = [build_asset(broken if a.name == "rep_variance" else a) for a in registry.ANALYSES]
    keys = [k for a in assets for k in a.keys]
    _, brief, _ = build_publish_assets(keys)
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([*assets, brief], resources=analytics_resources(home), instance=instance)
    assert result.success  # the downstream analyses and the brief ran
    for table in ("rep_performance", "rep_variance_summary"):
        statuses = query(home, f"select status from analytics.{table}").status
        assert (statuses == "failed: ZeroDivisionError: division by zero").all(), table
    # roi_of_effort reads rep_performance: its own numbers stand, the mix-adjusted columns are empty
    by_rep = query(home, "select * from analytics.roi_by_rep")
    assert (by_rep.status == OK).all() and by_rep.adjusted_cm_per_deal.isna().all()
    meta = {
        m.asset_key.path[-1]: m.metadata
        for e in result.get_asset_materialization_events()
        for m in [e.event_specific_data.materialization]
    }
    assert meta["rep_performance"]["analysis_failed"].value is True
    assert meta["roi_by_rep"]["analysis_failed"].value is False
    logs = [r.user_message for r in instance.all_logs(result.run_id) if r.user_message]
    failed = [m for m in logs if "analysis rep_variance failed" in m]
    assert failed and "Traceback" in failed[0] and "ZeroDivisionError" in failed[0] and "_boom" in failed[0]
    html = (home / "reports" / "alignment-brief.html").read_text()
    assert "failed: ZeroDivisionError: division by zero" in html and 'id="coverage"' in html
    coverage = meta["alignment_brief"]["coverage"].value
    assert "| rep_variance_summary | failed: ZeroDivisionError: division by zero |" in coverage


def test_money_says_its_basis_in_the_brief(worlds):
    """Without the deals' full cost the ICP ranks on net bookings: the brief names them so and does not
    call them contribution margin; with full costs it does."""
    home, _, brief = worlds["no_activities"]
    icp = next(s for s in brief.sections if s.anchor == "icp")
    drawn = icp.words + icp.figure + icp.table
    assert "<th>net bookings per closed deal</th>" in drawn and "<th>net bookings</th>" in drawn
    assert "Ranked on net bookings per closed deal (cost basis" in drawn
    assert "CM per selling hour" not in drawn and "<th>contribution margin" not in drawn
    assert "per selling hour" not in drawn.replace("no contribution margin or selling hours", "")
    html = (home / "reports" / "alignment-brief.html").read_text()
    assert "did not deliver the full cost of the deals (cost basis:" in html
    assert "Amounts are contribution margin" not in html

    home, _, brief = worlds["segments_all_won"]
    icp = next(s for s in brief.sections if s.anchor == "icp")
    assert "<th>CM per selling hour</th>" in icp.table and "net bookings" not in icp.table
    assert "Amounts are contribution margin" in (home / "reports" / "alignment-brief.html").read_text()


def test_without_money_the_icp_ranks_on_the_win_rate_and_says_so(worlds):
    """No amounts and no finance: the ladder's last rung. The ICP's value columns count won deals over
    closed deals (the win rate, equal to its own win_rate column), and the brief shows percentages
    labelled as the win rate, never an amount."""
    home, _, brief = worlds["no_amounts"]
    seg = query(home, "select * from analytics.icp_segments")
    rung = "won deals per closed deal (no contribution margin and no won amounts"
    assert seg.basis.str.startswith(rung).all()
    assert (seg.cm_per_selling_hour - seg.win_rate).abs().max() < 1e-12
    won = query(home, "select count(*) filter (is_won) as n from marts.fct_deal_margin").n[0]
    assert seg.contribution_margin.sum() == won
    icp = next(s for s in brief.sections if s.anchor == "icp")
    assert "<th>won deals per closed deal</th>" in icp.table and "$" not in icp.table
    # the rep models adjust only for what the source has: deal size is unknown on every deal
    summary = query(home, "select * from analytics.rep_variance_summary where outcome = 'win'")
    unadjusted = "(not adjusted for log_list_amount: one value or unknown on every deal)"
    assert summary.adjusted_for[0].endswith(unadjusted)
    reps = next(s for s in brief.sections if s.anchor == "reps")
    assert "mix-adjusted win rate" in reps.figure and "contribution margin per deal" not in reps.words


@pytest.mark.parametrize("world", ["no_finance", "opportunities_only"])
def test_unknown_money_is_never_summed_to_zero(worlds, world):
    """Without contribution margin the alignment keeps its measured effort shares and leaves every
    margin column NULL (a sum of unknowns is not 0); the unknown rep and account are a group of their
    own in the ROI tables, never dropped."""
    home, _, _ = worlds[world]
    money = ", ".join(
        f"count({c}) as {c}" for c in ("contribution_margin", "recent_period_cm", "realised_contribution")
    )
    counts = query(home, f"select {money} from analytics.strategy_alignment").iloc[0]
    assert (counts == 0).all(), counts
    n = query(home, "select count(*) as n from marts.fct_deal_margin").n[0]
    for table in ("roi_by_segment", "roi_by_channel", "roi_by_rep"):
        assert query(home, f"select sum(n_deals) as n from analytics.{table}").n[0] == n, table
    if world == "opportunities_only":
        segments = query(home, "select segment_id from analytics.roi_by_segment").segment_id
        assert list(segments) == ["(unknown account)"]
        assert list(query(home, "select rep_id from analytics.roi_by_rep").rep_id) == ["(unknown rep)"]


def test_deals_without_a_known_owner_are_left_out_of_the_rep_models_and_said_so(worlds):
    home, _, _ = worlds["owner_unknown_on_some_deals"]
    unowned = query(home, "select count(*) as n from marts.fct_deal_margin where rep_id is null").n[0]
    assert 300 < unowned < 620  # about one deal in ten of 4,602
    summary = query(home, "select * from analytics.rep_variance_summary").set_index("outcome")
    said = f"left out: {unowned:,} deals whose owner the source does not know"
    assert summary.notes.str.startswith(said).all()
    assert summary.loc["contribution_margin"].n_deals == 4602 - unowned
    by_rep = query(home, "select * from analytics.roi_by_rep").set_index("rep_id")
    assert by_rep.n_deals.sum() == 4602 and by_rep.loc["(unknown rep)"].n_deals == unowned
    # the unknown owner is a group of deals, not a rep: it has no mix-adjusted effect
    assert pd.isna(by_rep.loc["(unknown rep)"].adjusted_cm_per_deal)
    assert by_rep.drop(index="(unknown rep)").adjusted_cm_per_deal.notna().all()
