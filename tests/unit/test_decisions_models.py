"""Pure decision-table functions on small simulated data with known answers (no warehouse)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from salesalign.analytics import alignment, icp, ramp, roi, variance
from salesalign.analytics.decision_data import PRACTICES
from salesalign.analytics.ratios import cluster_ratio, grouped_ratios


def _design(n: int, rng) -> np.ndarray:
    return np.column_stack([np.ones(n), rng.normal(size=n), rng.integers(0, 2, n)])


def test_linear_icc_recovered_with_profile_interval():
    rng = np.random.default_rng(1)
    n_reps, per = 60, 80
    rep = np.repeat(np.arange(n_reps), per)
    X = _design(rep.size, rng)
    u = rng.normal(0, 0.5, n_reps)  # true ICC = 0.25 / (0.25 + 1) = 0.2
    y = X @ [1.0, 2.0, -1.0] + u[rep] + rng.normal(0, 1, rep.size)
    fit = variance.fit_linear(y, X, pd.Series([f"R{r:02d}" for r in rep]), "y")
    assert not fit.boundary
    assert fit.icc_ci[0] < 0.2 < fit.icc_ci[1]
    assert np.corrcoef(fit.effects, u)[0, 1] > 0.9


def test_zero_rep_variance_is_reported_at_the_boundary_and_refitted():
    """MixedLM's boundary bug (docs/stack.md): at a zero random-effect variance, fixed effects constant
    within a group can come back as 0. The fit must say 'boundary', report 0, and keep the fixed effects
    from OLS."""
    rng = np.random.default_rng(2)
    n_reps, per = 40, 50
    rep = np.repeat(np.arange(n_reps), per)
    rep_level = (np.arange(n_reps) % 2).astype(float)[rep]  # constant within each rep
    X = np.column_stack([np.ones(rep.size), rng.normal(size=rep.size), rep_level])
    noise = rng.normal(0, 1, rep.size)
    noise -= (np.bincount(rep, noise) / per)[rep]  # rep means of the noise are exactly 0: variance estimate 0
    y = X @ [1.0, 2.0, 3.0] + noise
    fit = variance.fit_linear(y, X, pd.Series(rep), "y")
    assert fit.boundary and fit.sigma2_rep == 0.0 and fit.icc == 0.0 and fit.icc_ci[0] == 0.0
    assert (fit.effects == 0).all()
    slope = np.linalg.lstsq(X, fit.fixed_prediction, rcond=None)[0]
    assert slope[2] == pytest.approx(3.0, abs=0.2)  # the rep-level covariate kept its effect


def test_logistic_glmm_recovers_latent_icc():
    rng = np.random.default_rng(3)
    n_reps, per = 80, 150
    rep = np.repeat(np.arange(n_reps), per)
    X = _design(rep.size, rng)
    u = rng.normal(0, 0.7, n_reps)
    y = (rng.random(rep.size) < expit(X @ [-0.3, 0.5, 0.4] + u[rep])).astype(float)
    fit = variance.fit_logistic(y, X, pd.Series(rep))
    icc = 0.49 / (0.49 + math.pi**2 / 3)
    assert fit.icc_ci[0] < icc < fit.icc_ci[1] and not fit.boundary
    assert np.corrcoef(fit.effects, u)[0, 1] > 0.85
    assert fit.beta[1] == pytest.approx(0.5, abs=0.1)


def test_cluster_ratio_agrees_with_grouped_ratios_and_widens_for_clusters():
    rng = np.random.default_rng(4)
    account = np.repeat(np.arange(200), 5)
    hours = rng.gamma(2, 10, account.size)
    cm = hours * (50 + rng.normal(0, 40, 200)[account])  # account-level return: deals are correlated
    frame = pd.DataFrame({"g": "x", "account": account, "cm": cm, "hours": hours})
    one = cluster_ratio(cm, hours, account)
    grouped = grouped_ratios(frame, "g", "cm", "hours", "account").iloc[0]
    assert one["estimate"] == pytest.approx(grouped.estimate) and one["std_error"] == pytest.approx(
        grouped.std_error
    )
    assert one["std_error"] > cluster_ratio(cm, hours)["std_error"]  # ignoring clusters is overconfident


def test_kaplan_meier_median_with_censoring():
    days = np.array([10, 20, 30, 40, 50, 60])
    assert ramp._km_median(days, np.ones(6, bool)) == 30
    # the two latest reps have not won yet: the median is still where survival crosses 0.5
    assert ramp._km_median(days, np.array([1, 1, 1, 1, 0, 0], bool)) == 30
    assert math.isnan(ramp._km_median(days, np.zeros(6, bool)))


def test_practice_verdicts_respect_the_interval():
    assert roi._verdict(1.0, 5.0) == "worth executing"
    assert roi._verdict(-5.0, -1.0) == "not worth it"
    assert roi._verdict(-1.0, 5.0) == "uncertain"
    assert roi._verdict(float("nan"), 1.0) == "uncertain"


def _deals(n: int = 400, hours: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    band = rng.choice(["small", "mid", "enterprise"], n)
    won = rng.random(n) < 0.5
    frame = pd.DataFrame(
        {
            "opportunity_id": [f"O{i}" for i in range(n)],
            "account_id": [f"A{i % 80}" for i in range(n)],
            "rep_id": [f"R{i % 10}" for i in range(n)],
            "segment_id": [f"software|{b}|na" for b in band],
            "industry": "software",
            "size_band": band,
            "region": "na",
            "lead_source": "inbound",
            "is_won": won,
            "close_date": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 700, n), unit="D"),
            "selling_hours": rng.gamma(2, 5, n) if hours else 0.0,
            "effort_cost": 100.0 * hours,
            "selling_cost": 150.0,
            "net_revenue": np.where(won, 10000.0, 0.0),
            "contribution_margin": np.where(won, 5000.0, -150.0),
        }
    )
    for p in PRACTICES:
        frame[f"has_{p}"] = rng.random(n) < 0.3
        frame[f"{p}_hours"] = np.where(frame[f"has_{p}"], 2.0, 0.0)
    return frame


def test_strategy_file_loads_and_mirrors_the_demo_truth():
    from salesalign.demo.truth import DEMO_STRATEGY, MISALLOCATION_TOLERANCE

    strategy = alignment.load_strategy()
    assert {n: (t.match, t.intended_effort_share) for n, t in strategy.targets.items()} == {
        n: ({k: tuple(v) for k, v in s["match"].items()}, s["intended_effort_share"])
        for n, s in DEMO_STRATEGY.items()
    }
    assert strategy.misallocation_tolerance == MISALLOCATION_TOLERANCE
    assert icp.IcpSettings.from_dict(strategy.icp).dimensions == ("industry", "size_band", "region")


def test_strategy_file_is_checked(tmp_path):
    bad = tmp_path / "s.yml"
    bad.write_text(
        "targets:\n  a: {match: {size_band: [small]}, intended_effort_share: 0.8}\n"
        "  b: {match: {size_band: [mid]}, intended_effort_share: 0.5}\n"
    )
    with pytest.raises(ValueError, match="sum"):
        alignment.load_strategy(bad)
    bad.write_text("targets:\n  a: {match: {colour: [red]}, intended_effort_share: 0.5}\n")
    with pytest.raises(ValueError, match="unknown dimensions"):
        alignment.load_strategy(bad)


def test_alignment_and_reallocation_on_known_allocation():
    strategy = alignment.load_strategy()
    deals = _deals()
    sa = alignment.strategy_alignment(deals, strategy).set_index("target")
    company = sa.loc[alignment.COMPANY]
    assert (
        company.actual_effort_share == 1.0
        and company.promised_cm_growth_pct == 20
        and pd.isna(company.allocation)
    )
    assert sa.drop(alignment.COMPANY).actual_effort_share.sum() == pytest.approx(1.0)
    # every band gets about a third of the hours here: enterprise (intended 50%) is under-invested
    assert (
        sa.allocation["enterprise"] == "under-invested" and sa.allocation["small_business"] == "over-invested"
    )
    moves = alignment.effort_reallocation(sa.reset_index(), deals)
    assert set(moves.to_target) == {"enterprise"} and moves["rank"].tolist() == list(range(1, len(moves) + 1))
    assert (moves.expected_cm_gain_per_year.diff().dropna() <= 0).all()


def test_status_rows_instead_of_errors_when_inputs_are_missing():
    strategy = alignment.load_strategy()
    no_hours = _deals(hours=False)
    accounts = no_hours.drop_duplicates("account_id")[["account_id", "industry", "size_band", "region"]]
    seg = icp.icp_tables(
        no_hours.assign(cost_to_serve=0.0, days_to_close=30.0), accounts.assign(employee_count=100)
    )["icp_segments"]
    assert (seg.basis == icp.MARGIN_PER_DEAL_BASIS.label).all()  # the next rung: no hours to divide by
    assert alignment.strategy_alignment(no_hours, strategy).status.str.contains("no selling").all()
    assert (roi.roi_by_segment(no_hours).status != "ok").all()
    practice = roi.roi_by_practice(_deals(), None, None)
    assert (practice.verdict == "not estimable").all() and practice.status.notna().all()
    for table in (
        variance.status_frames("x")[0],
        ramp.rep_ramp(None, None),
        roi.roi_by_channel(None),
        alignment.practice_alignment(None, strategy, None),
        alignment.effort_reallocation(pd.DataFrame(), None),
    ):
        assert len(table) > 0 and table.status.notna().all()


def _bookings_only_deals() -> pd.DataFrame:
    """Deals of a source without finance or activity data (the Maven CRM export): bookings only."""
    rng = np.random.default_rng(7)
    d = _deals(600)
    d["net_bookings"] = np.where(d.is_won, rng.gamma(3, 1000, len(d)), 0.0)
    for c in (
        "selling_hours",
        "effort_cost",
        "selling_cost",
        "net_revenue",
        "cost_to_serve",
        "contribution_margin",
    ):
        d[c] = np.nan
    for p in PRACTICES:
        d[f"has_{p}"], d[f"{p}_hours"] = None, np.nan
    return d.assign(
        cost_basis="bookings only: no finance data",
        has_cost_data=False,
        has_activity_data=False,
        product_id="P1",
        list_amount=1000.0,
        rep_tenure_months=24.0,
        days_to_close=30.0,
        employee_count=500,
    )


def test_bookings_only_source_computes_wins_and_revenue_icp_and_says_what_it_cannot():
    deals = _bookings_only_deals()
    perf, summary = variance.rep_tables(deals)
    assert list(summary.outcome) == ["win", "contribution_margin"]
    win, cm = summary.iloc[0], summary.iloc[1]
    assert win.status in ("ok", "rep variance at the boundary (0): refitted without the random effect")
    assert win.n_deals == len(deals) and 0 <= win.icc <= 1
    assert cm.status.startswith("not estimable") and "bookings only" in cm.status and pd.isna(cm.icc)
    assert (perf[perf.outcome == "win"].rep_id.notna()).sum() == 10
    assert perf[perf.outcome == "contribution_margin"].rep_id.isna().all()

    for table in (roi.roi_by_segment(deals), roi.roi_by_channel(deals), roi.roi_by_rep(deals, perf)):
        assert table.status.str.startswith("not estimable").all()
        assert table.win_rate.notna().all() and table.n_deals.sum() == len(deals)
        assert table.contribution_margin.isna().all() and table.cm_per_selling_hour.isna().all()

    accounts = deals.drop_duplicates("account_id")[
        ["account_id", "industry", "size_band", "region", "employee_count"]
    ]
    tables = icp.icp_tables(deals, accounts)
    seg = tables["icp_segments"]
    assert seg.basis.str.startswith("net bookings per closed deal (cost basis").all()
    # on the revenue basis the per-"hour" columns are per closed deal: bookings / closed deals
    total = seg.contribution_margin.sum()
    assert total == pytest.approx(deals.net_bookings.sum())
    assert seg.selling_hours.sum() == len(deals)
    assert tables["icp_account_fit"].model.str.contains("net bookings per closed deal").all()

    # no hire dates (every rep hired the same day): the ramp is a status row
    reps = pd.DataFrame(
        {
            "rep_id": [f"R{i}" for i in range(10)],
            "hire_date": pd.Timestamp("2023-01-01"),
            "prior_industry_experience": pd.NA,
            "previous_role": None,
        }
    )
    ramp_table = ramp.rep_ramp(deals.assign(created_date=deals.close_date), reps)
    assert list(ramp_table.kind) == ["status"] and "same hire date" in ramp_table.status.iloc[0]


def test_full_cost_data_keeps_the_margin_basis():
    deals = _deals().assign(net_bookings=1.0, cost_basis="full", cost_to_serve=0.0, days_to_close=30.0)
    accounts = deals.drop_duplicates("account_id")[["account_id", "industry", "size_band", "region"]].assign(
        employee_count=100
    )
    assert (icp.icp_tables(deals, accounts)["icp_segments"].basis == icp.MARGIN_BASIS.label).all()
