"""Diagnostics of an effect estimate: overlap, balance, sensitivity to unobserved confounding, verdict."""

from __future__ import annotations

import math

import numpy as np
import scipy.stats

OVERLAP_QUANTILES = (0.0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1.0)


def overlap_summary(e: np.ndarray, t: np.ndarray) -> dict[str, float]:
    """Propensity quantiles by arm, e.g. ``ps_treated_q05``, and the share of rows near 0 or 1."""
    out: dict[str, float] = {}
    for arm, m in (("treated", t), ("control", ~t)):
        if m.any():
            q = np.quantile(e[m], OVERLAP_QUANTILES)
            out.update(
                {f"ps_{arm}_q{int(p * 100):02d}": float(v) for p, v in zip(OVERLAP_QUANTILES, q, strict=True)}
            )
    out["share_ps_below_0.01"] = float((e < 0.01).mean())
    out["share_ps_above_0.99"] = float((e > 0.99).mean())
    return out


def balance_weights(e: np.ndarray, t: np.ndarray, s: np.ndarray, estimand: str) -> np.ndarray:
    """The IPW weights of the estimand on the trimmed sample s (treated and control normalised separately)."""
    e = np.clip(e, 1e-12, 1 - 1e-12)
    w = np.where(t, 1 / e, 1 / (1 - e)) if estimand == "ATE" else np.where(t, 1.0, e / (1 - e))
    return w * s


def standardised_differences(X: np.ndarray, t: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
    """SMD per column: weighted mean difference over the unweighted pooled SD (Austin 2009).

    The denominator is always the unweighted SD of the full sample, so before/after are comparable.
    """
    x1, x0 = X[t], X[~t]
    if w is not None and (w[t].sum() <= 0 or w[~t].sum() <= 0):
        return np.full(X.shape[1], np.nan)
    sd = np.sqrt((x1.var(0) + x0.var(0)) / 2)
    if w is None:
        diff = x1.mean(0) - x0.mean(0)
    else:
        w1, w0 = w[t], w[~t]
        diff = (w1 @ x1) / w1.sum() - (w0 @ x0) / w0.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sd > 0, diff / sd, 0.0)


def e_value(rr: float) -> float:
    """VanderWeele & Ding E-value of a risk ratio (the minimum confounder-treatment and
    confounder-outcome risk ratio that could explain the association away)."""
    if not np.isfinite(rr) or rr <= 0:
        return float("nan")
    rr = rr if rr >= 1 else 1 / rr
    return float(rr + math.sqrt(rr * (rr - 1)))


def e_value_ci(log_rr: float, se: float, alpha: float = 0.05) -> float:
    """E-value of the confidence limit closest to 1 (1.0 when the interval includes 1)."""
    if not (np.isfinite(log_rr) and np.isfinite(se)):
        return float("nan")
    z = scipy.stats.norm.ppf(1 - alpha / 2)
    lo, hi = log_rr - z * se, log_rr + z * se
    if lo <= 0 <= hi:
        return 1.0
    return e_value(math.exp(lo if lo > 0 else hi))


def robustness_value(t_stat: float, dof: int, q: float = 1.0, alpha: float | None = None) -> float:
    """Cinelli & Hazlett (2020) robustness value: the partial R2 an unobserved confounder needs with
    both treatment and outcome to reduce the effect by 100q% (or, with alpha, to make it insignificant)."""
    if not np.isfinite(t_stat) or dof <= 1:
        return float("nan")
    f = q * abs(t_stat) / math.sqrt(dof)
    if alpha is not None:
        f -= abs(scipy.stats.t.ppf(alpha / 2, dof - 1)) / math.sqrt(dof - 1)
        if f <= 0:
            return 0.0
    return float(0.5 * (math.sqrt(f**4 + 4 * f**2) - f**2))


def verdict(*, significant: bool, checks: dict[str, bool]) -> tuple[str, str]:
    """Plain words: 'robust', 'fragile' or 'no detectable effect' (not estimable is decided earlier)."""
    failed = [k for k, ok in checks.items() if not ok]
    if not significant:
        # sensitivity asks how strong a hidden confounder must be to remove an effect: moot without one
        failed = [k for k in failed if not k.startswith(("E-value", "robustness value"))]
        why = "the interval includes zero"
        return "no detectable effect", why + (f"; also failed: {', '.join(failed)}" if failed else "")
    if failed:
        return "fragile", "failed: " + ", ".join(failed)
    return (
        "robust",
        "interval excludes zero; balanced; refutations passed; insensitive to moderate hidden confounding",
    )
