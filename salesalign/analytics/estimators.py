"""Treatment-effect estimators with influence-function standard errors (statsmodels nuisance models).

Three estimators, each for the ATE and the ATT, all from one set of nuisance fits:

* ``ra``   regression adjustment: per-arm outcome models (Logit for binary, OLS for continuous),
           averaged over the target population. The IF includes the outcome-model estimation term.
* ``ipw``  normalised (Hajek) inverse-probability weighting on a Logit propensity. The IF includes
           the propensity-estimation term (M-estimation stacking), so it is not the conservative plug-in.
* ``aipw`` augmented IPW (doubly robust). Its score is Neyman-orthogonal in both nuisances, so the
           plug-in IF is first-order exact; coverage is checked by simulation in the tests.

Each estimator is written as two means, ``mu1 = E[Y(1) | target]`` and ``mu0 = E[Y(0) | target]``,
with their IFs over all n rows (zero outside the estimation sample), so the effect, its standard
error (``sqrt(sum IF^2) / n``) and the risk ratio (for E-values) come from the same pieces.

Trimming (explicit, see ``TrimRule``): propensities are fitted on every row; the ATE is estimated on
rows with ``lower <= e <= upper``, the ATT on rows with ``e <= upper`` (controls with tiny propensity
get tiny ATT weights and need no trimming). The estimate then describes the trimmed population.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg
import scipy.stats
import statsmodels.api as sm

ESTIMANDS = ("ATE", "ATT")
METHODS = ("ra", "ipw", "aipw")


class NotEstimable(Exception):
    """The data cannot support the estimate (no overlap, too few deals, a model that cannot be fitted)."""


@dataclass(frozen=True)
class TrimRule:
    """Keep ``lower <= e <= upper`` for the ATE and ``e <= upper`` for the ATT."""

    lower: float = 0.02
    upper: float = 0.98

    def mask(self, e: np.ndarray, estimand: str) -> np.ndarray:
        if estimand == "ATE":
            return (e >= self.lower) & (e <= self.upper)
        return e <= self.upper

    def describe(self, estimand: str) -> str:
        if estimand == "ATE":
            return f"deals with propensity in [{self.lower:g}, {self.upper:g}]"
        return f"treated deals with propensity <= {self.upper:g} (controls likewise)"


@dataclass
class Estimate:
    """One effect estimate with its uncertainty, sample and diagnostics."""

    estimate: float
    std_error: float
    ci: tuple[float, float]
    p_value: float
    n_treated: int
    n_control: int
    method: str
    estimand: str
    mean_treated: float = float("nan")  # mu1: E[Y(1) | target population]
    mean_control: float = float("nan")  # mu0: E[Y(0) | target population]
    log_rr_se: float = float("nan")  # SE of log(mu1 / mu0), for binary outcomes
    diagnostics: dict = field(default_factory=dict)

    @property
    def risk_ratio(self) -> float:
        if self.mean_control > 0 and self.mean_treated > 0:
            return self.mean_treated / self.mean_control
        return float("nan")

    def to_row(self) -> dict:
        row = {
            "estimator": self.method,
            "estimand": self.estimand,
            "estimate": self.estimate,
            "std_error": self.std_error,
            "ci_low": self.ci[0],
            "ci_high": self.ci[1],
            "p_value": self.p_value,
            "n_treated": self.n_treated,
            "n_control": self.n_control,
        }
        row.update({k: v for k, v in self.diagnostics.items() if np.isscalar(v) or v is None})
        return row


def normal_interval(estimate: float, se: float, alpha: float = 0.05) -> tuple[tuple[float, float], float]:
    """Wald interval and two-sided p-value."""
    if not (np.isfinite(se) and se > 0):
        return (float("nan"), float("nan")), float("nan")
    z = scipy.stats.norm.ppf(1 - alpha / 2)
    p = 2 * scipy.stats.norm.sf(abs(estimate) / se)
    return (estimate - z * se, estimate + z * se), float(p)


# ------------------------------------------------------------------ nuisance models
def independent_columns(
    X: np.ndarray, rows: np.ndarray | None = None, tol: float = 1e-8, gram: np.ndarray | None = None
) -> np.ndarray:
    """Indices of a maximal linearly independent set of columns (pivoted QR on the scaled Gram matrix)."""
    if gram is None:
        Xs = X if rows is None else X[rows]
        if Xs.shape[0] == 0:
            return np.arange(0)
        gram = Xs.T @ Xs
    d = np.sqrt(np.clip(np.diag(gram), 0, None))
    ok = d > 1e-12 * max(d.max(initial=0), 1e-300)
    if not ok.any():
        return np.arange(0)
    scaled = gram[np.ix_(ok, ok)] / np.outer(d[ok], d[ok])
    _, r, piv = scipy.linalg.qr(scaled, pivoting=True)
    diag = np.abs(np.diag(r))
    rank = int((diag > tol * diag[0]).sum()) if diag.size else 0
    return np.sort(np.flatnonzero(ok)[piv[:rank]])


@dataclass
class GLMFit:
    """A canonical-link GLM (Logit or OLS) fitted on ``rows`` and predicted on every row.

    ``beta`` spans every column of X (zero for columns dropped as collinear), so predictions and IF
    terms are plain matrix-vector products on X without copying it.
    """

    beta: np.ndarray
    cols: np.ndarray  # the columns actually estimated
    mean: np.ndarray  # prediction on every row
    bread: np.ndarray  # (1/n) sum_{rows} w x x' over the estimated columns (n = all rows)
    resid: np.ndarray  # y - mean on fitted rows, 0 elsewhere
    binary: bool

    def deriv(self) -> np.ndarray:
        """d mean / d eta on every row (canonical link)."""
        return self.mean * (1 - self.mean) if self.binary else np.ones_like(self.mean)

    def correction(self, X: np.ndarray, grad: np.ndarray) -> np.ndarray:
        """IF term grad' IF_beta for every row; grad = d(functional)/d(beta) over ALL columns of X."""
        v = np.zeros(X.shape[1])
        v[self.cols] = np.linalg.solve(self.bread, grad[self.cols])
        return (X @ v) * self.resid


