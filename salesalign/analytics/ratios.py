"""Ratios of sums with cluster-robust intervals (win rate, contribution per selling hour, per dollar...).

A ratio ``R = sum(a) / sum(d)`` over clusters (accounts, reps) has the linearised standard error
``sqrt(m / (m - 1) * sum_c (a_c - R d_c)^2) / sum(d)`` (the delta method with clusters as the
independent units), so deals of one account or rep are not treated as independent.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.stats

from salesalign.analytics.estimators import normal_interval


def _clusters(cluster) -> pd.Series:
    """Cluster ids with a row of unknown cluster (a deal with the unknown account) its own cluster:
    it is independent of the others as far as anything recorded says, and is never dropped."""
    keys = pd.Series(cluster).reset_index(drop=True)
    if not keys.isna().any():
        return keys
    own = pd.Series([f"\x00row{i}" for i in range(len(keys))])
    return keys.astype(object).where(keys.notna(), own)


def cluster_ratio(a, d, cluster=None, alpha: float = 0.05) -> dict:
    """Ratio of sums with its cluster-robust SE and normal interval.

    ``a``, ``d``: per-row numerator and denominator; ``cluster``: per-row cluster id (None: rows are
    independent). Returns ``estimate, std_error, ci_low, ci_high, n_clusters``.
    """
    a = np.asarray(a, float)
    d = np.asarray(d, float)
    if cluster is not None:
        codes = pd.factorize(_clusters(cluster), sort=False)[0]
        a = np.bincount(codes, a)
        d = np.bincount(codes, d)
    m = a.size
    den = d.sum()
    if m == 0 or den == 0:
        return {
            "estimate": float("nan"),
            "std_error": float("nan"),
            "ci_low": float("nan"),
            "ci_high": float("nan"),
            "n_clusters": int(m),
        }
    r = a.sum() / den
    se = float(np.sqrt(m / max(m - 1, 1) * np.sum((a - r * d) ** 2)) / abs(den)) if m > 1 else float("nan")
    (lo, hi), _ = normal_interval(r, se, alpha)
    return {"estimate": float(r), "std_error": se, "ci_low": lo, "ci_high": hi, "n_clusters": int(m)}


def grouped_ratios(
    frame: pd.DataFrame, by: str | list[str], num: str, den: str, cluster: str, alpha: float = 0.05
) -> pd.DataFrame:
    """``cluster_ratio`` of ``num`` over ``den`` for every group of ``by`` (vectorised)."""
    by = [by] if isinstance(by, str) else list(by)
    # a group whose key is unknown (NaN) is a group of its own, never dropped; so is a row of unknown
    # cluster (copied only then: the frames are the closed deals, up to millions of rows)
    if frame[cluster].isna().any():
        frame = frame.assign(**{cluster: _clusters(frame[cluster]).to_numpy()})
    g = frame.groupby(by + [cluster], observed=True, sort=False, dropna=False)[[num, den]].sum().reset_index()
    sums = g.groupby(by, observed=True, dropna=False)[[num, den]].transform("sum")
    r = sums[num] / sums[den].where(sums[den] != 0)
    g["_sq"] = (g[num] - r * g[den]) ** 2
    out = g.groupby(by, observed=True, dropna=False).agg(
        num=(num, "sum"), den=(den, "sum"), sq=("_sq", "sum"), n_clusters=(cluster, "size")
    )
    m = out.n_clusters
    out["estimate"] = out.num / out.den.where(out.den != 0)
    out["std_error"] = np.sqrt(m / (m - 1).clip(lower=1) * out.sq) / out.den.abs().where(out.den != 0)
    out.loc[m < 2, "std_error"] = np.nan
    z = float(scipy.stats.norm.ppf(1 - alpha / 2))
    out["ci_low"] = out.estimate - z * out.std_error
    out["ci_high"] = out.estimate + z * out.std_error
    return out.drop(columns="sq").reset_index()
