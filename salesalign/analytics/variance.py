"""How much of the performance spread is the rep, and how much the mix the rep was handed.

Two random-intercept-per-rep models, adjusted for the deal mix (segment, product, lead source, log list
amount, close quarter) and the rep's experience (tenure, first-year ramp: the ramp has its own table):

* **contribution margin** (USD per closed deal): statsmodels ``MixedLM`` (REML). The ICC interval is
  the profile likelihood of the variance ratio (REML, computed by quasi-demeaning, which is exact for a
  random intercept). The zero-variance boundary (a statsmodels bug, docs/stack.md: the fit says "converged"
  while fixed effects constant within a rep collapse to 0) is detected and handled: variance reported as 0
  with ``boundary=True`` and the fixed effects refitted by OLS without the random effect.
* **win**: a logistic GLMM (random intercept on the logit scale) by the Laplace approximation, the
  same as lme4's ``nAGQ=1``; its ICC is on the latent scale, ``sigma^2 / (sigma^2 + pi^2/3)``, with a
  profile-likelihood interval. We chose the GLMM over a linear probability model because the latent
  ICC does not depend on the base win rate (a probability-scale ICC shrinks as win rates move to 0 or 1).

Rep effects are shrunken (BLUP / conditional modes) with conditional intervals (normal, ignoring the
uncertainty of the fixed effects: slightly too narrow for reps with few deals).

Separation: a stratum of the mix (a segment, product, lead source, close quarter or the first-year
indicator) in which every deal was won, or every deal lost, has no finite logit coefficient and
makes the IRLS system singular. Its deals carry no information on the rep effect given the stratum,
so they are left out of the win model (as conditional logit and fixest do), and ``notes`` says which
strata and how many deals. Any other singular step is solved with a small ridge penalty, also noted.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.optimize
import scipy.stats
import statsmodels.api as sm
from scipy.special import expit
from statsmodels.regression.mixed_linear_model import MixedLMParams
from statsmodels.tools.sm_exceptions import PerfectSeparationError, PerfectSeparationWarning

from salesalign.analytics.blas import single_threaded
from salesalign.analytics.decision_data import (
    add_mix_columns,
    has_margin,
    mix_adjusted_for,
    no_margin_reason,
    period_columns,
)
from salesalign.analytics.design import design_matrix
from salesalign.analytics.estimators import independent_columns
from salesalign.analytics.registry import columns, table

if TYPE_CHECKING:
    from salesalign.analytics.runner import AnalysisInputs

MIX = {
    "segment_id": "categorical",
    "product_id": "categorical",
    "lead_source": "categorical",
    "log_list_amount": "numeric",
    "close_quarter": "categorical",
    "rep_tenure_60": "numeric",
    "first_year_rep": "binary",
}
Z95 = scipy.stats.norm.ppf(0.975)
CHI2_95 = scipy.stats.chi2.ppf(0.95, 1)
LATENT_RESIDUAL = math.pi**2 / 3
BOUNDARY_RATIO = 1e-6  # variance ratio below this = at the boundary (0)


RIDGE = 1e-6  # relative ridge for a singular IRLS step (times the mean diagonal of the system)


@dataclass
class RandomInterceptFit:
    """One random-intercept model: variance components, ICC with interval, rep effects."""

    outcome: str
    model: str
    scale: str
    sigma2_rep: float
    sigma2_residual: float
    icc: float
    icc_ci: tuple[float, float]
    boundary: bool
    reps: np.ndarray  # rep ids (order of effects)
    effects: np.ndarray  # shrunken rep effects (BLUP / conditional modes)
    effects_se: np.ndarray
    fixed_prediction: np.ndarray  # per deal, without the rep effect
    n_deals: int
    beta: np.ndarray | None = None  # fixed effects (columns of X)
    cov_beta: np.ndarray | None = None  # their covariance (model-based)
    penalised: bool = False  # a singular step was solved with the ridge penalty


# ------------------------------------------------------------------ design
def mix_design(deals: pd.DataFrame) -> np.ndarray:
    """Intercept + mix covariates, with linearly dependent columns dropped."""
    d = design_matrix(add_mix_columns(deals), MIX)
    keep = independent_columns(d.X)
    return d.X[:, np.sort(keep)]


def separated_strata(
    deals: pd.DataFrame, y: np.ndarray, mix: dict[str, str], min_level_count: int = 10
) -> tuple[np.ndarray, list[str]]:
    """Rows to keep and the strata left out: levels of the categorical and binary mix variables in
    which ``y`` is constant (every deal won, or every deal lost), repeated until none is left.

    Levels are pooled as `design_matrix` pools them (rare levels into ``other``), so a stratum is what
    the model would estimate a coefficient for."""
    d = add_mix_columns(deals)
    keep = np.ones(len(d), bool)
    dropped: list[str] = []
    while True:
        found = False
        for name, kind in mix.items():
            if kind == "numeric":
                continue
            v = d[name].astype("string").fillna("unknown").astype(str).to_numpy()
            levels, counts = np.unique(v[keep], return_counts=True)
            rare = levels[counts < min_level_count] if kind == "categorical" else levels[:0]
            pooled = np.where(np.isin(v, rare), "other", v)
            if len(np.unique(pooled[keep])) < 2:
                continue  # one level: no coefficient (dropped as collinear with the intercept)
            for level in np.unique(pooled[keep]):
                rows = keep & (pooled == level)
                outcome = y[rows]
                if outcome.min() == outcome.max():
                    dropped.append(
                        f"{name}={level} ({int(rows.sum()):,} deals, all {'won' if outcome[0] else 'lost'})"
                    )
                    keep &= ~rows
                    found = True
            if found:
                break
        if not found or not keep.any():
            return keep, dropped


# ------------------------------------------------------------------ linear random intercept
def _reml_profile(y: np.ndarray, X: np.ndarray, codes: np.ndarray, n_groups: int):
    """REML log-likelihood of the variance ratio gamma = sigma2_rep / sigma2_residual (profiled).

    For a random intercept, V_j = s2 (I + gamma 11'); multiplying by V_j^{-1/2} is quasi-demeaning:
    x* = x - theta_j mean_j(x), theta_j = 1 - (1 + n_j gamma)^{-1/2}. The cross-products of the
    transformed data follow from per-rep means, so each evaluation costs O(reps x columns^2).
    """
    n, p = X.shape
    nj = np.bincount(codes, minlength=n_groups).astype(float)
    ybar = np.bincount(codes, y, minlength=n_groups) / np.maximum(nj, 1)
    Xbar = _group_sums(X, codes, n_groups) / np.maximum(nj, 1)[:, None]
    XX, Xy, yy = X.T @ X, X.T @ y, float(y @ y)

    def loglik(gamma: float) -> float:
        theta = 1 - 1 / np.sqrt(1 + nj * gamma)
        c = nj * (2 * theta - theta**2)
        A = XX - Xbar.T @ (Xbar * c[:, None])
        b = Xy - Xbar.T @ (c * ybar)
        beta = np.linalg.lstsq(A, b, rcond=None)[0]
        rss = yy - float(np.sum(c * ybar**2)) - float(b @ beta)
        _, logdet = np.linalg.slogdet(A)
        dof = n - p
        return -0.5 * dof * math.log(rss / dof) - 0.5 * float(np.sum(np.log1p(nj * gamma))) - 0.5 * logdet

    return loglik


def _group_sums(X: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    """Per-group column sums (n_groups x columns)."""
    return np.column_stack([np.bincount(codes, X[:, k], minlength=n_groups) for k in range(X.shape[1])])


def _profile_interval(loglik, x_hat: float, lo: float, hi: float, xtol: float = 1e-6) -> tuple[float, float]:
    """Where the profile log-likelihood drops by chi2(1, 0.95)/2 on each side of ``x_hat`` in [lo, hi]."""
    top = loglik(x_hat)
    f = lambda x: top - loglik(x) - CHI2_95 / 2  # noqa: E731
    left = lo if f(lo) <= 0 else scipy.optimize.brentq(f, lo, x_hat, xtol=xtol)
    right = hi if f(hi) <= 0 else scipy.optimize.brentq(f, x_hat, hi, xtol=xtol)
    return left, right


def fit_linear(
    y: np.ndarray, X: np.ndarray, rep: pd.Series, outcome: str, currency: str = "USD"
) -> RandomInterceptFit:
    """MixedLM (REML) random intercept per rep; boundary handling; profile-likelihood ICC interval."""
    codes, reps = pd.factorize(rep, sort=True)
    k = len(reps)
    loglik = _reml_profile(y, X, codes, k)
    gamma0 = float(
        scipy.optimize.minimize_scalar(
            lambda g: -loglik(g), bounds=(0.0, 1.0), method="bounded", options={"xatol": 1e-7}
        ).x
    )
    # MixedLM started at the profile optimum: the same REML estimate, plus its BLUPs and fixed effects.
    start = MixedLMParams.from_components(
        fe_params=np.zeros(X.shape[1]), cov_re=np.array([[max(gamma0, 1e-8)]])
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = sm.MixedLM(y, X, groups=codes).fit(reml=True, start_params=start, method=["lbfgs"])
    s2_e = float(res.scale)
    s2_u = float(np.asarray(res.cov_re).ravel()[0]) if res.cov_re is not None else 0.0
    gamma_hat = s2_u / s2_e
    boundary = gamma_hat < BOUNDARY_RATIO or loglik(0.0) >= loglik(max(gamma_hat, 1e-12)) - 1e-9
    if boundary:
        # MixedLM's boundary bug (docs/stack.md): refit without the random effect, whose variance is 0.
        ols = sm.OLS(y, X).fit()
        s2_e, s2_u, gamma_hat = float(ols.scale), 0.0, 0.0
        fixed = X @ ols.params
        effects = np.zeros(k)
        se = np.zeros(k)
    else:
        fixed = X @ np.asarray(res.fe_params)
        re = res.random_effects
        effects = np.array([float(np.asarray(re[j]).ravel()[0]) for j in range(k)])
        nj = np.bincount(codes, minlength=k)
        se = np.sqrt(1 / (nj / s2_e + 1 / s2_u))
    g_lo, g_hi = _profile_interval(loglik, gamma_hat, 0.0, max(10 * gamma_hat, 1.0))
    icc = gamma_hat / (1 + gamma_hat)
    return RandomInterceptFit(
        outcome,
        "MixedLM REML, random intercept per rep",
        f"{currency} per deal",
        s2_u,
        s2_e,
        icc,
        (g_lo / (1 + g_lo), g_hi / (1 + g_hi)),
        bool(boundary),
        np.asarray(reps),
        effects,
        se,
        fixed,
        len(y),
    )


# ------------------------------------------------------------------ logistic random intercept (Laplace)
@dataclass
class _LaplaceMode:
    beta: np.ndarray
    u: np.ndarray
    loglik: float  # Laplace approximation of the marginal log-likelihood
    w_sum: np.ndarray  # per-rep sum of p(1-p) at the mode
    cov_beta: np.ndarray  # inverse of the Schur complement: covariance of beta with u integrated out
    penalised: bool = False  # a singular step was solved with the ridge penalty


class _CodedDesign:
    """The design X as integer codes, built once per fit, for the IRLS cross-products.

    The mix is mostly dummies: 0/1 columns are grouped into blocks in which a row has at most one 1
    (a categorical variable's dummies, or a single binary column), each block stored as one code per
    row (0 = none of its columns); the few other columns stay dense. Then X'WX and the per-rep sums
    of w x are bincounts over code pairs, O(rows) each, instead of O(rows x columns^2) dense products
    or sparse products with cache-missing access (916k deals: one logistic GLMM fit took 102 s with
    scipy.sparse, 32 s so).
    """

    def __init__(self, X: np.ndarray, rep: np.ndarray, k: int):
        n, p = X.shape
        self.p, self.k, self.rep = p, k, rep
        is_binary = ((X == 0) | (X == 1)).all(axis=0)
        blocks: list[list[int]] = []
        occupied: list[np.ndarray] = []
        for j in np.flatnonzero(is_binary):
            col = X[:, j] != 0
            for cols, occ in zip(blocks, occupied, strict=True):
                if not (occ & col).any():
                    cols.append(int(j))
                    occ |= col
                    break
            else:
                blocks.append([int(j)])
                occupied.append(col.copy())
        self.blocks = [
            (np.array(cols), (X[:, cols] @ np.arange(1, len(cols) + 1)).astype(np.int64)) for cols in blocks
        ]
        self.numeric = np.flatnonzero(~is_binary)
        self.C = np.ascontiguousarray(X[:, self.numeric])

    def matvec(self, beta: np.ndarray) -> np.ndarray:
        """X @ beta."""
        out = self.C @ beta[self.numeric]
        for cols, code in self.blocks:
            out += np.concatenate(([0.0], beta[cols]))[code]
        return out

    def rmatvec(self, r: np.ndarray) -> np.ndarray:
        """X' r."""
        out = np.zeros(self.p)
        out[self.numeric] = self.C.T @ r
        for cols, code in self.blocks:
            out[cols] = np.bincount(code, r, minlength=len(cols) + 1)[1:]
        return out

    def cross(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(X' diag(w) X, per-rep sums of w x: k x p)."""
        p, k, rep, num = self.p, self.k, self.rep, self.numeric
        A, B = np.zeros((p, p)), np.zeros((k, p))
        Cw = self.C * w[:, None]
        A[np.ix_(num, num)] = Cw.T @ self.C
        for i, j in enumerate(num):
            B[:, j] = np.bincount(rep, Cw[:, i], minlength=k)
        for a, (cols, code) in enumerate(self.blocks):
            L = len(cols) + 1
            A[cols, cols] = np.bincount(code, w, minlength=L)[1:]
            B[:, cols] = np.bincount(rep * L + code, w, minlength=k * L).reshape(k, L)[:, 1:]
            for i, j in enumerate(num):
                A[cols, j] = A[j, cols] = np.bincount(code, Cw[:, i], minlength=L)[1:]
            for cols2, code2 in self.blocks[a + 1 :]:
                L2 = len(cols2) + 1
                M = np.bincount(code * L2 + code2, w, minlength=L * L2).reshape(L, L2)[1:, 1:]
                A[np.ix_(cols, cols2)] = M
                A[np.ix_(cols2, cols)] = M.T
        return A, B


def _laplace_mode(y, design: _CodedDesign, sigma, start=None, iters: int = 30) -> _LaplaceMode:
    """Joint mode of (beta, u) for a given sigma (penalised IRLS via the Schur complement)."""
    p, k, codes = design.p, design.k, design.rep
    penalised = False
    beta = np.zeros(p) if start is None else start.beta.copy()
    u = np.zeros(k) if start is None else start.u.copy()
    s2 = sigma**2
    for _ in range(iters):
        eta = design.matvec(beta) + u[codes]
        mu = expit(eta)
        w = mu * (1 - mu)
        r = y - mu
        s_b = design.rmatvec(r)
        s_u = np.bincount(codes, r, minlength=k) - u / s2
        A, B = design.cross(w)  # B: k x p, per-rep sums of w x
        D = np.bincount(codes, w, minlength=k) + 1 / s2
        S = A - B.T @ (B / D[:, None])
        rhs = s_b - B.T @ (s_u / D)
        try:
            d_beta = np.linalg.solve(S, rhs)
        except np.linalg.LinAlgError:  # quasi-separation left a direction without curvature
            penalised = True
            d_beta = np.linalg.solve(S + _ridge(S), rhs)
        d_u = (s_u - B @ d_beta) / D
        beta += d_beta
        u += d_u
        if max(np.abs(d_beta).max(), np.abs(d_u).max()) < 1e-6:
            break
    eta = design.matvec(beta) + u[codes]
    mu = expit(eta)
    w_sum = np.bincount(codes, mu * (1 - mu), minlength=k)
    ll = float(np.sum(y * eta - np.logaddexp(0, eta)))
    laplace = ll - float(np.sum(u**2)) / (2 * s2) - 0.5 * float(np.sum(np.log1p(s2 * w_sum)))
    try:
        cov = np.linalg.inv(S)
    except np.linalg.LinAlgError:
        penalised = True
        cov = np.linalg.inv(S + _ridge(S))
    return _LaplaceMode(beta, u, laplace, w_sum, cov, penalised)


def _ridge(S: np.ndarray) -> np.ndarray:
    """The ridge penalty for a singular system: RIDGE x its mean diagonal, on the diagonal."""
    return RIDGE * max(float(np.mean(np.abs(np.diag(S)))), 1e-12) * np.eye(len(S))


def fit_logistic(y: np.ndarray, X: np.ndarray, rep: pd.Series, outcome: str = "win") -> RandomInterceptFit:
    """Logistic GLMM (random intercept per rep) by Laplace; latent-scale ICC with a profile interval."""
    codes, reps = pd.factorize(rep, sort=True)
    k = len(reps)
    design = _CodedDesign(X, codes, k)
    cache: dict[float, _LaplaceMode] = {}
    last: list[_LaplaceMode] = []

    def mode(log_sigma: float) -> _LaplaceMode:
        key = round(log_sigma, 10)
        if key not in cache:
            cache[key] = _laplace_mode(y, design, math.exp(log_sigma), last[-1] if last else None)
            last.append(cache[key])
        return cache[key]

    lo, hi = math.log(1e-3), math.log(5.0)
    opt = scipy.optimize.minimize_scalar(
        lambda s: -mode(s).loglik, bounds=(lo, hi), method="bounded", options={"xatol": 1e-3}
    )
    ls_hat = float(opt.x)
    boundary = ls_hat < lo + 0.05 or mode(lo).loglik >= mode(ls_hat).loglik - 1e-9
    if boundary:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", category=PerfectSeparationWarning)
                glm = sm.GLM(y, X, family=sm.families.Binomial()).fit()
            beta, cov_beta = np.asarray(glm.params), np.asarray(glm.cov_params())
        except (np.linalg.LinAlgError, PerfectSeparationWarning, PerfectSeparationError):
            # the mode at the smallest rep variance is the GLM, penalised where it had to be
            beta, cov_beta = mode(lo).beta, mode(lo).cov_beta
        fixed = X @ beta
        s2, effects, se = 0.0, np.zeros(k), np.zeros(k)
        s_lo, s_hi = _profile_interval(lambda s: mode(s).loglik, lo, lo, hi, xtol=1e-3)
        ci = (0.0, math.exp(s_hi) ** 2)
    else:
        m = mode(ls_hat)
        s2 = math.exp(2 * ls_hat)
        fixed, effects = X @ m.beta, m.u
        beta, cov_beta = m.beta, m.cov_beta
        se = np.sqrt(1 / (m.w_sum + 1 / s2))
        s_lo, s_hi = _profile_interval(lambda s: mode(s).loglik, ls_hat, lo, hi, xtol=1e-3)
        ci = (0.0 if s_lo <= lo else math.exp(s_lo) ** 2, math.exp(s_hi) ** 2)
    icc = s2 / (s2 + LATENT_RESIDUAL)
    icc_ci = tuple(v / (v + LATENT_RESIDUAL) for v in ci)
    return RandomInterceptFit(
        outcome,
        "logistic GLMM (Laplace), random intercept per rep",
        "logit (latent)",
        s2,
        LATENT_RESIDUAL,
        icc,
        icc_ci,
        bool(boundary),
        np.asarray(reps),
        effects,
        se,
        fixed,
        len(y),
        beta,
        cov_beta,
        any(m.penalised for m in cache.values()),
    )


# ------------------------------------------------------------------ tables
def _quartile_ratio(values: pd.Series) -> tuple[float, float, float]:
    """Mean of the top quartile, of the bottom quartile, and their ratio (None when the bottom is <= 0)."""
    v = values.dropna().sort_values()
    q = max(len(v) // 4, 1)
    bottom, top = float(v.iloc[:q].mean()), float(v.iloc[-q:].mean())
    return top, bottom, (top / bottom if bottom > 0 else float("nan"))


@single_threaded
def rep_tables(deals: pd.DataFrame, min_deals_per_rep: int = 20) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``rep_performance`` and ``rep_variance_summary`` from closed deals (see module docstring)."""
    period = period_columns(deals)
    if deals is None or deals.empty:
        return status_frames("no closed deals")
    perf_rows, summary_rows = [], []
    fits = []
    # a model of reps is fitted on the deals whose owner is known; the others are named, not guessed
    unowned = int(deals.rep_id.isna().sum())
    if unowned:
        deals = deals[deals.rep_id.notna()]
    won = deals.is_won.to_numpy(float)
    keep, dropped = separated_strata(deals, won, MIX)
    win_deals = deals[keep]
    unowned_note = f"left out: {unowned:,} deals whose owner the source does not know" if unowned else None
    notes = (
        f"left out of the win model: {int((~keep).sum()):,} deals of {len(dropped)} strata where every deal "
        f"was won or every deal lost (no finite coefficient): {'; '.join(dropped)}"
        if dropped
        else None
    )
    notes = "; ".join(n for n in (unowned_note, notes) if n) or None
    remaining = win_deals.is_won.to_numpy(float)
    if len(win_deals) and 0 < remaining.sum() < len(win_deals) and win_deals.rep_id.nunique() > 1:
        win_fit = fit_logistic(remaining, mix_design(win_deals), win_deals.rep_id, "win")
        fits.append((win_fit, win_deals, notes))
    else:
        reason = (
            "not estimable: every stratum of the deal mix is all won or all lost, so nothing is left to "
            f"compare reps on ({notes})"
        )
        perf_rows.append(pd.DataFrame([{"outcome": "win", "status": reason, **period}]))
        summary_rows.append({"outcome": "win", "status": reason, **period})
    if has_margin(deals):
        X = mix_design(deals)
        currency = str(deals.reporting_currency.iloc[0]) if "reporting_currency" in deals else "USD"
        fit = fit_linear(
            deals.contribution_margin.to_numpy(float), X, deals.rep_id, "contribution_margin", currency
        )
        fits.append((fit, deals, unowned_note))
    else:
        # the source has no cost data: the margin model is a status row, not a model of zeros
        reason = no_margin_reason(deals)
        perf_rows.append(pd.DataFrame([{"outcome": "contribution_margin", "status": reason, **period}]))
        summary_rows.append({"outcome": "contribution_margin", "status": reason, **period})
    for fit, frame, notes in fits:
        if fit.penalised:
            ridge = f"a singular IRLS step was solved with a ridge penalty ({RIDGE:g})"
            notes = f"{notes}; {ridge}" if notes else ridge
        y = (frame.is_won if fit.outcome == "win" else frame.contribution_margin).to_numpy(float)
        g = pd.DataFrame(
            {
                "rep_id": frame.rep_id.to_numpy(),
                "y": y,
                "expected": expit(fit.fixed_prediction) if fit.outcome == "win" else fit.fixed_prediction,
            }
        )
        per_rep = g.groupby("rep_id").agg(
            n_deals=("y", "size"), raw_mean=("y", "mean"), expected_mean_given_mix=("expected", "mean")
        )
        eff = pd.DataFrame({"rep_effect": fit.effects, "rep_effect_se": fit.effects_se}, index=fit.reps)
        per_rep = per_rep.join(eff)
        per_rep["ci_low"] = per_rep.rep_effect - Z95 * per_rep.rep_effect_se
        per_rep["ci_high"] = per_rep.rep_effect + Z95 * per_rep.rep_effect_se
        if fit.outcome == "win":
            # adjusted win rate: every deal of the company, as if this rep had worked it
            sample = np.random.default_rng(0).choice(len(y), size=min(len(y), 5000), replace=False)
            base = fit.fixed_prediction[sample]
            per_rep["adjusted_mean"] = [float(expit(base + e).mean()) for e in per_rep.rep_effect]
        else:
            per_rep["adjusted_mean"] = float(fit.fixed_prediction.mean()) + per_rep.rep_effect
        per_rep = per_rep.reset_index().rename(columns={"index": "rep_id"})
        eligible = per_rep.n_deals >= min_deals_per_rep
        per_rep["adjusted_rank"] = per_rep.adjusted_mean.where(eligible).rank(ascending=False, method="first")
        per_rep["raw_rank"] = per_rep.raw_mean.where(eligible).rank(ascending=False, method="first")
        n_el = int(eligible.sum())
        per_rep["adjusted_quartile"] = np.ceil(per_rep.adjusted_rank / max(n_el, 1) * 4).clip(1, 4)
        per_rep["status"] = np.where(
            eligible, "ok", f"fewer than {min_deals_per_rep} closed deals: not ranked"
        )
        per_rep = per_rep.assign(
            outcome=fit.outcome,
            scale=fit.scale,
            boundary=fit.boundary,
            model=fit.model,
            notes=notes,
            **period,
        )
        perf_rows.append(per_rep)
        raw_top, raw_bottom, raw_ratio = _quartile_ratio(per_rep.raw_mean[eligible])
        adj_top, adj_bottom, adj_ratio = _quartile_ratio(per_rep.adjusted_mean[eligible])
        summary_rows.append(
            {
                "outcome": fit.outcome,
                "model": fit.model,
                "scale": fit.scale,
                "n_deals": fit.n_deals,
                "n_reps": len(fit.reps),
                "sigma2_rep": fit.sigma2_rep,
                "sigma2_residual": fit.sigma2_residual,
                "icc": fit.icc,
                "icc_ci_low": fit.icc_ci[0],
                "icc_ci_high": fit.icc_ci[1],
                "icc_ci_method": "profile likelihood (REML)"
                if fit.outcome != "win"
                else "profile likelihood (Laplace)",
                "boundary": fit.boundary,
                "raw_top_bottom_quartile_ratio": raw_ratio,
                "adjusted_top_bottom_quartile_ratio": adj_ratio,
                "raw_top_quartile_mean": raw_top,
                "raw_bottom_quartile_mean": raw_bottom,
                "adjusted_top_quartile_mean": adj_top,
                "adjusted_bottom_quartile_mean": adj_bottom,
                "min_deals_per_rep": min_deals_per_rep,
                "adjusted_for": mix_adjusted_for(frame, MIX),
                **period,
                "status": "ok"
                if not fit.boundary
                else "rep variance at the boundary (0): refitted without the random effect",
                "notes": notes,
            }
        )
    order = {"win": 0, "contribution_margin": 1}
    perf = pd.concat(perf_rows, ignore_index=True)
    perf = perf.iloc[np.argsort(perf.outcome.map(order).to_numpy(), kind="stable")]
    summary = pd.DataFrame(summary_rows)
    summary = summary.iloc[np.argsort(summary.outcome.map(order).to_numpy(), kind="stable")]
    return (
        perf.reset_index(drop=True).reindex(columns=columns("rep_performance")),
        summary.reset_index(drop=True).reindex(columns=columns("rep_variance_summary")),
    )


def status_frames(reason: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Empty rep tables carrying only a status row per outcome that says why."""
    return table("rep_performance").status_frame(reason), table("rep_variance_summary").status_frame(reason)


def compute(inputs: AnalysisInputs) -> dict[str, pd.DataFrame]:
    """``rep_performance`` and ``rep_variance_summary``; status rows without closed deals."""
    deals = inputs.deals
    if deals is None or deals.empty:
        missing = inputs.decision.missing
        perf, summary = status_frames(missing[0] if missing else "no closed deals")
    else:
        perf, summary = rep_tables(deals)
    return {"rep_performance": perf, "rep_variance_summary": summary}