def fit_glm(
    y: np.ndarray, X: np.ndarray, rows: np.ndarray, binary: bool, start: np.ndarray | None = None
) -> GLMFit:
    """Fit Logit (binary) or OLS on X[rows] and predict on every row; X includes the intercept column.

    Logit: statsmodels Newton, warm-started from ``start`` (coefficients over all columns of X, e.g. a
    related fit) or else, above 200k rows, from a fit on a 100k-row sample.
    OLS: the normal equations on rank-pruned, standardised columns -- the same estimator as
    ``sm.OLS(...).fit()``, whose QR/pinv path costs 10-17 s per fit on 1M rows on the target machine.
    """
    n, p = X.shape
    Xr, yf = X[rows], y[rows]
    gram = Xr.T @ Xr
    cols = independent_columns(Xr, gram=gram)
    if Xr.shape[0] <= cols.size:
        raise NotEstimable("fewer rows than parameters")
    Xf = Xr if cols.size == p else Xr[:, cols]
    beta = np.zeros(p)
    if binary:
        if yf.min() == yf.max():
            raise NotEstimable("outcome is constant in one arm")
        if start is not None and start.size == p and np.all(np.isfinite(start)):
            start = start[cols]
        elif Xf.shape[0] > 200_000:  # warm start: the full fit then needs 2-3 Newton steps
            sample = np.random.default_rng(0).choice(Xf.shape[0], 100_000, replace=False)
            start = _logit(yf[sample], Xf[sample], None)
        else:
            start = None
        beta[cols] = _logit(yf, Xf, start)
        mean = 1.0 / (1.0 + np.exp(-np.clip(X @ beta, -30, 30)))
        w = mean[rows] * (1 - mean[rows])
        bread = (Xf.T * w) @ Xf / n
    else:
        g = gram[np.ix_(cols, cols)]
        beta[cols] = scipy.linalg.solve(g, Xf.T @ yf, assume_a="pos")
        mean = X @ beta
        bread = g / n
    resid = np.zeros(n)
    resid[rows] = yf - mean[rows]
    return GLMFit(beta, cols, mean, bread, resid, binary)


