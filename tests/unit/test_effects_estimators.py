"""Estimators on data with known effects: LaLonde, simulated randomised and confounded data, no overlap."""

from __future__ import annotations

import math

import numpy as np
import pytest
import statsmodels.api as sm
from fixtures.synthetic import synthetic_deals

from bench.validate import LALONDE_EXPERIMENTAL, validate_lalonde
from salesalign.analytics import diagnostics as dg
from salesalign.analytics.config import load_config
from salesalign.analytics.effects import estimate_effects
from salesalign.analytics.estimators import (
    TrimRule,
    estimate_all,
    fit_glm,
    naive_difference,
    ols_t_statistic,
)


# ------------------------------------------------------------------ LaLonde
@pytest.fixture(scope="module")
def lalonde():
    return validate_lalonde()


@pytest.mark.parametrize("method", ["aipw", "ipw"])
def test_lalonde_att_recovers_the_experiment(lalonde, method):
    att = lalonde["att"][method]
    assert 1_000 <= att["estimate"] <= 2_500
    assert att["ci_low"] <= LALONDE_EXPERIMENTAL <= att["ci_high"]
    assert att["n_treated"] >= 150  # trimming kept most NSW treated


def test_lalonde_naive_is_flagged_confounded(lalonde):
    assert lalonde["naive"]["estimate"] == pytest.approx(-8_497.5, abs=1)
    assert lalonde["naive"]["confounded"] is True
    assert not lalonde["naive"]["covers_experimental"]
    assert lalonde["benchmark"]["experimental_difference"] == pytest.approx(1_794.34, abs=0.5)


# ------------------------------------------------------------------ simulated, known effect
def _simulate(n, rng, confounded=True, tau=2.0, binary=False):
    x = rng.normal(size=(n, 3))
    lin = 0.8 * x[:, 0] - 0.6 * x[:, 1] if confounded else np.zeros(n)
    e = 1 / (1 + np.exp(-lin))
    t = rng.random(n) < e
    X = np.column_stack([np.ones(n), x])
    if binary:
        eta = -0.3 + 0.9 * x[:, 0] + 0.5 * x[:, 1] + tau * t
        y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
        p1 = 1 / (1 + np.exp(-(eta - tau * t + tau)))
        p0 = 1 / (1 + np.exp(-(eta - tau * t)))
        return y, t, X, float((p1 - p0).mean()), float((p1 - p0)[t].mean())
    # heterogeneous effect, so ATE != ATT under confounding
    effect = tau + 1.0 * x[:, 0]
    y = 1.0 + 2.0 * x[:, 0] + 1.0 * x[:, 1] + 0.5 * x[:, 2] + effect * t + rng.normal(size=n)
    return y, t, X, float(effect.mean()), float(effect[t].mean())


def test_randomised_all_estimators_recover_the_effect():
    rng = np.random.default_rng(1)
    y, t, X, ate, att = _simulate(5_000, rng, confounded=False)
    est, _ = estimate_all(y, t, X, False, TrimRule())
    for (estimand, method), e in est.items():
        truth = ate if estimand == "ATE" else att
        assert abs(e.estimate - truth) < 3 * e.std_error, (estimand, method, e.estimate, truth)
    naive, se = naive_difference(y, t)
    assert abs(naive - ate) < 4 * se


def test_confounded_adjusted_estimators_beat_naive():
    rng = np.random.default_rng(2)
    y, t, X, ate, att = _simulate(5_000, rng, confounded=True)
    naive, naive_se = naive_difference(y, t)
    assert abs(naive - ate) > 10 * naive_se  # the simulation is confounded
    est, _ = estimate_all(y, t, X, False, TrimRule())
    for (estimand, method), e in est.items():
        truth = ate if estimand == "ATE" else att
        assert abs(e.estimate - truth) < 3 * e.std_error, (estimand, method)


@pytest.mark.parametrize("binary", [False, True])
def test_influence_function_intervals_cover_by_simulation(binary):
    """95% intervals of every estimator and estimand cover the truth in >= 90% of 150 confounded draws
    (binomial SD of the coverage at 95% is 1.8 points), and the SE matches the Monte-Carlo SD."""
    rng = np.random.default_rng(3)
    reps, hits, estimates, ses = 150, {}, {}, {}
    for _ in range(reps):
        y, t, X, ate, att = _simulate(1_500, rng, confounded=True, tau=0.5 if binary else 2.0, binary=binary)
        est, _ = estimate_all(y, t, X, binary, TrimRule())
        for key, e in est.items():
            truth = ate if key[0] == "ATE" else att
            hits[key] = hits.get(key, 0) + (e.ci[0] <= truth <= e.ci[1])
            estimates.setdefault(key, []).append(e.estimate)
            ses.setdefault(key, []).append(e.std_error)
    for key in hits:
        assert hits[key] / reps >= 0.90, (key, hits[key] / reps)
        ratio = np.mean(ses[key]) / np.std(estimates[key])
        assert 0.8 < ratio < 1.25, (key, ratio)


