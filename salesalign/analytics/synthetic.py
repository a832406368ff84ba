"""A synthetic closed-deal frame with known practice effects, in the columns causal.yml declares.

Used by the estimator tests (known effects, randomised or confounded, with or without overlap) and by
the speed benchmark on 1M deals when the large demo pipeline is not at hand.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

INDUSTRIES = ("software", "manufacturing", "healthcare", "financial_services", "retail")
BANDS = ("small", "mid", "enterprise")
REGIONS = ("na", "emea", "apac")
LEADS = ("inbound", "outbound", "partner", "event", "referral")
ROLES = ("sdr", "account_manager", "consultant", "other")
PRACTICES = ("discovery_workshop", "executive_sponsor_meeting", "proof_of_concept", "deep_discount_approval")
WIN_EFFECT = {
    "discovery_workshop": 0.5,
    "executive_sponsor_meeting": 0.3,
    "proof_of_concept": 0.0,
    "deep_discount_approval": 0.7,
}  # logit scale
MARGIN_EFFECT = {
    "discovery_workshop": 3_000.0,
    "executive_sponsor_meeting": 1_000.0,
    "proof_of_concept": -4_000.0,
    "deep_discount_approval": -2_000.0,
}  # added to the contribution margin of every deal


def _expit(x):
    return 1 / (1 + np.exp(-x))


def synthetic_deals(
    n: int, seed: int = 0, assignment: str = "confounded", overlap: bool = True
) -> tuple[pd.DataFrame, dict]:
    """(frame, truth): truth[practice][outcome] = {"ate": ..., "att": ...} computed from potential outcomes.

    assignment: "confounded" (propensity depends on covariates that also drive the outcome) or
    "randomized" (coin flips). overlap=False makes discovery_workshop deterministic in the size band.
    """
    rng = np.random.default_rng(seed)
    band = rng.choice(3, n, p=(0.5, 0.35, 0.15))
    ind = rng.choice(5, n)
    reg = rng.choice(3, n, p=(0.45, 0.35, 0.2))
    lead = rng.choice(5, n)
    log_emp = np.log(1 + np.exp(3 + 1.5 * band + rng.normal(0, 0.5, n)))
    log_amt = np.log(1 + np.exp(10 + 0.6 * band + rng.normal(0, 0.6, n)))
    tenure = np.minimum(rng.gamma(2.0, 15.0, n), 60)
    role = rng.choice(4, n)
    prior = rng.random(n) < 0.4
    first_year = tenure < 12
    base = (
        -0.3
        + np.array([0.3, 0.0, -0.9])[band]
        + np.array([0.4, -0.5, 0.25, 0.0, 0.6])[lead]
        - 0.35 * (log_amt - 10.3)
        + 0.3 * tenure / 60
        - 0.8 * first_year
        + 0.3 * prior * first_year
    )
    frame = pd.DataFrame(
        {
            "opportunity_id": np.arange(n).astype(str),
            "segment_id": [
                f"{INDUSTRIES[i]}|{BANDS[b]}|{REGIONS[r]}" for i, b, r in zip(ind, band, reg, strict=True)
            ],
            "size_band": np.array(BANDS)[band],
            "log_employee_count": log_emp,
            "industry": np.array(INDUSTRIES)[ind],
            "region": np.array(REGIONS)[reg],
            "lead_source": np.array(LEADS)[lead],
            "log_list_amount": log_amt,
            "rep_tenure_months": tenure,
            "rep_tenure_months_capped_36": np.minimum(tenure, 36),
            "first_year_rep": first_year,
            "prior_industry_experience": prior,
            "previous_role": np.array(ROLES)[role],
        }
    )
    treat = {}
    for k, p in enumerate(PRACTICES):
        if assignment == "randomized":
            e = np.full(n, 0.5)
        else:
            # selection on the same covariates that drive winning: reps use practices on promising deals
            e = _expit(
                -1.0 + 0.5 * k / 3 + 0.8 * (base - base.mean()) + 0.5 * (band == 2) + 0.4 * (lead == 0)
            )
        if not overlap and p == "discovery_workshop":
            e = np.where(band == 0, 0.0, 1.0)
        treat[p] = rng.random(n) < e
        frame[f"treat__{p}"] = treat[p]
    logit_win = base + sum(WIN_EFFECT[p] * treat[p] for p in PRACTICES)
    u = rng.random(n)
    frame["win"] = u < _expit(logit_win)
    value = np.exp(log_amt) * 0.5
    noise = rng.normal(0, 2_000, n)
    margin_wo = frame["win"].to_numpy() * value + noise
    frame["contribution_margin"] = margin_wo + sum(MARGIN_EFFECT[p] * treat[p] for p in PRACTICES)
    frame["days_to_close"] = np.round(np.exp(4 + 0.4 * band + rng.normal(0, 0.4, n)))
    truth = {}
    for p in PRACTICES:
        lp1 = logit_win + WIN_EFFECT[p] * (1 - treat[p])
        lp0 = logit_win - WIN_EFFECT[p] * treat[p]
        dwin = _expit(lp1) - _expit(lp0)
        # margin: the practice's direct effect plus the value of the extra wins it causes
        dmargin = MARGIN_EFFECT[p] + dwin * value
        t = treat[p]
        truth[p] = {
            "win": {"ate": float(dwin.mean()), "att": float(dwin[t].mean()) if t.any() else None},
            "contribution_margin": {
                "ate": float(dmargin.mean()),
                "att": float(dmargin[t].mean()) if t.any() else None,
            },
            "days_to_close": {"ate": 0.0, "att": 0.0},
        }
    return frame, truth