def _logit(y: np.ndarray, X: np.ndarray, start) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            res = sm.Logit(y, X, check_rank=False).fit(
                disp=0, method="newton", maxiter=50, start_params=start
            )
        except (np.linalg.LinAlgError, ValueError) as exc:
            raise NotEstimable(f"logit failed: {exc}") from exc
    params = np.asarray(res.params)
    if not np.all(np.isfinite(params)):
        raise NotEstimable("logit did not converge")
    return params


def ols_t_statistic(y: np.ndarray, X: np.ndarray, column: int = 0) -> tuple[float, int]:
    """Classical OLS t-statistic of one column and the residual degrees of freedom (normal equations)."""
    gram = X.T @ X
    inv = np.linalg.inv(gram)
    beta = inv @ (X.T @ y)
    resid = y - X @ beta
    dof = X.shape[0] - X.shape[1]
    sigma2 = float(resid @ resid) / dof
    return float(beta[column] / math.sqrt(sigma2 * inv[column, column])), int(dof)


def fit_propensity(t: np.ndarray, X: np.ndarray, start: np.ndarray | None = None) -> GLMFit:
    """Logit propensity score on every row."""
    if t.min() == t.max():
        raise NotEstimable("treatment is constant (no treated or no control deals)")
    return fit_glm(t.astype(float), X, np.ones(t.size, bool), binary=True, start=start)


@dataclass
class Nuisance:
    e: GLMFit
    m1: GLMFit
    m0: GLMFit


def fit_nuisance(
    y: np.ndarray,
    t: np.ndarray,
    X: np.ndarray,
    binary: bool,
    propensity: GLMFit | None = None,
    start: Nuisance | None = None,
) -> Nuisance:
    """Propensity (unless given: it does not depend on the outcome) and one outcome model per arm.

    ``start``: a related fit (e.g. on the full data) whose outcome coefficients warm-start these;
    columns X has beyond the start's get 0.
    """

    def warm(fit: GLMFit | None) -> np.ndarray | None:
        if fit is None:
            return None
        return np.r_[fit.beta, np.zeros(max(X.shape[1] - fit.beta.size, 0))][: X.shape[1]]

    e = propensity or fit_propensity(t, X)
    return Nuisance(
        e,
        fit_glm(y, X, t, binary, warm(start and start.m1)),
        fit_glm(y, X, ~t, binary, warm(start and start.m0)),
    )


# ------------------------------------------------------------------ estimators
def _means(method: str, estimand: str, y, t, X, nu: Nuisance, s: np.ndarray):
    """(mu1, mu0, IF1, IF0) for one estimator on trimmed sample s (all arrays over n rows)."""
    tf = t.astype(float)
    sf = s.astype(float)
    e = np.clip(nu.e.mean, 1e-12, 1 - 1e-12)
    m1, m0 = nu.m1.mean, nu.m0.mean
    n = y.size
    if estimand == "ATE":
        ps = sf.mean()
        if method == "ra":
            mu1, mu0 = (sf * m1).sum() / sf.sum(), (sf * m0).sum() / sf.sum()
            g1 = (sf * nu.m1.deriv()) @ X / n
            g0 = (sf * nu.m0.deriv()) @ X / n
            if1 = (sf * (m1 - mu1) + nu.m1.correction(X, g1)) / ps
            if0 = (sf * (m0 - mu0) + nu.m0.correction(X, g0)) / ps
        elif method == "ipw":
            w1, w0 = sf * tf / e, sf * (1 - tf) / (1 - e)
            mu1, mu0 = (w1 * y).sum() / w1.sum(), (w0 * y).sum() / w0.sum()
            # d(1/e)/dgamma = -(1-e)/e x ; d(1/(1-e))/dgamma = e/(1-e) x
            M1 = (w1 * (y - mu1) * -(1 - e)) @ X / n
            M0 = (w0 * (y - mu0) * e) @ X / n
            if1 = (w1 * (y - mu1) + nu.e.correction(X, M1)) / w1.mean()
            if0 = (w0 * (y - mu0) + nu.e.correction(X, M0)) / w0.mean()
        else:  # aipw
            a1 = sf * (m1 + tf / e * (y - m1))
            a0 = sf * (m0 + (1 - tf) / (1 - e) * (y - m0))
            mu1, mu0 = a1.sum() / sf.sum(), a0.sum() / sf.sum()
            if1, if0 = (a1 - sf * mu1) / ps, (a0 - sf * mu0) / ps
    else:  # ATT
        st = sf * tf
        d = st.mean()
        odds = e / (1 - e)
        mu1 = (st * y).sum() / st.sum()
        if1 = st * (y - mu1) / d
        if method == "ra":
            mu0 = (st * m0).sum() / st.sum()
            g0 = (st * nu.m0.deriv()) @ X / n
            if0 = (st * (m0 - mu0) + nu.m0.correction(X, g0)) / d
        elif method == "ipw":
            w0 = sf * (1 - tf) * odds
            mu0 = (w0 * y).sum() / w0.sum()
            M0 = (w0 * (y - mu0)) @ X / n  # d odds/dgamma = odds x
            if0 = (w0 * (y - mu0) + nu.e.correction(X, M0)) / w0.mean()
        else:  # aipw
            r0 = sf * (1 - tf) * odds * (y - m0)
            mu0 = ((st * m0).sum() + r0.sum()) / st.sum()
            if0 = (st * (m0 - mu0) + r0) / d
    return float(mu1), float(mu0), if1, if0


