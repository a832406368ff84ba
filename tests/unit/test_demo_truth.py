"""The demo's planted truth: confounding is real, and a randomized re-simulation recovers the truth."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from salesalign.contract import PRACTICE_ACTIVITY_TYPES
from salesalign.demo import PRESETS, generate, simulate_deal_outcomes
from salesalign.demo import model as M

SEED = 11
OUTCOMES = {"win": "won", "contribution_margin": "contribution_margin"}


@pytest.fixture(scope="module")
def truth_default(tmp_path_factory):
    d = tmp_path_factory.mktemp("truth_default")
    generate("default", SEED, d)
    return json.loads((d / "truth.json").read_text())


@pytest.fixture(scope="module")
def truth_small(tmp_path_factory):
    d = tmp_path_factory.mktemp("truth_small")
    generate("small", SEED, d)
    return json.loads((d / "truth.json").read_text())


@pytest.fixture(scope="module")
def randomized():
    return simulate_deal_outcomes("default", SEED, assignment="randomized")


@pytest.fixture(scope="module")
def observational():
    return simulate_deal_outcomes("default", SEED)


def _n_confounded(truth: dict, outcome: str) -> int:
    n = 0
    for p in PRACTICE_ACTIVITY_TYPES:
        e = truth["practices"][p][outcome]
        if abs(e["naive_diff"] - e["ate"]) > 3 * e["naive_se"]:
            n += 1
    return n


def test_confounding_is_real(truth_small, truth_default):
    assert _n_confounded(truth_small, "contribution_margin") >= 2
    assert _n_confounded(truth_default, "contribution_margin") >= 2
    assert _n_confounded(truth_default, "win") >= 2


def test_randomized_run_recovers_truth(truth_default, randomized):
    for p in PRACTICE_ACTIVITY_TYPES:
        t = randomized[p].to_numpy()
        assert 0.45 < t.mean() < 0.55
        for outcome, col in OUTCOMES.items():
            y = randomized[col].to_numpy(dtype=float)
            diff = y[t].mean() - y[~t].mean()
            se = math.sqrt(y[t].var(ddof=1) / t.sum() + y[~t].var(ddof=1) / (~t).sum())
            ate = truth_default["practices"][p][outcome]["ate"]
            assert abs(diff - ate) < 4 * se, (p, outcome, diff, ate, se)


def test_randomized_run_changes_only_the_practices(randomized, observational):
    same = ["opportunity_id", "account_id", "rep_id", "segment", "lead_source", "size_band"]
    assert len(randomized) == len(observational)
    assert (randomized[same].to_numpy() == observational[same].to_numpy()).all()
    for p in PRACTICE_ACTIVITY_TYPES:
        assert (randomized[p] != observational[p]).mean() > 0.3
        by_band = randomized.groupby("size_band")[p].mean()
        assert by_band.max() - by_band.min() < 0.06  # a fair coin ignores the covariates
    # observationally the practices follow the covariates (exec meetings go to enterprise deals)
    exec_rate = observational.groupby("size_band")["executive_sponsor_meeting"].mean()
    assert exec_rate["enterprise"] > exec_rate["small"] + 0.3


def test_simulation_matches_generated_bookkeeping(truth_default, observational):
    b = truth_default["bookkeeping"]
    assert len(observational) == b["n_closed"]
    assert int(observational["won"].sum()) == b["n_won"]
    assert observational["contribution_margin"].sum() == pytest.approx(
        b["contribution_margin_realised_usd"], abs=1
    )
    assert observational["selling_hours"].sum() == pytest.approx(b["selling_hours_closed"], rel=1e-9)
    for p in PRACTICE_ACTIVITY_TYPES:
        assert int(observational[p].sum()) == truth_default["practices"][p]["n_treated"]


def test_truth_structure_and_planted_heterogeneity(truth_default):
    t = truth_default
    assert set(t) >= {"practices", "rep_effects", "hiring_traits", "segments", "bookkeeping", "economics"}
    pr = t["practices"]
    # effects by size band follow the planted logits
    dw = pr["discovery_workshop"]["by_size_band"]
    assert dw["small"]["win"] == pytest.approx(0.0, abs=1e-9) and dw["enterprise"]["win"] > 0.05
    ex = pr["executive_sponsor_meeting"]["by_size_band"]
    assert ex["small"]["win"] < 0 < ex["mid"]["win"] < ex["enterprise"]["win"]
    poc = pr["proof_of_concept"]["by_size_band"]
    assert poc["small"]["contribution_margin"] < 0 < poc["enterprise"]["contribution_margin"]
    dd = pr["deep_discount_approval"]
    assert dd["win"]["ate"] > 0.1
    assert any(v["contribution_margin"] < 0 for v in dd["by_segment"].values())
    # the ATE is the n-weighted mean of the segment effects
    for p in PRACTICE_ACTIVITY_TYPES:
        segs = pr[p]["by_segment"].values()
        n = sum(s["n"] for s in segs)
        assert n == pr[p]["n_closed"] == t["bookkeeping"]["n_closed"]
        for outcome in OUTCOMES:
            mean = sum(s[outcome] * s["n"] for s in segs) / n
            assert mean == pytest.approx(pr[p][outcome]["ate"], rel=1e-4, abs=1e-4)
    # rep effects and hiring traits
    re = t["rep_effects"]
    assert re["sigma2_rep"] == pytest.approx(0.25)
    assert re["icc_latent"] == pytest.approx(0.25 / (0.25 + math.pi**2 / 3), abs=1e-6)
    assert len(re["u_rep"]) == PRESETS["default"].n_reps
    ame = t["hiring_traits"]["ame_first_year_win"]
    assert ame["prior_industry_experience"] > 0.05
    assert ame["previous_role_consultant"] > 0 > ame["previous_role_sdr"]
    assert t["hiring_traits"]["coefficients"]["prior_industry_experience"] == 0.4
    # segments: ~45, ranks a permutation, rank 1 the best per selling hour
    segs = t["segments"]
    assert 40 <= len(segs) <= 45
    ranks = sorted(s["rank"] for s in segs.values())
    assert ranks == list(range(1, len(segs) + 1))
    best = min(segs.values(), key=lambda s: s["rank"])
    assert best["cm_per_selling_hour"] == max(s["cm_per_selling_hour"] for s in segs.values())


def test_propensities_overlap_and_ignore_rep_skill():
    w = M.build_world(PRESETS["small"], 5)
    ps = w.arrays["deal_propensity"]
    assert ps.min() >= 0.03 - 1e-12 and ps.max() <= 0.97 + 1e-12
    # rep skill is not a cause of the practices: scrambling it leaves the propensities unchanged
    a = dict(w.arrays)
    a["rep_u"] = np.random.default_rng(0).normal(size=a["rep_u"].size)
    assert np.array_equal(M.propensities(a), ps)


def test_planted_strategy_misallocation(truth_default):
    """The demo declares 'win the enterprise' but its effort flows to mid-market and small deals."""
    s = truth_default["strategy"]
    targets = s["targets"]
    assert sum(t["actual_effort_share"] for t in targets.values()) == pytest.approx(1.0, abs=1e-5)
    hours = {b: sum(v["selling_hours"] for v in truth_default["segments"].values() if v["size_band"] == b)
             for b in M.SIZE_BANDS}
    assert targets["enterprise"]["actual_effort_share"] == pytest.approx(
        hours["enterprise"] / sum(hours.values()), abs=1e-5)
    assert targets["enterprise"]["allocation"] == "under-invested"
    assert s["over_invested"] == ["small_business", "mid_market"]  # lowest return first
    assert s["best_move"] == {"from": "small_business", "to": "enterprise"}
    ret = {k: t["expected_cm_per_selling_hour"] for k, t in targets.items()}
    assert ret["enterprise"] > ret["mid_market"] > ret["small_business"]
