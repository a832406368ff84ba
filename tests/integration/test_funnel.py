"""The funnel on the small demo's dbt-built marts: its counts are the mart's, its dimensions sum back,
its intervals hold their estimates; on a funnel export whose recent leads are open it censors them
(the naive rates differ), and it runs when the marts hold no closed deal at all."""

from __future__ import annotations

import functools

import duckdb
import pandas as pd
import pytest
from fixtures.degraded import CUT_OFF, build_world
from fixtures.warehouse import new_home, query

from salesalign.analytics import registry
from salesalign.analytics.runner import run_analysis
from salesalign.publish.brief import write_brief
from salesalign.settings import REPO

H = registry.FUNNEL_HORIZON_DAYS
RATE = registry.FUNNEL_CONVERSION_NAME
COUNTS = ("opportunities", "open", "won", "lost")
COUNTS_SQL = (
    "count(*) as opportunities, count(*) filter (where not is_closed) as open, "
    "count(*) filter (where is_won) as won, count(*) filter (where is_closed and not is_won) as lost"
)


def _run(home, name="funnel"):
    connect = functools.partial(duckdb.connect, str(home / "warehouse.duckdb"))
    return run_analysis(registry.analysis(name), connect, REPO / "causal.yml", REPO / "strategy.yml")


@pytest.fixture(scope="module")
def demo(small_marts_home, tmp_path_factory):
    home = new_home(tmp_path_factory.mktemp("funnel-demo"), small_marts_home)
    run = _run(home)
    assert not run.failed, run.error
    return home, run


def _rows(home, table: str, dimension: str):
    return query(home, f"select * from analytics.{table} where dimension = '{dimension}' order by value")


def test_counts_are_the_marts_and_every_dimension_sums_back(demo):
    home, run = demo
    assert run.statuses == {"funnel_conversion": "ok", "funnel_time_to_convert": "ok"}
    conversion = query(home, "select * from analytics.funnel_conversion")
    assert (conversion.basis == "counts").all()
    total = conversion[conversion.dimension == "all"].iloc[0]
    marts = query(home, f"select {COUNTS_SQL} from marts.fct_opportunities").iloc[0]
    assert [int(total[c]) for c in COUNTS] == [int(marts[c]) for c in COUNTS] == [5000, 398, 2555, 2047]
    for dimension, expression in (
        ("lead_source", "lead_source"),
        ("segment", "coalesce(segment_id, '(unknown account)')"),
        ("rep", "coalesce(rep_id, '(unknown rep)')"),
        ("created_month", "strftime(created_at, '%Y-%m')"),
    ):
        got = _rows(home, "funnel_conversion", dimension)
        expected = query(
            home,
            f"select {expression} as value, {COUNTS_SQL} from marts.fct_opportunities group by 1 order by 1",
        )
        assert list(got.value) == list(expected.value), dimension
        for c in COUNTS:
            assert list(got[c]) == list(expected[c]), (dimension, c)
            assert got[c].sum() == total[c], (dimension, c)
    assert total.win_rate_closed == pytest.approx(2555 / 4602)
    cut_off = query(home, "select max(loaded_through)::date as d from marts.fct_opportunities").d[0]
    assert total.censored_at == cut_off