def test_ols_matches_statsmodels():
    rng = np.random.default_rng(4)
    y, t, X, *_ = _simulate(2_000, rng)
    fit = fit_glm(y, X, np.ones(y.size, bool), binary=False)
    ref = sm.OLS(y, X).fit()
    np.testing.assert_allclose(fit.beta, ref.params, rtol=1e-8)
    tstat, dof = ols_t_statistic(y, X, column=1)
    assert tstat == pytest.approx(ref.tvalues[1]) and dof == ref.df_resid


# ------------------------------------------------------------------ sensitivity formulas
def test_e_value_and_robustness_value():
    assert dg.e_value(2.0) == pytest.approx(2 + math.sqrt(2))
    assert dg.e_value(0.5) == pytest.approx(2 + math.sqrt(2))
    assert dg.e_value_ci(math.log(1.5), 0.5) == 1.0  # interval includes 1
    # Cinelli & Hazlett (2020), Darfur example: t = 4.18, dof = 783 -> RV = 0.139, RV_alpha = 0.076
    assert dg.robustness_value(4.18, 783) == pytest.approx(0.139, abs=0.001)
    assert dg.robustness_value(4.18, 783, alpha=0.05) == pytest.approx(0.076, abs=0.001)


# ------------------------------------------------------------------ the engine on deal frames
@pytest.fixture(scope="module")
def config():
    return load_config()


def test_engine_recovers_planted_effects(config):
    frame, truth = synthetic_deals(20_000, seed=5)
    tables = estimate_effects(frame, config, practices=["discovery_workshop", "proof_of_concept"])
    pe = tables.practice_effects
    aipw = pe[(pe.estimator == "aipw") & pe.outcome.isin(["win", "contribution_margin"])]
    assert len(aipw) == 8 and (aipw.status == "ok").all()
    for r in aipw.itertuples():
        true = truth[r.practice][r.outcome]["ate" if r.estimand == "ATE" else "att"]
        assert r.ci_low <= true <= r.ci_high, (r.practice, r.outcome, r.estimand, r.estimate, true)
        assert abs(r.placebo_estimate) < 4 * r.std_error
        assert r.max_abs_smd_after < 0.1 < r.max_abs_smd_before
    # a clear effect is robust; proof_of_concept has no effect on winning
    assert set(aipw[aipw.practice == "discovery_workshop"].verdict) == {"robust"}
    poc_win = aipw[(aipw.practice == "proof_of_concept") & (aipw.outcome == "win")]
    assert set(poc_win.verdict) == {"no detectable effect"}
    # every column of the contract is present; balance per covariate is stored
    for col in (
        "share_trimmed",
        "max_abs_smd_before",
        "max_abs_smd_after",
        "placebo_estimate",
        "sensitivity_value",
        "verdict",
        "naive_difference",
    ):
        assert col in pe.columns
    bal = tables.diagnostics[tables.diagnostics.kind == "balance"]
    assert {"size_band=enterprise", "log_list_amount"} <= set(bal.name)
    seg = tables.by_segment
    ok = seg[seg.status == "ok"]
    assert len(ok) > 0 and (ok.ci_method.str.startswith("bonferroni")).all()
    assert (ok.p_value_holm >= ok.p_value - 1e-12).all()


def test_no_overlap_is_reported_not_estimated(config):
    frame, _ = synthetic_deals(5_000, seed=6, overlap=False)
    pe = estimate_effects(frame, config, practices=["discovery_workshop"]).practice_effects
    assert len(pe) > 0
    assert (pe.verdict == "not estimable").all()
    assert pe.estimate.isna().all()
    assert pe.status.str.contains("overlap|propensity", regex=True).all()


def test_missing_practice_inputs_give_status_rows(config):
    frame, _ = synthetic_deals(2_000, seed=7)
    frame["treat__proof_of_concept"] = False  # a source without practice activities
    frame = frame.drop(columns=["treat__deep_discount_approval"])
    pe = estimate_effects(
        frame, config, practices=["proof_of_concept", "deep_discount_approval"]
    ).practice_effects
    assert (pe.verdict == "not estimable").all()
    assert pe[pe.practice == "proof_of_concept"].status.str.contains("no deal has this practice").all()
    assert pe[pe.practice == "deep_discount_approval"].status.str.contains("inputs missing").all()


def test_segments_with_too_few_deals_say_so(config):
    frame, _ = synthetic_deals(3_000, seed=8)
    seg = estimate_effects(frame, config, practices=["discovery_workshop"]).by_segment
    small = seg[(seg.n_treated < 20) | (seg.n_control < 20)]
    assert len(small) > 0
    assert small.status.str.startswith("too few deals").all() and small.estimate.isna().all()


def test_deals_without_an_outcome_are_excluded_and_said(config):
    frame, _ = synthetic_deals(3_000, seed=9)
    frame.loc[:99, "days_to_close"] = float("nan")
    pe = estimate_effects(frame, config, practices=["discovery_workshop"]).practice_effects
    days = pe[pe.outcome == "days_to_close"]
    assert days.status.str.contains("100 deals without days_to_close excluded").all()
    assert (pe[pe.outcome == "win"].status == "ok").all()