def pseudo_outcome(estimand: str, y, t, nu: Nuisance, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AIPW numerator a_i and denominator d_i: the effect on any subgroup G is sum_G a / sum_G d."""
    tf, sf = t.astype(float), s.astype(float)
    e = np.clip(nu.e.mean, 1e-12, 1 - 1e-12)
    m1, m0 = nu.m1.mean, nu.m0.mean
    if estimand == "ATE":
        a = sf * (m1 - m0 + tf / e * (y - m1) - (1 - tf) / (1 - e) * (y - m0))
        return a, sf
    a = sf * (tf * (y - m0) - (1 - tf) * e / (1 - e) * (y - m0))
    return a, sf * tf


def estimate_all(
    y: np.ndarray,
    t: np.ndarray,
    X: np.ndarray,
    binary: bool,
    trim: TrimRule,
    alpha: float = 0.05,
    propensity: GLMFit | None = None,
    min_per_arm: int = 1,
    start: Nuisance | None = None,
) -> tuple[dict[tuple[str, str], Estimate | NotEstimable], Nuisance]:
    """Every (estimand, method) estimate from one set of nuisance fits.

    X must include an intercept column. Returns estimates keyed by (estimand, method) -- or the
    NotEstimable reason for that key -- and the fitted nuisance models (for diagnostics and segments).
    """
    y = np.asarray(y, float)
    t = np.asarray(t, bool)
    nu = fit_nuisance(y, t, X, binary, propensity, start)
    n = y.size
    out: dict = {}
    for estimand in ESTIMANDS:
        s = trim.mask(nu.e.mean, estimand)
        n1, n0 = int((s & t).sum()), int((s & ~t).sum())
        for method in METHODS:
            if min(n1, n0) < min_per_arm:
                out[(estimand, method)] = NotEstimable(
                    f"after trimming ({trim.describe(estimand)}): {n1} treated, {n0} control deals"
                )
                continue
            mu1, mu0, if1, if0 = _means(method, estimand, y, t, X, nu, s)
            eff = mu1 - mu0
            se = float(math.sqrt(((if1 - if0) ** 2).sum()) / n)
            ci, p = normal_interval(eff, se, alpha)
            lrr = float("nan")
            if binary and mu1 > 0 and mu0 > 0:
                lrr = float(math.sqrt(((if1 / mu1 - if0 / mu0) ** 2).sum()) / n)
            out[(estimand, method)] = Estimate(
                eff, se, ci, p, n1, n0, method, estimand, mean_treated=mu1, mean_control=mu0, log_rr_se=lrr
            )
    return out, nu


def naive_difference(y: np.ndarray, t: np.ndarray) -> tuple[float, float]:
    """Difference in means treated - control and its Welch standard error."""
    y, t = np.asarray(y, float), np.asarray(t, bool)
    y1, y0 = y[t], y[~t]
    if y1.size < 2 or y0.size < 2:
        return float("nan"), float("nan")
    return float(y1.mean() - y0.mean()), float(math.sqrt(y1.var(ddof=1) / y1.size + y0.var(ddof=1) / y0.size))