def test_intervals_hold_their_estimates_and_the_curves_are_monotone(demo):
    home, _ = demo
    conversion = query(home, "select * from analytics.funnel_conversion")
    ok = conversion[conversion.status == "ok"]
    assert len(ok) > 80 and ok[RATE].notna().all() and ok.win_rate_closed.notna().all()
    assert (ok.win_rate_closed_ci_low <= ok.win_rate_closed).all()
    assert (ok.win_rate_closed <= ok.win_rate_closed_ci_high).all()
    with_ci = ok[ok[f"{RATE}_ci_low"].notna()]
    assert len(with_ci) >= len(ok) - 2  # none only where the last one at risk closes on the horizon
    assert (with_ci[f"{RATE}_ci_low"] <= with_ci[RATE]).all()
    assert (with_ci[RATE] <= with_ci[f"{RATE}_ci_high"]).all()
    small = conversion[conversion.opportunities < 30]
    assert len(small) and small.status.str.startswith("not estimable: ").all() and small[RATE].isna().all()
    curves = query(
        home, "select * from analytics.funnel_time_to_convert order by dimension, value, outcome, days"
    )
    assert set(curves.value) == {"all", "event", "inbound", "outbound", "partner", "referral"}
    assert (curves.status == "ok").all() and (curves.ci_low <= curves.cumulative_incidence).all()
    for _, curve in curves.groupby(["value", "outcome"]):
        assert curve.cumulative_incidence.is_monotonic_increasing and curve.at_risk.is_monotonic_decreasing
    overall = curves[curves.dimension == "all"].set_index(["outcome", "days"])
    total = conversion[conversion.dimension == "all"].iloc[0]
    assert overall.loc[("won", H), "cumulative_incidence"] == pytest.approx(total[RATE])
    # everyone who closed by the longest day of the grid, plus those still followed, is a share of 1
    won, lost = (overall.loc[(outcome, 365), "cumulative_incidence"] for outcome in ("won", "lost"))
    assert 0.9 < won + lost < 1


def test_a_funnel_of_open_leads_is_censored_not_read_as_lost(small_marts_home, tmp_path):
    home = build_world("leads_with_open_outcomes", small_marts_home, tmp_path)
    run = _run(home)
    assert run.statuses == {"funnel_conversion": "ok", "funnel_time_to_convert": "ok"}
    total = _rows(home, "funnel_conversion", "all").iloc[0]
    assert total.open / total.opportunities > 0.5 and total.censored_at == pd.Timestamp(CUT_OFF)
    assert query(home, "select count(*) as n from marts.fct_deal_margin").n[0] == total.won + total.lost
    assert query(home, "select count(list_amount) as n from marts.fct_opportunities").n[0] == 0
    naive = query(
        home,
        f"select count(*) filter (where is_won and close_date - created_at::date <= {H}) / count(*) "
        "as within, count(*) filter (where is_won) / count(*) as ever from marts.fct_opportunities",
    ).iloc[0]
    # open = lost: every open lead counted a failure reads the conversion too low ...
    assert naive.within < total[f"{RATE}_ci_low"]
    # ... and won / closed, which leaves the open ones out, reads it nearly twice too high
    assert total.win_rate_closed_ci_low > 1.8 * total[f"{RATE}_ci_high"]
    curve = _rows(home, "funnel_time_to_convert", "all").set_index(["outcome", "days"])
    assert naive.ever < curve.loc[("won", 365), "ci_low"]
    # the months created within the horizon before the cut-off are not followed long enough
    months = _rows(home, "funnel_conversion", "created_month").set_index("value")
    assert months.loc["2025-12"].status.startswith("not estimable: follow-up ends after 31 days")
    assert months.loc["2025-12"].open == months.loc["2025-12"].opportunities > 0


def test_the_funnel_runs_when_no_deal_has_closed(small_marts_home, tmp_path):
    home = new_home(tmp_path / "all-open", small_marts_home)
    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        con.execute("delete from marts.fct_deal_margin")
        con.execute(
            "update marts.fct_opportunities set stage = coalesce(furthest_open_stage, 'prospecting'), "
            "is_closed = false, is_won = false, outcome = 'open', close_date = null, days_to_close = null"
        )
    rep_variance = _run(home, "rep_variance")
    assert set(rep_variance.statuses.values()) == {"not estimable: no closed deals in marts.fct_deal_margin"}
    run = _run(home)
    assert not run.failed and run.statuses == {"funnel_conversion": "ok", "funnel_time_to_convert": "ok"}
    total = _rows(home, "funnel_conversion", "all").iloc[0]
    assert (total.opportunities, total.open, total.won, total.lost) == (5000, 5000, 0, 0)
    assert total[RATE] == 0 and total.win_rate_closed != total.win_rate_closed  # NaN: nothing has closed
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        brief = write_brief(con, home, "all-open")
    shown = {s.anchor for s in brief.sections if s.ok}
    assert "funnel" in shown and "reps" not in shown
    funnel = next(s for s in brief.sections if s.anchor == "funnel")
    assert "0.0%" in funnel.words and "counts of deals, not money" in funnel.title
