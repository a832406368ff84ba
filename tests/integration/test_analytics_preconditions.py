"""Each analysis states what it needs from the data and checks it; one failure never blocks the rest.

A corpus of degraded worlds (tests/fixtures/degraded.py: the small demo's dbt-built marts changed by
SQL in a copy) runs every registered analysis and the brief: per world, the status of every analytics
table is named here ("ok" only where the data supports it, "not estimable: ..." with the expected
reason otherwise) and the brief has exactly the sections the data supports. An analysis that raises
writes "failed: ..." rows, logs its traceback, and the analyses after it and the brief still run.
"""

from __future__ import annotations

import dataclasses

import dagster as dg
import duckdb
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
NO_AMOUNTS = (
    "not estimable: no contribution margin (cost basis: bookings only: no finance data) and net bookings are "
    "missing on all 1,208 won deals (no won amounts)"
)
NO_FINANCE = NO_COST.removesuffix("partial") + "bookings only: no finance data)"

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
    "leads_with_open_outcomes": {  # the funnel's tables are ok: it counts deals, open ones censored
        **dict.fromkeys(("icp_segments", "icp_account_fit", "icp_validation"), NO_AMOUNTS),
        **dict.fromkeys(("roi_by_segment", "roi_by_channel", "roi_by_rep"), NO_FINANCE),
        "roi_by_practice": NO_ACTIVITIES,  # roi.py's reason when the engine has no margin effects
        "practice_alignment": NO_SEGMENT_EFFECTS,
        "effort_reallocation": MOVE_LOSES,
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
    "no_activities": {"icp", "funnel"},
    "leads_with_open_outcomes": {"practices", "alignment", "funnel"},
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
    assert 'id="coverage"' in html and "nan" not in html.replace("financ", "")
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
    assert "Ranked on revenue: net bookings per closed deal" in drawn
    assert "CM per selling hour" not in drawn and "<th>contribution margin" not in drawn
    assert "per selling hour" not in drawn.replace("no contribution margin or selling hours", "")
    html = (home / "reports" / "alignment-brief.html").read_text()
    assert "did not deliver the full cost of the deals (cost basis:" in html
    assert "Amounts are contribution margin" not in html

    home, _, brief = worlds["segments_all_won"]
    icp = next(s for s in brief.sections if s.anchor == "icp")
    assert "<th>CM per selling hour</th>" in icp.table and "net bookings" not in icp.table
    assert "Amounts are contribution margin" in (home / "reports" / "alignment-brief.html").read_text()
