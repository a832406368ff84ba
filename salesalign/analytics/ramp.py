"""Talent ramp: how fast new reps get productive, by hiring profile and hire cohort, and which traits help.

Rows of ``rep_ramp`` (column ``kind``):

* ``hiring_profile`` (prior industry experience x previous role) and ``hire_cohort`` (hire year):
  reps hired inside the data window, time from hire to first won deal (Kaplan-Meier median, reps
  without a win yet are censored at the end of the window), first-year win rate (deals created in the
  rep's first 12 months; rep-clustered interval) and first-year contribution margin per rep (reps
  whose first year ended inside the window; t interval over reps).
* ``trait_effect``: the adjusted effect of each hiring trait on winning during the first year. A
  logistic GLMM (random intercept per rep, the Laplace fit of ``variance``) of win on the deal mix,
  rep tenure, a first-year indicator, the traits and first-year x trait interactions: the rep's
  lasting skill is the random intercept, a trait's lasting difference its main effect, and its ramp
  effect the interaction. ``estimate`` is the interaction (logit scale, reference role ``other``),
  ``ame_first_year_win`` its average marginal effect on P(win) over first-year deals (delta method).
  ``ci_low/high`` are per-trait 95% intervals; ``simultaneous_ci_low/high`` hold for all traits at
  once (Bonferroni): read those when asking "which traits matter", since with four traits one of four
  per-trait intervals misses its truth about one time in five.
  Not a rep fixed-effects logit: that only learns from reps with deals both inside and after their
  first year (about half of the ramping reps on the demo), and its clustered SEs are too small.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.stats
from scipy.special import expit

from salesalign.analytics.blas import single_threaded
from salesalign.analytics.decision_data import add_mix_columns, has_margin, period_columns
from salesalign.analytics.design import design_matrix
from salesalign.analytics.estimators import independent_columns, normal_interval
from salesalign.analytics.ratios import grouped_ratios
from salesalign.analytics.registry import analysis, columns, table
from salesalign.analytics.variance import MIX as VARIANCE_MIX
from salesalign.analytics.variance import fit_logistic, separated_strata

if TYPE_CHECKING:
    from salesalign.analytics.runner import AnalysisInputs

# Below this many reps with first-year deals the trait effects rest on a handful of people: on the small
# demo (18 ramping reps) the prior-experience estimate was -0.61 [-1.24, 0.01] against a planted +0.4.
MIN_RAMPING_REPS = 30
REFERENCE_ROLE = "other"
# The rep-variance model's deal mix without first_year_rep: the ramp measures the first year itself.
MIX = {name: kind for name, kind in VARIANCE_MIX.items() if name != "first_year_rep"}
Z95 = scipy.stats.norm.ppf(0.975)


def _km_median(days: np.ndarray, event: np.ndarray) -> float:
    """Kaplan-Meier median of time to event (NaN when survival never drops to 0.5)."""
    order = np.argsort(days, kind="stable")
    days, event = days[order], event[order]
    at_risk = len(days)
    surv = 1.0
    for t in np.unique(days):
        here = days == t
        d = int(event[here].sum())
        if d:
            surv *= 1 - d / at_risk
            if surv <= 0.5:
                return float(t)
        at_risk -= int(here.sum())
    return float("nan")


def _profile_label(prior, role) -> str:
    if pd.isna(prior):
        return f"prior industry experience unknown | {role}"
    return f"{'prior industry experience' if bool(prior) else 'no prior industry experience'} | {role}"


def _rep_facts(deals: pd.DataFrame, reps: pd.DataFrame) -> pd.DataFrame:
    """Per rep hired inside the window: days to first win (censored), first-year deals and margin."""
    start, end = deals.created_date.min(), deals.close_date.max()
    owners = reps[reps.rep_id.isin(deals.rep_id.unique()) & (reps.hire_date >= start)].copy()
    won = deals[deals.is_won].groupby("rep_id").close_date.min()
    owners["first_win"] = owners.rep_id.map(won)
    owners["event"] = owners.first_win.notna()
    owners["days_to_first_win"] = ((owners.first_win.fillna(end) - owners.hire_date).dt.days).clip(lower=0)
    owners["full_first_year"] = owners.hire_date + pd.Timedelta(days=365) <= end
    fy = deals[deals.created_date < deals.hire_date + pd.Timedelta(days=365)]
    fy_cm = fy.groupby("rep_id").contribution_margin.sum()
    # no cost data: first-year margin is unknown (null), not 0
    owners["first_year_cm"] = owners.rep_id.map(fy_cm).fillna(0.0) if has_margin(deals) else np.nan
    owners["profile"] = [
        _profile_label(p, r)
        for p, r in zip(owners.prior_industry_experience, owners.previous_role.fillna("unknown"), strict=True)
    ]
    owners["cohort"] = owners.hire_date.dt.year.astype(str)
    return owners


def _group_rows(kind: str, key: str, owners: pd.DataFrame, fy_deals: pd.DataFrame) -> list[dict]:
    rows = []
    rates = grouped_ratios(
        fy_deals.assign(won=fy_deals.is_won.astype(float), one=1.0), key, "won", "one", "rep_id"
    )
    rates = rates.set_index(key)
    for name, g in owners.groupby(key):
        full = g[g.full_first_year].first_year_cm
        n_full = len(full)
        mean_cm = float(full.mean()) if n_full else float("nan")
        half = (
            (scipy.stats.t.ppf(0.975, n_full - 1) * full.std(ddof=1) / np.sqrt(n_full))
            if n_full > 1
            else np.nan
        )
        r = rates.loc[name] if name in rates.index else None
        rows.append(
            {
                "kind": kind,
                "group_name": str(name),
                "n_reps": len(g),
                "n_reps_with_win": int(g.event.sum()),
                "median_days_to_first_win": _km_median(
                    g.days_to_first_win.to_numpy(float), g.event.to_numpy(bool)
                ),
                "n_first_year_deals": int(r.den) if r is not None else 0,
                "first_year_win_rate": r.estimate if r is not None else np.nan,
                "first_year_win_rate_ci_low": r.ci_low if r is not None else np.nan,
                "first_year_win_rate_ci_high": r.ci_high if r is not None else np.nan,
                "n_reps_full_first_year": n_full,
                "first_year_cm_per_rep": mean_cm,
                "first_year_cm_ci_low": mean_cm - half,
                "first_year_cm_ci_high": mean_cm + half,
                "method": "Kaplan-Meier median (censored at window end); rep-clustered win rate; "
                "t interval over reps",
                "status": "ok" if n_full >= 3 else "fewer than 3 reps with a complete first year",
            }
        )
    return rows


def trait_effects(deals: pd.DataFrame) -> list[dict]:
    """Logistic GLMM (random intercept per rep) with first-year x trait interactions (module docstring)."""
    # strata where every deal was won or lost have no finite coefficient: left out, and said so
    keep, dropped = separated_strata(deals, deals.is_won.to_numpy(float), MIX)
    left_out = (
        f"; left out {int((~keep).sum()):,} deals of strata where every deal was won or lost: "
        + "; ".join(dropped)
        if dropped
        else ""
    )
    d = add_mix_columns(deals[keep])
    fy = d.first_year_rep.to_numpy(float)
    role = d.previous_role.fillna("unknown").astype(str)
    traits = {"prior_industry_experience": d.prior_industry_experience.fillna(False).to_numpy(float)}
    for r in sorted(set(role) - {REFERENCE_ROLE}):
        traits[f"previous_role_{r}"] = (role == r).to_numpy(float)
    names = list(traits)
    mix = design_matrix(d, MIX).X
    X = np.column_stack([mix, fy, *traits.values(), *(fy * v for v in traits.values())])
    keep = np.sort(independent_columns(X))
    inter_cols = np.arange(X.shape[1] - len(names), X.shape[1])
    if not np.all(np.isin(inter_cols, keep)) or fy.sum() < 30:
        return [
            {
                "kind": "trait_effect",
                "group_name": t,
                "status": "not estimable: too few first-year deals or "
                "no variation of the trait among ramping reps",
            }
            for t in names
        ]
    X = X[:, keep]
    pos = {t: int(np.flatnonzero(keep == c)[0]) for t, c in zip(names, inter_cols, strict=True)}
    fit = fit_logistic(d.is_won.to_numpy(float), X, d.rep_id, "win")
    beta, cov = fit.beta, fit.cov_beta
    codes = pd.Index(fit.reps).get_indexer(d.rep_id)
    eta = fit.fixed_prediction + fit.effects[codes]
    in_fy = fy > 0
    n_ramping = int(len(np.unique(codes[in_fy])))
    z_family = scipy.stats.norm.ppf(1 - 0.05 / (2 * len(names)))  # Bonferroni over the traits
    rows = []
    for t in names:
        j = pos[t]
        est, se = float(beta[j]), float(np.sqrt(cov[j, j]))
        (lo, hi), p = normal_interval(est, se)
        # AME over first-year deals: the trait's ramp term on versus off, everything else as observed
        x_fy = X[in_fy]
        base = eta[in_fy] - x_fy[:, j] * beta[j]
        p1, p0 = expit(base + beta[j]), expit(base)
        g1, g0 = x_fy.copy(), x_fy.copy()
        g1[:, j], g0[:, j] = 1.0, 0.0
        grad = ((p1 * (1 - p1))[:, None] * g1 - (p0 * (1 - p0))[:, None] * g0).mean(axis=0)
        ame, ame_se = float(np.mean(p1 - p0)), float(np.sqrt(grad @ cov @ grad))
        rows.append(
            {
                "kind": "trait_effect",
                "group_name": t,
                "n_reps": n_ramping,
                "n_first_year_deals": int(in_fy.sum()),
                "estimate": est,
                "std_error": se,
                "ci_low": lo,
                "ci_high": hi,
                "simultaneous_ci_low": est - z_family * se,
                "simultaneous_ci_high": est + z_family * se,
                "p_value": p,
                "ame_first_year_win": ame,
                "ame_ci_low": ame - Z95 * ame_se,
                "ame_ci_high": ame + Z95 * ame_se,
                "method": "logistic GLMM (Laplace, random intercept per rep) of win on deal mix, tenure, "
                "first year, traits and first-year x trait; estimate = the interaction (logit, reference "
                f"role '{REFERENCE_ROLE}'); simultaneous interval: Bonferroni over {len(names)} traits; "
                "AME over first-year deals by the delta method" + left_out,
                "status": "ok"
                if n_ramping >= MIN_RAMPING_REPS
                else f"fragile: only {n_ramping} reps with first-year deals (need {MIN_RAMPING_REPS}); "
                "intervals are likely too narrow",
            }
        )
    return rows


@single_threaded
def rep_ramp(deals: pd.DataFrame | None, reps: pd.DataFrame | None) -> pd.DataFrame:
    """The ``rep_ramp`` table (see module docstring); a status row when there are no deals."""
    if deals is None or deals.empty or reps is None or reps.empty:
        return table("rep_ramp").status_frame("not estimable: no closed deals or no reps in the marts")
    # the registry's preconditions (hire dates, enough reps...), for callers other than the runner
    unmet = analysis("rep_ramp").unmet(deals, reps).get("rep_ramp")
    if unmet:
        return table("rep_ramp").status_frame(unmet, period_columns(deals))
    deals = deals[deals.rep_id.notna()]  # a ramp is a rep's: deals without a known owner have none
    owners = _rep_facts(deals, reps)
    d = deals.merge(owners[["rep_id", "profile", "cohort"]], on="rep_id")
    fy_deals = d[d.created_date < d.hire_date + pd.Timedelta(days=365)]
    rows = (
        _group_rows("hiring_profile", "profile", owners, fy_deals)
        + _group_rows("hire_cohort", "cohort", owners, fy_deals)
        + trait_effects(deals)
    )
    out = pd.DataFrame(rows).reindex(columns=columns("rep_ramp"))
    period = period_columns(deals)
    out["period_start"], out["period_end"] = period["period_start"], period["period_end"]
    return out


def compute(inputs: AnalysisInputs) -> dict[str, pd.DataFrame]:
    """The ``rep_ramp`` table from the closed deals and the reps."""
    return {"rep_ramp": rep_ramp(inputs.deals, inputs.reps)}
