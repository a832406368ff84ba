"""The funnel's estimators on simulated funnels with a known truth, and its tables' rules (counts that
sum back, unknown values kept, outcome leakage and short follow-up said per row)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from salesalign.analytics import funnel
from salesalign.analytics.decision_data import unknown_label
from salesalign.analytics.preconditions import MIN_OPPORTUNITIES
from salesalign.analytics.registry import FUNNEL_HORIZON_DAYS

WIN_HAZARD, LOSS_HAZARD = 1 / 200, 1 / 300  # per day: 60% of the closes are wins, mean close 120 days
WINDOW_DAYS = 540  # leads created uniformly over the last 18 months before the cut-off
CUT_OFF = pd.Timestamp("2026-01-01")


def true_conversion(days: float) -> float:
    """P(won within `days`) with exponential win and loss hazards (competing risks)."""
    total = WIN_HAZARD + LOSS_HAZARD
    return WIN_HAZARD / total * (1 - math.exp(-total * days))


def simulated_funnel(n: int, seed: int) -> pd.DataFrame:
    """Opportunities as the mart holds them: closed ones with their close date, the ones whose close
    falls after the cut-off still open (administrative censoring)."""
    rng = np.random.default_rng(seed)
    created = CUT_OFF - pd.to_timedelta(rng.uniform(0, WINDOW_DAYS, n), unit="D")
    time_to_close = rng.exponential(1 / (WIN_HAZARD + LOSS_HAZARD), n)
    wins = rng.uniform(size=n) < WIN_HAZARD / (WIN_HAZARD + LOSS_HAZARD)
    closes = created + pd.to_timedelta(time_to_close, unit="D")
    closed = closes < CUT_OFF
    return pd.DataFrame(
        {
            "opportunity_id": [f"OPP-{i:05d}" for i in range(n)],
            "created_at": created,
            "close_date": pd.Series(closes).dt.normalize().where(closed),
            "is_closed": closed,
            "is_won": closed & wins,
            "stage": np.where(~closed, "proposal", np.where(wins, "closed_won", "closed_lost")),
            "lead_source": rng.choice(["inbound", "outbound"], n),
            "segment_id": rng.choice(["software|mid|na", None], n, p=[0.8, 0.2]),
            "rep_id": rng.choice(["REP-1", "REP-2", "REP-3"], n),
            "loaded_through": CUT_OFF,
        }
    )


def test_cumulative_incidence_covers_the_truth_where_open_as_lost_is_biased():
    truth = true_conversion(FUNNEL_HORIZON_DAYS)
    covered, estimates, naive = 0, [], []
    replications = 50
    for seed in range(replications):
        opps = funnel.follow_up(simulated_funnel(1500, seed))
        at_h = funnel.cumulative_incidence(opps.days, opps.event, (FUNNEL_HORIZON_DAYS,)).iloc[0]
        assert at_h.outcome == "won" and at_h.followed
        assert at_h.ci_low < at_h.cumulative_incidence < at_h.ci_high
        covered += at_h.ci_low <= truth <= at_h.ci_high
        estimates.append(at_h.cumulative_incidence)
        # "open = lost": won within the horizon over every opportunity
        naive.append(((opps.event == funnel.WON) & (opps.days <= FUNNEL_HORIZON_DAYS)).mean())
    assert covered >= 0.88 * replications, covered  # nominal 95%: 47.5 of 50, sd 1.5
    assert abs(np.mean(estimates) - truth) < 0.01
    assert np.mean(naive) < truth - 0.05  # open leads counted as lost: the conversion looks lower
    assert np.mean(np.array(naive) < truth - 0.03) > 0.95


def test_wilson_interval_matches_its_closed_form():
    rate, low, high = funnel.wilson(5, 10)
    assert rate == 0.5 and low == pytest.approx(0.2366, abs=1e-4) and high == pytest.approx(0.7634, abs=1e-4)
    rate, low, high = funnel.wilson(0, 10)
    assert rate == 0 and low == pytest.approx(0, abs=1e-12) and high == pytest.approx(0.2775, abs=1e-4)
    assert all(math.isnan(v) for v in funnel.wilson(0, 0))


def test_curves_without_one_outcome_or_without_events():
    days, event = np.array([5, 10, 20, 40]), np.array([funnel.WON, 0, funnel.WON, 0])
    curve = funnel.cumulative_incidence(days, event, (15, 30, 60)).set_index(["outcome", "days"])
    assert curve.loc[("won", 15), "cumulative_incidence"] == pytest.approx(0.25)
    assert curve.loc[("won", 30), "cumulative_incidence"] == pytest.approx(0.25 + 0.75 / 2)
    assert (curve.xs("lost").cumulative_incidence.iloc[:2] == 0).all()
    beyond = curve.loc[("won", 60)]
    assert not beyond.followed and math.isnan(beyond.cumulative_incidence)
    assert list(curve.at_risk) == [2, 1, 0, 2, 1, 0]
    open_only = funnel.cumulative_incidence(np.array([3, 9]), np.array([0, 0]), (5,))
    assert (open_only.cumulative_incidence == 0).all() and open_only.ci_low.isna().all()


def test_conversion_table_counts_sum_back_and_keep_unknown_values():
    opps = funnel.follow_up(simulated_funnel(3000, 1))
    table = funnel.conversion_table(opps)
    total = table[table.dimension == "all"].iloc[0]
    assert total.opportunities == 3000 and total.status == "ok" and total.basis == "counts"
    assert total.open == (~opps.is_closed).sum() and total.won == opps.is_won.sum()
    for dimension in ("lead_source", "segment", "created_month", "rep"):
        rows = table[table.dimension == dimension]
        for count in ("opportunities", "open", "won", "lost"):
            assert rows[count].sum() == total[count], (dimension, count)
    unknown = table[(table.dimension == "segment") & (table.value == unknown_label("segment_id"))].iloc[0]
    assert unknown.opportunities == opps.segment_id.isna().sum() > 0 and unknown.status == "ok"
    ok = table[table.status == "ok"]
    assert (ok.conversion_180d_ci_low <= ok.conversion_180d).all()
    assert (ok.conversion_180d <= ok.conversion_180d_ci_high).all()
    assert (ok.win_rate_closed_ci_low <= ok.win_rate_closed).all()
    # closed-only: the truth of "won given closed" is 60%, the conversion within 180 days 46.6%
    assert total.win_rate_closed_ci_low < 0.6 < total.win_rate_closed_ci_high
    assert total.conversion_180d_ci_low < true_conversion(180) < total.conversion_180d_ci_high
    # the last months are followed less than the horizon: their rate is not estimable, counts kept
    recent = table[(table.dimension == "created_month") & (table.value == "2025-12")].iloc[0]
    assert recent.status.startswith("not estimable: follow-up ends after")
    assert math.isnan(recent.conversion_180d)
    assert recent.opportunities > 0


def test_a_rep_known_only_on_won_deals_and_small_groups_are_not_estimable():
    opps = simulated_funnel(2000, 2)
    opps.loc[opps.is_closed & ~opps.is_won, "rep_id"] = "REP-UNASSIGNED"
    opps.loc[opps.index[:MIN_OPPORTUNITIES.value - 1], "lead_source"] = "event"
    opps = funnel.follow_up(opps)
    table = funnel.conversion_table(opps)
    reps = table[table.dimension == "rep"]
    assert reps.status.str.startswith("not estimable: the rep is known only on won deals").all()
    assert reps.win_rate_closed.isna().all() and reps.conversion_180d.isna().all()
    assert reps.opportunities.sum() == 2000
    event = table[(table.dimension == "lead_source") & (table.value == "event")].iloc[0]
    assert event.status.startswith(f"not estimable: {MIN_OPPORTUNITIES.value - 1:.0f} opportunities (needs")
    assert table[table.dimension == "segment"].status.eq("ok").all()
    curves = funnel.time_to_convert_table(opps)
    assert set(curves.dimension) == {"all", "lead_source"}
    assert curves[curves.value == "event"].status.str.startswith("not estimable").all()
    assert curves[curves.value == "inbound"].status.eq("ok").all()


def test_open_opportunities_are_followed_to_the_latest_load():
    """A row keeps the loaded_through of the run that built it; an open one no later load changed was
    still open at the latest load, so it is followed to then."""
    opps = pd.DataFrame(
        {
            "created_at": pd.to_datetime(["2025-01-01 10:00", "2025-01-01 09:00", "2025-03-01 08:00"]),
            "close_date": pd.to_datetime([None, "2025-02-15", None]),
            "is_closed": [False, True, False],
            "is_won": [False, True, False],
            "loaded_through": pd.to_datetime(["2025-02-01 00:00", "2025-06-30 23:00", "2025-06-30 23:00"]),
        }
    )
    followed = funnel.follow_up(opps)
    assert list(followed.days) == [180, 45, 121] and list(followed.event) == [0, funnel.WON, 0]
    assert (followed.censored_at == pd.Timestamp("2025-06-30")).all()
    assert list(followed.created_month) == ["2025-01", "2025-01", "2025-03"]
