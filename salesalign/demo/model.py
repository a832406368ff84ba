"""The demo company's world: planted parameters and the deal-level simulation (no I/O).

Everything is vectorised numpy. Random streams are children of ``SeedSequence(seed)`` (one per
component, see ``_STREAMS``); the big per-row tables draw from per-chunk grandchildren, so the
observational and the randomized runs share every draw except the practice assignment.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from salesalign.contract import LEAD_SOURCES, PRACTICE_ACTIVITY_TYPES, PREVIOUS_ROLES, ROUTINE_ACTIVITY_TYPES

from .presets import Preset

# ------------------------------------------------------------------ calendar
D0 = np.datetime64("2023-01-01", "D")  # day 0 of the window
EPOCH_D0 = int(D0.astype(np.int64))  # days since 1970-01-01
N_WINDOW_DAYS = 1096  # 2023-01-01 .. 2025-12-31 (deals are created in here)
N_HORIZON_DAYS = 1461  # .. 2026-12-31 (fx rates and finance data stop here)
LAST_WINDOW_DAY = N_WINDOW_DAYS - 1
N_WINDOW_MONTHS = 36
N_HORIZON_MONTHS = 48
DAY_US = 86_400_000_000
EXPORT_END_US = (EPOCH_D0 + N_WINDOW_DAYS) * DAY_US  # 2026-01-01 00:00, exclusive

_DAYS = D0 + np.arange(N_HORIZON_DAYS + 800)
DAY_TO_MONTH = (_DAYS.astype("datetime64[M]") - D0.astype("datetime64[M]")).astype(np.int64)
MONTH_START_DAY = (
    np.arange(N_HORIZON_MONTHS + 24).astype("timedelta64[M]") + D0.astype("datetime64[M]")
).astype("datetime64[D]") - D0
MONTH_START_DAY = MONTH_START_DAY.astype(np.int64)
DAY_TO_YEAR = _DAYS.astype("datetime64[Y]").astype(np.int64) + 1970

# ------------------------------------------------------------------ vocabularies
REGIONS = ("na", "emea", "apac")
REGION_SHARE = (0.45, 0.35, 0.20)
CURRENCIES = ("USD", "EUR", "AUD")  # index = region index
PRICE_BOOK = (1.0, 0.92, 1.50)  # local units per USD of list price
FX_START = (1.0, 1.08, 0.66)  # USD per unit at 2023-01-01
COUNTRIES = (("US", "CA"), ("DE", "FR", "NL", "ES", "IE"), ("AU", "NZ", "SG"))
INDUSTRIES = ("software", "manufacturing", "healthcare", "financial_services", "retail")
INDUSTRY_SHARE = (0.28, 0.22, 0.17, 0.18, 0.15)
SIZE_BANDS = ("small", "mid", "enterprise")
ROLES = PREVIOUS_ROLES
ROLE_SHARE = (0.35, 0.25, 0.15, 0.25)  # one per role, in ROLES order
PRACTICES = PRACTICE_ACTIVITY_TYPES
DISCOUNT_PRACTICE = PRACTICES.index("deep_discount_approval")  # its column: it sets the discount
ROUTINE = ROUTINE_ACTIVITY_TYPES
ACTIVITY_TYPE_NAMES = ROUTINE + PRACTICES

PRODUCTS = (  # id, name, family, USD list price, base cogs rate
    ("PRD-01", "Core Platform", "platform", 24_000, 0.22),
    ("PRD-02", "Platform Plus", "platform", 60_000, 0.18),
    ("PRD-03", "Insights", "analytics", 9_000, 0.30),
    ("PRD-04", "Insights Pro", "analytics", 18_000, 0.26),
    ("PRD-05", "Onboarding Services", "services", 6_000, 0.58),
    ("PRD-06", "Premium Support", "services", 12_000, 0.45),
)
PRODUCT_SHARE_BY_BAND = (
    (0.30, 0.05, 0.30, 0.10, 0.15, 0.10),
    (0.30, 0.15, 0.15, 0.20, 0.10, 0.10),
    (0.20, 0.35, 0.05, 0.20, 0.05, 0.15),
)
LEAD_SHARE_BY_BAND = (  # inbound, outbound, partner, event, referral
    (0.40, 0.25, 0.10, 0.15, 0.10),
    (0.25, 0.35, 0.15, 0.15, 0.10),
    (0.10, 0.45, 0.20, 0.10, 0.15),
)
assert tuple(LEAD_SOURCES) == ("inbound", "outbound", "partner", "event", "referral")

# ------------------------------------------------------------------ planted win model (logit scale)
LOG_AMOUNT_CENTER = float(np.log(50_000.0))  # log list amount in USD price-book terms
WIN = {
    "intercept": -0.6,
    "size_band": {"small": 0.3, "mid": 0.0, "enterprise": -0.9},
    "industry": {
        "software": 0.25,
        "manufacturing": -0.1,
        "healthcare": -0.25,
        "financial_services": 0.0,
        "retail": 0.1,
    },
    "region": {"na": 0.1, "emea": 0.0, "apac": -0.15},
    "lead_source": {"inbound": 0.4, "outbound": -0.5, "partner": 0.25, "event": 0.0, "referral": 0.6},
    "log_list_amount_centered": -0.35,
    "tenure_min60_over_60": 0.3,  # x min(tenure_months, 60) / 60
    "sigma_rep": 0.5,
}
HIRING = {  # added to logit win while the owner is in the first ramp_months months at deal creation
    "ramp_months": 12,
    "ramp_intercept": -0.8,
    "prior_industry_experience": 0.4,
    "previous_role": {"sdr": -0.1, "account_manager": 0.1, "consultant": 0.2, "other": 0.0},
}
PRACTICE_WIN_EFFECT = {  # by size band (small, mid, enterprise)
    "discovery_workshop": (0.0, 0.6, 0.6),
    "executive_sponsor_meeting": (-0.3, 0.3, 0.8),
    "proof_of_concept": (0.5, 0.5, 0.5),
    "deep_discount_approval": (0.7, 0.7, 0.7),
}
DEEP_DISCOUNT_POINTS = 0.20
PRACTICE_MINUTES = {  # mean, sd of one practice activity's duration
    "discovery_workshop": (240, 45),
    "executive_sponsor_meeting": (90, 20),
    "proof_of_concept": (2400, 360),
    "deep_discount_approval": (30, 8),
}
PRACTICE_TIMING = {  # practice activity happens at this fraction of [created_at, close_date)
    "discovery_workshop": (0.05, 0.40),
    "executive_sponsor_meeting": (0.20, 0.75),
    "proof_of_concept": (0.25, 0.80),
    "deep_discount_approval": (0.60, 0.95),
}
PROPENSITY = {  # logit P(practice) on observable pre-treatment covariates only
    "discovery_workshop": {
        "intercept": -0.6,
        "size_band": {"small": -1.0, "mid": 0.3, "enterprise": 0.8},
        "lead_source": {"inbound": 0.8, "outbound": -0.6, "partner": 0.2, "event": 0.0, "referral": 0.6},
        "industry": {"software": 0.3},
        "tenure_min36_over_36": 0.4,
    },
    "executive_sponsor_meeting": {
        "intercept": -1.6,
        "size_band": {"small": -1.2, "mid": 0.2, "enterprise": 1.8},
        "log_list_amount_centered": 0.35,
        "region": {"na": 0.2},
        "lead_source": {"referral": 0.3},
    },
    "proof_of_concept": {
        "intercept": -1.2,
        "size_band": {"small": 0.0, "mid": 0.2, "enterprise": 0.5},
        "log_list_amount_centered": 0.7,
        "industry": {"software": 0.6, "manufacturing": 0.4, "financial_services": -0.2, "retail": -0.4},
    },
    "deep_discount_approval": {
        "intercept": -1.9,
        "size_band": {"small": 0.5, "mid": 0.0, "enterprise": -0.2},
        "log_list_amount_centered": 0.3,
        "lead_source": {"outbound": 0.7, "event": 0.3},
        "region": {"apac": 0.3},
        "industry": {"retail": 0.4},
        "first_year_rep": 0.6,
    },
}
PROPENSITY_CLIP = (0.03, 0.97)

# ------------------------------------------------------------------ economics
COMMISSION_RATE = 0.08
SERVE = {  # annual cost to serve as a fraction of net bookings = base x factors x segment noise
    "base": 0.10,
    "industry": {
        "software": 0.8,
        "manufacturing": 1.4,
        "healthcare": 1.8,
        "financial_services": 1.0,
        "retail": 1.2,
    },
    "size_band": {"small": 1.6, "mid": 1.0, "enterprise": 0.7},
    "region": {"na": 1.0, "emea": 1.1, "apac": 1.3},
    "segment_noise_sigma": 0.25,
    "account_month_noise_sigma": 0.3,
}
CYCLE_MEDIAN_DAYS = (40.0, 70.0, 120.0)
CYCLE_SIGMA = 0.5
ROUTINE_SHARE = (0.30, 0.30, 0.20, 0.10, 0.10)  # call, email, meeting, demo, proposal_prep
ROUTINE_MINUTES = ((10, 30), (5, 15), (30, 60), (45, 90), (60, 180))
ACTIVITY_BAND_FACTOR = (0.8, 1.1, 1.4)
MONTH_SEASONALITY = (0.80, 0.90, 1.10, 1.00, 1.00, 1.05, 0.85, 0.75, 1.10, 1.15, 1.05, 0.70)
CREDIT_REASONS = ("service_issue", "billing_error", "goodwill", "scope_change")

_STREAMS = (
    "fx",
    "reps",
    "accounts",
    "contacts",
    "segments",
    "deals",
    "practice_obs",
    "practice_rct",
    "outcome",
    "practice_latent",
    "finance",
    "serve_noise",
    "costs",
    "activities",
    "stages",
)


def segment_ids() -> list[str]:
    return [f"{i}|{b}|{r}" for i in INDUSTRIES for b in SIZE_BANDS for r in REGIONS]


def seg_index(ind: np.ndarray, band: np.ndarray, reg: np.ndarray) -> np.ndarray:
    return (ind * len(SIZE_BANDS) + band) * len(REGIONS) + reg


def _lookup(table: dict, names: tuple[str, ...]) -> np.ndarray:
    return np.array([table.get(n, 0.0) for n in names])


def expit(x):
    return 1.0 / (1.0 + np.exp(-x))


@dataclass
class World:
    preset: Preset
    seed: int
    assignment: str
    rng: dict = field(default_factory=dict)
    chunk_seqs: dict = field(default_factory=dict)
    arrays: dict = field(default_factory=dict)

    def __getattr__(self, name):  # deal/rep/account arrays as attributes
        try:
            return self.__dict__["arrays"][name]
        except KeyError:
            raise AttributeError(name) from None


def build_world(p: Preset, seed: int, assignment: str = "observational") -> World:
    """Draw everything deal-level (no per-activity rows): the whole planted world."""
    if assignment not in ("observational", "randomized"):
        raise ValueError("assignment must be 'observational' or 'randomized'")
    children = np.random.SeedSequence(seed).spawn(len(_STREAMS))
    w = World(p, seed, assignment)
    w.rng = {n: np.random.Generator(np.random.PCG64(c)) for n, c in zip(_STREAMS, children, strict=True)}
    n_chunks = -(-p.n_opportunities // p.chunk_deals)
    seq = dict(zip(_STREAMS, children, strict=True))
    w.chunk_seqs = {k: seq[k].spawn(n_chunks) for k in ("activities", "stages")}
    a = w.arrays
    _fx(w, a)
    _reps(w, a)
    _accounts(w, a)
    _segments(w, a)
    _deals(w, a)
    _practices(w, a)
    _finance_latent(w, a)
    return w


def _fx(w: World, a: dict) -> None:
    r = w.rng["fx"]
    fx = np.ones((len(CURRENCIES), N_HORIZON_DAYS))
    for c in range(1, len(CURRENCIES)):
        walk = np.cumsum(r.normal(0.0, 0.004, N_HORIZON_DAYS))
        walk -= walk[0]
        fx[c] = np.round(FX_START[c] * np.exp(walk), 6)
    a["fx"] = fx


def _reps(w: World, a: dict) -> None:
    r = w.rng["reps"]
    n = w.preset.n_reps
    counts = np.maximum(3, np.round(np.array(REGION_SHARE) * n).astype(int))
    counts[0] += n - counts.sum()
    region = np.repeat(np.arange(3), counts)
    is_mgr = np.zeros(n, bool)
    manager = np.full(n, -1)
    team = np.zeros(n, int)
    start = 0
    for cnt in counts:
        n_mgr = max(1, round(cnt / 8))
        idx = np.arange(start, start + cnt)
        is_mgr[idx[:n_mgr]] = True
        team[idx[:n_mgr]] = np.arange(n_mgr)
        k = r.integers(0, n_mgr, cnt - n_mgr)
        manager[idx[n_mgr:]] = idx[:n_mgr][k]
        team[idx[n_mgr:]] = k
        start += cnt
    d_2018 = int((np.datetime64("2018-01-01") - D0).astype(int))
    d_2022 = int((np.datetime64("2022-01-01") - D0).astype(int))
    d_last_hire = int((np.datetime64("2025-10-31") - D0).astype(int))
    days = np.arange(d_2018, d_last_hire + 1)
    wts = 1.0 + 1.5 * (days - d_2018) / (d_last_hire - d_2018)  # hiring grows
    hire = r.choice(days, size=n, p=wts / wts.sum())
    hire[is_mgr] = r.integers(d_2018, d_2022, is_mgr.sum())
    leave = np.full(n, 10**6)
    quits = (~is_mgr) & (r.random(n) < 0.12) & (hire < LAST_WINDOW_DAY - 240)
    lo = hire[quits] + 180
    leave[quits] = lo + (r.random(quits.sum()) * (LAST_WINDOW_DAY - lo)).astype(int)
    prior = r.random(n) < 0.4
    role = r.choice(len(ROLES), size=n, p=ROLE_SHARE)
    years = np.where(is_mgr, r.integers(8, 21, n), r.integers(0, 16, n))
    u = r.normal(0.0, WIN["sigma_rep"], n)
    base_rate = np.clip(60.0 + 6.0 * np.minimum(years, 16) + r.normal(0, 8, n), 60.0, 170.0)
    years_from_2023 = DAY_TO_YEAR[MONTH_START_DAY[:N_HORIZON_MONTHS]] - 2023
    rate = np.clip(base_rate[:, None] * 1.03 ** years_from_2023[None, :], 60.0, 180.0)
    quota = np.round((400_000 + 40_000 * years + r.normal(0, 50_000, n)).clip(300_000) / 1000) * 1000
    quota[is_mgr] = 2_000_000
    a.update(
        rep_region=region,
        rep_is_mgr=is_mgr,
        rep_manager=manager,
        rep_team=team,
        rep_hire=hire,
        rep_leave=leave,
        rep_prior=prior,
        rep_role=role,
        rep_years=years,
        rep_u=u,
        rep_rate_cents=np.round(rate * 100).astype(np.int64),
        rep_quota=quota,
        rep_first=r.integers(0, 1000, n),
        rep_last=r.integers(0, 1000, n),
    )


def _accounts(w: World, a: dict) -> None:
    r = w.rng["accounts"]
    n = w.preset.n_accounts
    region = r.choice(3, size=n, p=REGION_SHARE)
    country = np.zeros(n, int)
    for reg, cs in enumerate(COUNTRIES):
        m = region == reg
        country[m] = r.integers(0, len(cs), m.sum())
    industry = r.choice(len(INDUSTRIES), size=n, p=INDUSTRY_SHARE)
    emp = np.clip(np.round(r.lognormal(np.log(300.0), 1.5, n)), 5, 250_000).astype(np.int64)
    band = np.where(emp < 200, 0, np.where(emp < 2000, 1, 2))
    rev_per_emp = r.lognormal(np.log(200_000.0), 0.4, n)
    price_book = np.array(PRICE_BOOK)[region]
    revenue_cents = np.round(emp * rev_per_emp * price_book / 1000.0) * 1000 * 100
    d_2018 = int((np.datetime64("2018-01-01") - D0).astype(int))
    created_s = r.integers(d_2018 * 86400, 0, n)  # seconds relative to D0, before 2023
    updated_s = created_s + (r.random(n) * (LAST_WINDOW_DAY * 86400 - created_s)).astype(np.int64)
    weight = r.lognormal(0.0, 0.8, n) * np.array([0.7, 1.0, 1.6])[band]
    a.update(
        acc_region=region,
        acc_country=country,
        acc_industry=industry,
        acc_emp=emp,
        acc_band=band,
        acc_revenue_cents=revenue_cents,
        acc_created_s=created_s,
        acc_updated_s=updated_s,
        acc_weight=weight,
        acc_name1=r.integers(0, 1000, n),
        acc_name2=r.integers(0, 1000, n),
        acc_serve_noise=_serve_noise(w, n),
    )


def _serve_noise(w: World, n_accounts: int) -> np.ndarray:
    s = SERVE["account_month_noise_sigma"]
    return w.rng["serve_noise"].lognormal(-s * s / 2.0, s, (n_accounts, N_HORIZON_MONTHS))


def _segments(w: World, a: dict) -> None:
    r = w.rng["segments"]
    rate = np.zeros(len(INDUSTRIES) * 3 * 3)
    for i, ind in enumerate(INDUSTRIES):
        for b, band in enumerate(SIZE_BANDS):
            for g, reg in enumerate(REGIONS):
                rate[seg_index(i, b, g)] = (
                    SERVE["base"] * SERVE["industry"][ind] * SERVE["size_band"][band] * SERVE["region"][reg]
                )
    rate *= r.lognormal(0.0, SERVE["segment_noise_sigma"], rate.size)
    a["serve_rate"] = np.round(rate, 4)
    cogs = np.zeros((len(PRODUCTS), 4))  # years 2023..2026
    base = np.array([p[4] for p in PRODUCTS])
    drift = np.cumsum(r.normal(0.0, 0.02, (len(PRODUCTS), 4)), axis=1)
    cogs[:] = np.clip(base[:, None] + drift, 0.15, 0.60)
    a["cogs"] = np.round(cogs, 4)


def _deals(w: World, a: dict) -> None:
    r = w.rng["deals"]
    n = w.preset.n_opportunities
    acc = r.choice(w.preset.n_accounts, size=n, p=a["acc_weight"] / a["acc_weight"].sum())
    region, band, ind = a["acc_region"][acc], a["acc_band"][acc], a["acc_industry"][acc]
    # creation day: weekdays, monthly seasonality, 15%/year growth
    days = np.arange(N_WINDOW_DAYS)
    dow = (days + 6) % 7  # 2023-01-01 was a Sunday -> 6
    wts = np.where(dow < 5, 1.0, 0.08) * np.array(MONTH_SEASONALITY)[DAY_TO_MONTH[days] % 12]
    wts *= 1.15 ** (days / 365.25)
    created_day = np.sort(r.choice(days, size=n, p=wts / wts.sum()))
    created_s = created_day * 86400 + r.integers(8 * 3600, 18 * 3600, n)
    product = np.zeros(n, int)
    lead = np.zeros(n, int)
    for b in range(3):
        m = band == b
        product[m] = r.choice(len(PRODUCTS), size=m.sum(), p=PRODUCT_SHARE_BY_BAND[b])
        lead[m] = r.choice(5, size=m.sum(), p=LEAD_SHARE_BY_BAND[b])
    emp = a["acc_emp"][acc]
    qty = 1 + r.poisson(np.clip(np.sqrt(emp / 100.0), 0.2, 30.0))
    usd_price = np.array([p[3] for p in PRODUCTS])[product]
    local_price = np.round(usd_price * np.array(PRICE_BOOK)[region])
    list_cents = (qty * local_price * 100).astype(np.int64)
    log_amt_c = np.log(qty * usd_price) - LOG_AMOUNT_CENTER
    routine_disc = r.beta(2.0, 23.0, n)
    cycle = np.clip(np.round(np.array(CYCLE_MEDIAN_DAYS)[band] * r.lognormal(0.0, CYCLE_SIGMA, n)), 7, 540)
    close = created_day + cycle.astype(np.int64)
    # quarter-end bump: deals that would close late in a quarter get pulled to its last days
    qe = _quarter_end_day(close)
    bump = (qe - close <= 30) & (r.random(n) < 0.5)
    close = np.where(bump, np.maximum(close, qe - r.integers(0, 4, n)), close)
    closed = close <= LAST_WINDOW_DAY
    # owner: a rep of the account's region employed from creation to close (or export)
    owner = np.full(n, -1)
    stay_until = np.minimum(close, LAST_WINDOW_DAY)
    for reg in range(3):
        reps = np.flatnonzero(a["rep_region"] == reg)
        pending = np.flatnonzero(region == reg)
        for _ in range(200):
            if pending.size == 0:
                break
            cand = reps[r.integers(0, reps.size, pending.size)]
            ok = (a["rep_hire"][cand] <= created_day[pending]) & (a["rep_leave"][cand] > stay_until[pending])
            owner[pending[ok]] = cand[ok]
            pending = pending[~ok]
        if pending.size:
            mgrs = np.flatnonzero((a["rep_region"] == reg) & a["rep_is_mgr"])
            owner[pending] = mgrs[r.integers(0, mgrs.size, pending.size)]
    tenure = (created_day - a["rep_hire"][owner]) / 30.4375
    a.update(
        deal_acc=acc,
        deal_region=region,
        deal_band=band,
        deal_ind=ind,
        deal_seg=seg_index(ind, band, region),
        deal_created_day=created_day,
        deal_created_s=created_s,
        deal_product=product,
        deal_lead=lead,
        deal_qty=qty,
        deal_list_cents=list_cents,
        deal_log_amt_c=log_amt_c,
        deal_routine_disc=routine_disc,
        deal_close=close,
        deal_closed=closed,
        deal_owner=owner,
        deal_tenure=tenure,
        deal_first_year=tenure < HIRING["ramp_months"],
        deal_u_win=w.rng["outcome"].random(n),
    )
    a["deal_base_logit"] = base_logit(a)


def _quarter_end_day(day: np.ndarray) -> np.ndarray:
    m = (D0 + day).astype("datetime64[M]").astype(np.int64)  # months since 1970-01
    next_q = (m // 3 + 1) * 3
    return (next_q.astype("datetime64[M]").astype("datetime64[D]") - D0).astype(np.int64) - 1


def ramp_logit(first_year: np.ndarray, prior: np.ndarray, role: np.ndarray) -> np.ndarray:
    role_eff = _lookup(HIRING["previous_role"], ROLES)[role]
    return first_year * (HIRING["ramp_intercept"] + HIRING["prior_industry_experience"] * prior + role_eff)


def base_logit(a: dict, prior=None, role=None) -> np.ndarray:
    """Logit P(win) without practices (covariates + rep effect + ramp)."""
    owner = a["deal_owner"]
    x = (
        WIN["intercept"]
        + _lookup(WIN["size_band"], SIZE_BANDS)[a["deal_band"]]
        + _lookup(WIN["industry"], INDUSTRIES)[a["deal_ind"]]
        + _lookup(WIN["region"], REGIONS)[a["deal_region"]]
        + _lookup(WIN["lead_source"], LEAD_SOURCES)[a["deal_lead"]]
        + WIN["log_list_amount_centered"] * a["deal_log_amt_c"]
        + WIN["tenure_min60_over_60"] * np.clip(a["deal_tenure"], 0, 60) / 60.0
        + a["rep_u"][owner]
    )
    prior = a["rep_prior"][owner] if prior is None else prior
    role = a["rep_role"][owner] if role is None else role
    return x + ramp_logit(a["deal_first_year"], prior, role)


def practice_logit(a: dict, treat: np.ndarray) -> np.ndarray:
    """Sum of practice effects on logit P(win); treat is (n_deals, n_practices) bool."""
    eff = np.array([PRACTICE_WIN_EFFECT[p] for p in PRACTICES])  # (n_practices, n_size_bands)
    return (treat * eff[:, a["deal_band"]].T).sum(axis=1)


def propensities(a: dict) -> np.ndarray:
    n = a["deal_band"].size
    out = np.zeros((n, len(PRACTICES)))
    for k, p in enumerate(PRACTICES):
        c = PROPENSITY[p]
        x = np.full(n, c["intercept"])
        x += _lookup(c.get("size_band", {}), SIZE_BANDS)[a["deal_band"]]
        x += _lookup(c.get("industry", {}), INDUSTRIES)[a["deal_ind"]]
        x += _lookup(c.get("region", {}), REGIONS)[a["deal_region"]]
        x += _lookup(c.get("lead_source", {}), LEAD_SOURCES)[a["deal_lead"]]
        x += c.get("log_list_amount_centered", 0.0) * a["deal_log_amt_c"]
        x += c.get("tenure_min36_over_36", 0.0) * np.clip(a["deal_tenure"], 0, 36) / 36.0
        x += c.get("first_year_rep", 0.0) * a["deal_first_year"]
        out[:, k] = np.clip(expit(x), *PROPENSITY_CLIP)
    return out


def _practices(w: World, a: dict) -> None:
    n = w.preset.n_opportunities
    a["deal_propensity"] = propensities(a)
    u_obs = w.rng["practice_obs"].random((n, len(PRACTICES)))
    coin = w.rng["practice_rct"].random((n, len(PRACTICES))) < 0.5
    a["deal_treat"] = coin if w.assignment == "randomized" else u_obs < a["deal_propensity"]
    # latent practice activity (time within the cycle, duration): drawn for every deal and practice,
    # emitted as an activity only when the deal is treated
    r = w.rng["practice_latent"]
    created_us = (EPOCH_D0 * 86400 + a["deal_created_s"]) * 1_000_000
    close0_us = (EPOCH_D0 + a["deal_close"]) * DAY_US
    t_us = np.zeros((n, len(PRACTICES)), np.int64)
    minutes = np.zeros((n, len(PRACTICES)), np.int64)
    for k, p in enumerate(PRACTICES):
        lo, hi = PRACTICE_TIMING[p]
        f = lo + (hi - lo) * r.random(n)
        t_us[:, k] = (created_us + (f * (close0_us - created_us)).astype(np.int64)) // 1_000_000 * 1_000_000
        mu, sd = PRACTICE_MINUTES[p]
        minutes[:, k] = np.maximum(15, np.round(r.normal(mu, sd, n) / 15.0) * 15).astype(np.int64)
    day = np.minimum(t_us // DAY_US - EPOCH_D0, N_HORIZON_DAYS - 1)
    rate = a["rep_rate_cents"][a["deal_owner"][:, None], DAY_TO_MONTH[day]]
    a.update(deal_ptime_us=t_us, deal_pminutes=minutes, deal_peffort=minutes / 60.0 * rate / 100.0)


def _finance_latent(w: World, a: dict) -> None:
    r = w.rng["finance"]
    n = w.preset.n_opportunities
    n_inv = r.choice(3, size=n, p=(0.5, 0.3, 0.2)) + 1
    inv_days = np.zeros((n, 3), np.int64)
    inv_days[:, 0] = a["deal_close"] + r.integers(0, 11, n)
    inv_days[:, 1] = inv_days[:, 0] + 30 + r.integers(0, 6, n)
    inv_days[:, 2] = inv_days[:, 1] + 30 + r.integers(0, 6, n)
    credit = r.random(n) < 0.05
    credit_frac = r.uniform(0.05, 0.20, n)
    credit_day = inv_days[:, 0] + r.integers(7, 61, n)
    credit_reason = r.integers(0, len(CREDIT_REASONS), n)
    close_m = DAY_TO_MONTH[np.minimum(a["deal_close"], N_HORIZON_DAYS - 1)]
    paid_day = MONTH_START_DAY[close_m + 1] + 14
    a.update(
        deal_n_inv=n_inv,
        deal_inv_days=inv_days,
        deal_credit=credit,
        deal_credit_frac=credit_frac,
        deal_credit_day=credit_day,
        deal_credit_reason=credit_reason,
        deal_paid_day=paid_day,
        deal_close_month=close_m,
    )


# ------------------------------------------------------------------ economics of one deal
def amount_cents(a: dict, deep_discount: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    disc = np.round(a["deal_routine_disc"][idx] + DEEP_DISCOUNT_POINTS * deep_discount, 4)
    return np.round(a["deal_list_cents"][idx] * (1.0 - disc)).astype(np.int64), disc


def invoice_parts(amount: np.ndarray, n_inv: np.ndarray) -> np.ndarray:
    """(n, 3) invoice amounts in cents: equal parts, the last one takes the remainder."""
    base = amount // n_inv
    parts = np.where(np.arange(3)[None, :] < n_inv[:, None], base[:, None], 0)
    last = n_inv - 1
    parts[np.arange(amount.size), last] += amount - base * n_inv
    return parts


def won_value_usd(w: World, idx: np.ndarray, amount: np.ndarray) -> dict[str, np.ndarray]:
    """USD economics of deals `idx` if won with net bookings `amount` (cents, local currency).

    Returns net revenue, cogs, commission, expected service cost (noise 1), realised service cost
    (with the account-month noise) and the value-if-won (expected and realised), all in USD.
    """
    a = w.arrays
    fx = a["fx"]
    cur = a["deal_region"][idx]
    parts = invoice_parts(amount, a["deal_n_inv"][idx])
    days = a["deal_inv_days"][idx]
    inv_usd = (parts * fx[cur[:, None], np.minimum(days, N_HORIZON_DAYS - 1)]).sum(axis=1) / 100.0
    credit_cents = np.where(a["deal_credit"][idx], np.round(a["deal_credit_frac"][idx] * parts[:, 0]), 0)
    credit_usd = credit_cents * fx[cur, a["deal_credit_day"][idx]] / 100.0
    net_rev = inv_usd - credit_usd
    year = DAY_TO_YEAR[a["deal_close"][idx]] - 2023
    cogs = a["cogs"][a["deal_product"][idx], year] * net_rev
    commission = np.round(COMMISSION_RATE * amount) * fx[cur, a["deal_paid_day"][idx]] / 100.0
    monthly = a["serve_rate"][a["deal_seg"][idx]] * amount / 12.0 / 100.0
    acc = a["deal_acc"][idx]
    serve_exp = np.zeros(idx.size)
    serve_real = np.zeros(idx.size)
    for k in range(1, 13):
        m = a["deal_close_month"][idx] + k
        f = fx[cur, MONTH_START_DAY[m]] * monthly
        serve_exp += f
        serve_real += f * a["acc_serve_noise"][acc, m]
    base = net_rev - cogs - commission
    return {
        "invoiced": inv_usd,
        "credits": credit_usd,
        "net_revenue": net_rev,
        "cogs": cogs,
        "commission": commission,
        "serve_expected": serve_exp,
        "serve_realised": serve_real,
        "value_expected": base - serve_exp,
        "value_realised": base - serve_real,
    }


# ------------------------------------------------------------------ per-row chunks
def activity_chunk(w: World, c: int) -> dict[str, np.ndarray]:
    """Activities of deals [c*chunk, (c+1)*chunk): deal index, type code, start (us), minutes."""
    a = w.arrays
    lo = c * w.preset.chunk_deals
    hi = min(lo + w.preset.chunk_deals, w.preset.n_opportunities)
    r = np.random.Generator(np.random.PCG64(w.chunk_seqs["activities"][c]))
    deals = np.arange(lo, hi)
    band = a["deal_band"][deals]
    lam = w.preset.activities_per_deal * np.array(ACTIVITY_BAND_FACTOR)[band] / 1.0
    cnt = r.poisson(lam)
    d = np.repeat(deals, cnt)
    created_us = (EPOCH_D0 * 86400 + a["deal_created_s"][d]) * 1_000_000
    end_us = (EPOCH_D0 + a["deal_close"][d]) * DAY_US + 18 * 3_600_000_000
    span = np.maximum(end_us - created_us, 3_600_000_000)
    start = (created_us + (r.random(d.size) * span).astype(np.int64)) // 1_000_000 * 1_000_000
    typ = np.searchsorted(np.cumsum(ROUTINE_SHARE), r.random(d.size) * 0.999999, side="right")
    mlo = np.array([m[0] for m in ROUTINE_MINUTES])[typ]
    mhi = np.array([m[1] for m in ROUTINE_MINUTES])[typ]
    minutes = (np.round((mlo + r.random(d.size) * (mhi - mlo)) / 5.0) * 5).astype(np.int64)
    parts_d, parts_t, parts_s, parts_m = [d], [typ], [start], [minutes]
    treat = a["deal_treat"][deals]
    for k in range(len(PRACTICES)):
        m = treat[:, k]
        pd = deals[m]
        parts_d.append(pd)
        parts_t.append(np.full(pd.size, len(ROUTINE) + k))
        parts_s.append(a["deal_ptime_us"][pd, k])
        parts_m.append(a["deal_pminutes"][pd, k])
    d, typ, start, minutes = (np.concatenate(x) for x in (parts_d, parts_t, parts_s, parts_m))
    keep = start < EXPORT_END_US
    d, typ, start, minutes = d[keep], typ[keep], start[keep], minutes[keep]
    order = np.lexsort((typ, start, d))
    d, typ, start, minutes = d[order], typ[order], start[order], minutes[order]
    day = start // DAY_US - EPOCH_D0
    rate = a["rep_rate_cents"][a["deal_owner"][d], DAY_TO_MONTH[day]]
    return {
        "deal": d,
        "type": typ,
        "start_us": start,
        "minutes": minutes,
        "effort_usd": minutes / 60.0 * rate / 100.0,
        "lo": lo,
        "hi": hi,
    }


def stage_chunk(w: World, c: int, won: np.ndarray) -> dict[str, np.ndarray]:
    """Stage history rows of the chunk's deals: deal, stage code (index into STAGES), time (us)."""
    a = w.arrays
    lo = c * w.preset.chunk_deals
    hi = min(lo + w.preset.chunk_deals, w.preset.n_opportunities)
    r = np.random.Generator(np.random.PCG64(w.chunk_seqs["stages"][c]))
    deals = np.arange(lo, hi)
    n = deals.size
    closed = a["deal_closed"][deals]
    created_us = (EPOCH_D0 * 86400 + a["deal_created_s"][deals]) * 1_000_000
    close0_us = (EPOCH_D0 + a["deal_close"][deals]) * DAY_US
    drop = r.choice(5, size=n, p=(0.25, 0.25, 0.2, 0.2, 0.1)) + 1  # open stages reached by lost deals
    elapsed = (EXPORT_END_US - created_us) / np.maximum(close0_us - created_us, 1)
    reached_open = np.minimum(5, 1 + np.floor(np.clip(elapsed, 0, 0.999) * 5)).astype(np.int64)
    n_open = np.where(closed, np.where(won[deals], 5, drop), reached_open)
    span_end = np.where(closed, close0_us, EXPORT_END_US - 1_000_000)
    span = span_end - created_us
    d_rep = np.repeat(np.arange(n), n_open)
    j = np.arange(d_rep.size) - np.repeat(np.cumsum(n_open) - n_open, n_open)
    nn = n_open[d_rep]
    frac = np.where(j == 0, 0.0, (j + 0.8 * r.random(d_rep.size)) / nn)
    t = (created_us[d_rep] + (frac * span[d_rep]).astype(np.int64)) // 1_000_000 * 1_000_000
    t = np.maximum(t, created_us[d_rep] // 1_000_000 * 1_000_000 + j * 1_000_000)
    stage = j.copy()
    # closing rows
    cidx = np.flatnonzero(closed)
    ct = close0_us[cidx] + r.integers(9 * 3600, 18 * 3600, cidx.size) * 1_000_000
    cs = np.where(won[deals[cidx]], 5, 6)
    d_all = np.concatenate([d_rep, cidx])
    s_all = np.concatenate([stage, cs])
    t_all = np.concatenate([t, ct])
    order = np.lexsort((t_all, d_all))
    return {"deal": deals[d_all[order]], "stage": s_all[order], "time_us": t_all[order], "lo": lo, "hi": hi}
