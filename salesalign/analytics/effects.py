"""Practice effects: every declared practice x outcome, by estimand and estimator, with diagnostics,
refutations, sensitivity, a verdict and per-segment effects. DataFrames in, DataFrames out.

    tables = estimate_effects(frame, load_config())
    tables.practice_effects, tables.by_segment, tables.diagnostics

``frame`` has one row per closed deal with the columns named in ``CausalConfig.select_list()``.

The three tables (``practice_effects``, ``practice_effects_by_segment``, ``effect_diagnostics``), their
columns and how to read them are declared in ``salesalign/analytics/registry.py``
(docs/analytics-tables.md). ``compute`` is the registry's entry point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.stats

from salesalign.analytics import diagnostics as dg
from salesalign.analytics.config import NOT_DECLARED, CausalConfig, Practice, Settings
from salesalign.analytics.design import Design, design_matrix
from salesalign.analytics.estimators import (
    ESTIMANDS,
    METHODS,
    Estimate,
    GLMFit,
    NotEstimable,
    estimate_all,
    fit_propensity,
    independent_columns,
    naive_difference,
    ols_t_statistic,
    pseudo_outcome,
)
from salesalign.analytics.registry import columns, table

if TYPE_CHECKING:
    from salesalign.analytics.runner import AnalysisInputs

REFUTATION_Z = scipy.stats.norm.ppf(0.995)  # refutations test at 1% so five checks rarely fail by chance


@dataclass
class EffectTables:
    practice_effects: pd.DataFrame
    by_segment: pd.DataFrame
    diagnostics: pd.DataFrame

    def as_tables(self) -> dict[str, pd.DataFrame]:
        """The frames by their analytics table name."""
        return {
            "practice_effects": self.practice_effects,
            "practice_effects_by_segment": self.by_segment,
            "effect_diagnostics": self.diagnostics,
        }


def status_tables(config: CausalConfig, reason: str) -> EffectTables:
    """Tables that only say why nothing could be estimated (e.g. the marts are not built)."""
    rows = [r for p in config.practices.values() for r in _status_rows(p.name, p.outcomes, reason)]
    return EffectTables(
        pd.DataFrame(rows, columns=columns("practice_effects")),
        table("practice_effects_by_segment").status_frame(reason),
        table("effect_diagnostics").status_frame(reason),
    )


def status_rows(inputs: AnalysisInputs, status: str) -> dict[str, pd.DataFrame]:
    """The three tables as status rows, one per practice x outcome x estimand x estimator of causal.yml
    in ``practice_effects`` (the runner's rows when a precondition is unmet or the engine failed)."""
    return status_tables(inputs.causal_config, status).as_tables()


def estimate_effects(
    frame: pd.DataFrame, config: CausalConfig, seed: int = 0, practices: list[str] | None = None
) -> EffectTables:
    """All declared practices; a practice whose inputs are missing yields status rows, never an error."""
    rows: list[dict] = []
    seg_rows: list[dict] = []
    diag_rows: list[dict] = []
    for name, practice in config.practices.items():
        if practices is not None and name not in practices:
            continue
        rng = np.random.default_rng([seed, len(name)])
        r, s, d = analyse_practice(frame, practice, config, rng)
        rows += r
        seg_rows += s
        diag_rows += d
    effects = pd.DataFrame(rows, columns=columns("practice_effects"))
    # no practice estimable: the per-segment and diagnostic tables say why rather than stay empty
    why = effects.status.iloc[0] if len(effects) and not (effects.status == "ok").any() else None
    by_segment = pd.DataFrame(seg_rows, columns=columns("practice_effects_by_segment"))
    diagnostics = pd.DataFrame(diag_rows, columns=columns("effect_diagnostics")).assign(status="ok")
    return EffectTables(
        effects,
        table("practice_effects_by_segment").status_frame(why) if by_segment.empty and why else by_segment,
        table("effect_diagnostics").status_frame(why) if diagnostics.empty and why else diagnostics,
    )


def compute(inputs: AnalysisInputs) -> dict[str, pd.DataFrame]:
    """The engine's three tables from the deals causal.yml describes; status rows without deals."""
    config = inputs.causal_config
    if not config.declared:
        return status_tables(config, NOT_DECLARED).as_tables()
    frame, missing = inputs.causal_deals
    if frame is None:
        return status_tables(config, f"marts not available: {missing[0]}").as_tables()
    if frame.empty:
        return status_tables(config, "no closed deals in marts.fct_deal_margin").as_tables()
    return estimate_effects(frame, config).as_tables()


def _status_rows(practice: str, outcomes, reason: str) -> list[dict]:
    return [
        {
            "practice": practice,
            "outcome": o,
            "estimand": est,
            "estimator": m,
            "verdict": "not estimable",
            "verdict_reason": reason,
            "status": reason,
            "n_treated": 0,
            "n_control": 0,
        }
        for o in outcomes
        for est in ESTIMANDS
        for m in METHODS
    ]


@dataclass
class _Refutation:
    """Propensity fits on the refutation sample, shared by every outcome of one practice."""

    idx: np.ndarray
    X: np.ndarray
    t: np.ndarray
    base: GLMFit
    t_placebo: np.ndarray
    placebo: GLMFit
    X_rcc: np.ndarray
    rcc: GLMFit
    subsets: list[tuple[np.ndarray, GLMFit]]


def _prepare_refutation(X, t, e_full: GLMFit, settings: Settings, rng) -> _Refutation:
    """Refits start from the full-data coefficients (same covariates), so they take few Newton steps."""
    n = t.size
    start = e_full.beta
    if n > settings.refutation_max_deals:
        idx = np.sort(rng.choice(n, settings.refutation_max_deals, replace=False))
        Xr, tr = X[idx], t[idx]
        base = fit_propensity(tr, Xr, start)
    else:
        idx, Xr, tr, base = np.arange(n), X, t, e_full
    t_placebo = rng.permutation(tr)
    X_rcc = np.column_stack([Xr, rng.standard_normal(tr.size)])
    subsets = []
    for _ in range(settings.refutation_subsets):
        half = np.sort(rng.choice(tr.size, tr.size // 2, replace=False))
        subsets.append((half, fit_propensity(tr[half], Xr[half], start)))
    placebo = fit_propensity(t_placebo, Xr)
    rcc = fit_propensity(tr, X_rcc, np.r_[start, 0.0])
    return _Refutation(idx, Xr, tr, base, t_placebo, placebo, X_rcc, rcc, subsets)


def _safe_estimates(y, t, X, binary, settings, propensity, start=None):
    try:
        return estimate_all(y, t, X, binary, settings.trim, settings.alpha, propensity, start=start)[0]
    except NotEstimable:
        return {}


def analyse_practice(
    frame: pd.DataFrame,
    practice: Practice,
    config: CausalConfig,
    rng,
) -> tuple[list[dict], list[dict], list[dict]]:
    """Rows of the three tables for one practice."""
    st = config.settings
    outcomes = list(practice.outcomes)
    needed = [practice.treatment, *practice.confounders]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        return _status_rows(practice.name, outcomes, f"inputs missing: {', '.join(missing)}"), [], []
    if frame[practice.treatment].isna().all():
        return (
            _status_rows(
                practice.name,
                outcomes,
                "not estimable: the source delivered no activities, so which deals had this practice is "
                "unknown (fct_deal_margin.has_activity_data is false)",
            ),
            [],
            [],
        )
    unknown = [c for c in practice.confounders if frame[c].isna().all()]
    if unknown:
        # the assumptions say the effect is identified given these; without them it is not
        return (
            _status_rows(
                practice.name,
                outcomes,
                "not estimable: confounders causal.yml declares for this practice are unknown on every "
                f"closed deal: {', '.join(unknown)} (the source did not deliver what they are computed "
                "from), so the adjustment the assumptions call for cannot be made",
            ),
            [],
            [],
        )
    t = frame[practice.treatment].fillna(False).to_numpy(bool)
    if not t.any():
        return (
            _status_rows(
                practice.name,
                outcomes,
                "no deal has this practice recorded (no practice activities in the source?)",
            ),
            [],
            [],
        )
    if t.all():
        return (
            _status_rows(practice.name, outcomes, "every deal has this practice: no comparison group"),
            [],
            [],
        )
    design = frame_design(frame, practice, config)
    X = design.X
    try:
        e_fit = fit_propensity(t, X)
    except NotEstimable as exc:
        return _status_rows(practice.name, outcomes, f"propensity model failed: {exc}"), [], []
    e = e_fit.mean
    diag: list[dict] = []
    base = {"practice": practice.name, "outcome": None}
    for k, v in dg.overlap_summary(e, t).items():
        diag.append({**base, "estimand": None, "estimator": None, "kind": "overlap", "name": k, "value": v})

    # overlap, trimming and balance per estimand (they do not depend on the outcome)
    population: dict[str, dict] = {}
    covs = X[:, design.covariates]
    smd_before = dg.standardised_differences(covs, t)
    for estimand in ESTIMANDS:
        s = st.trim.mask(e, estimand)
        n1, n0 = int((s & t).sum()), int((s & ~t).sum())
        share = float(1 - s.mean()) if estimand == "ATE" else float(1 - (s & t).sum() / t.sum())
        smd_after = dg.standardised_differences(covs, t, dg.balance_weights(e, t, s, estimand))
        reason = None
        if share > st.max_share_trimmed:
            reason = (
                f"no overlap: {share:.0%} of the {'deals' if estimand == 'ATE' else 'treated deals'} "
                f"fall outside the trimming rule ({st.trim.describe(estimand)})"
            )
        elif min(n1, n0) < st.min_deals_per_arm:
            reason = (
                f"too few deals after trimming: {n1} treated, {n0} control (minimum {st.min_deals_per_arm})"
            )
        population[estimand] = {
            "s": s,
            "share": share,
            "smd_before": float(np.abs(smd_before).max(initial=0)),
            "smd_after": float(np.abs(smd_after).max(initial=0)),
            "reason": reason,
        }
        diag.append(
            {
                **base,
                "estimand": estimand,
                "estimator": None,
                "kind": "trimming",
                "name": "share_trimmed",
                "value": share,
                "detail": st.trim.describe(estimand),
            }
        )
        for name, b, a in zip(design.names[1:], smd_before, smd_after, strict=True):
            diag.append(
                {
                    **base,
                    "estimand": estimand,
                    "estimator": "ipw_weights",
                    "kind": "balance",
                    "name": name,
                    "value": float(b),
                    "value_after": float(a),
                }
            )

    refute = _prepare_refutation(X, t, e_fit, st, rng)
    rows: list[dict] = []
    seg_rows: list[dict] = []
    for outcome in outcomes:
        var = config.outcomes[outcome]
        if outcome not in frame.columns:
            rows += _status_rows(practice.name, [outcome], f"outcome column {outcome} missing")
            continue
        y = pd.to_numeric(
            frame[outcome].astype("float64") if var.kind == "binary" else frame[outcome], errors="coerce"
        ).to_numpy(float)
        if np.isnan(y).all():
            rows += _status_rows(
                practice.name,
                [outcome],
                f"not estimable: {outcome} is unknown on every closed deal (the source did not deliver "
                "what it is computed from)",
            )
            continue
        if np.isnan(y).any():
            # rare (e.g. an unknown close date): analyse the complete rows on their own
            keep = ~np.isnan(y)
            sub = frame.loc[keep].reset_index(drop=True)
            r, s_, d_ = analyse_practice(
                sub,
                Practice(practice.name, practice.treatment_sql, (outcome,), practice.confounders),
                config,
                rng,
            )
            rows += [
                {
                    **x,
                    "status": (x.get("status") or "ok")
                    + f"; {int((~keep).sum())} deals without {outcome} excluded",
                }
                for x in r
            ]
            seg_rows += s_
            diag += [x for x in d_ if x["outcome"] == outcome]
            continue
        r, s_, d_ = _analyse_outcome(
            practice.name, outcome, var.kind == "binary", y, t, X, e_fit, population, refute, frame, config
        )
        rows += r
        seg_rows += s_
        diag += d_
    return rows, seg_rows, diag


def _analyse_outcome(
    practice, outcome, binary, y, t, X, e_fit, population, refute: _Refutation, frame, config: CausalConfig
):
    st = config.settings
    try:
        est, nu = estimate_all(y, t, X, binary, st.trim, st.alpha, e_fit, min_per_arm=st.min_deals_per_arm)
    except NotEstimable as exc:
        return _status_rows(practice, [outcome], f"outcome model failed: {exc}"), [], []
    naive, naive_se = naive_difference(y, t)
    yr = y[refute.idx]
    ref_base = _safe_estimates(yr, refute.t, refute.X, binary, st, refute.base, nu)
    ref_placebo = _safe_estimates(yr, refute.t_placebo, refute.X, binary, st, refute.placebo, nu)
    ref_rcc = _safe_estimates(yr, refute.t, refute.X_rcc, binary, st, refute.rcc, nu)
    ref_subsets = [
        _safe_estimates(yr[h], refute.t[h], refute.X[h], binary, st, fit, nu) for h, fit in refute.subsets
    ]

    # sensitivity of continuous outcomes: Cinelli-Hazlett on the OLS of y on (t, X) over the ATE sample
    rv = rv_ci = float("nan")
    if not binary:
        s = population["ATE"]["s"]
        if s.sum() > X.shape[1] + 2:
            Xs = X[s]
            Xs = np.column_stack([t[s].astype(float), Xs[:, independent_columns(Xs)]])
            tstat, dof = ols_t_statistic(y[s], Xs)
            rv, rv_ci = dg.robustness_value(tstat, dof), dg.robustness_value(tstat, dof, alpha=st.alpha)

    rows, diag, seg_rows = [], [], []
    key = {"practice": practice, "outcome": outcome}
    for estimand in ESTIMANDS:
        pop = population[estimand]
        for method in METHODS:
            e_ = est[(estimand, method)]
            row = {
                **key,
                "estimand": estimand,
                "estimator": method,
                "outcome_kind": "binary" if binary else "continuous",
                "share_trimmed": pop["share"],
                "max_abs_smd_before": pop["smd_before"],
                "max_abs_smd_after": pop["smd_after"],
                "naive_difference": naive,
                "naive_std_error": naive_se,
                "population": config.settings.trim.describe(estimand),
            }
            reason = pop["reason"] or (str(e_) if isinstance(e_, NotEstimable) else None)
            if reason:
                rows.append(
                    {
                        **row,
                        "verdict": "not estimable",
                        "verdict_reason": reason,
                        "status": reason,
                        "n_treated": int((pop["s"] & t).sum()),
                        "n_control": int((pop["s"] & ~t).sum()),
                    }
                )
                continue
            assert isinstance(e_, Estimate)
            row.update(e_.to_row())
            row["naive_confounded"] = bool(not (e_.ci[0] <= naive <= e_.ci[1]))
            checks = {}
            rk = (estimand, method)
            base_r = ref_base.get(rk)
            pl = ref_placebo.get(rk)
            if isinstance(pl, Estimate):
                row["placebo_estimate"] = pl.estimate
                checks["placebo near zero"] = abs(pl.estimate) <= REFUTATION_Z * pl.std_error
                diag.append(
                    {
                        **key,
                        "estimand": estimand,
                        "estimator": method,
                        "kind": "refutation",
                        "name": "placebo_permutation",
                        "value": pl.estimate,
                        "value_after": pl.std_error,
                        "detail": "pass" if checks["placebo near zero"] else "fail",
                    }
                )
            if isinstance(base_r, Estimate):
                rc = ref_rcc.get(rk)
                if isinstance(rc, Estimate):
                    shift = rc.estimate - base_r.estimate
                    row["random_common_cause_shift"] = shift
                    checks["stable with a random common cause"] = abs(shift) <= 0.2 * base_r.std_error
                    diag.append(
                        {
                            **key,
                            "estimand": estimand,
                            "estimator": method,
                            "kind": "refutation",
                            "name": "random_common_cause",
                            "value": rc.estimate,
                            "value_after": base_r.estimate,
                            "detail": "pass" if checks["stable with a random common cause"] else "fail",
                        }
                    )
                shifts = []
                for i, sub in enumerate(ref_subsets):
                    se_ = sub.get(rk)
                    if isinstance(se_, Estimate):
                        # a half-sample estimate differs from the full-sample one with SE ~ the full SE
                        shifts.append(abs(se_.estimate - base_r.estimate))
                        diag.append(
                            {
                                **key,
                                "estimand": estimand,
                                "estimator": method,
                                "kind": "refutation",
                                "name": f"random_subset_{i + 1}",
                                "value": se_.estimate,
                                "value_after": base_r.estimate,
                                "detail": "pass" if shifts[-1] <= REFUTATION_Z * base_r.std_error else "fail",
                            }
                        )
                if shifts:
                    row["subset_max_shift"] = max(shifts)
                    checks["stable on random subsets"] = max(shifts) <= REFUTATION_Z * base_r.std_error
            checks["balanced after weighting"] = pop["smd_after"] <= st.max_abs_smd_after
            if binary:
                lrr = math.log(e_.risk_ratio) if e_.risk_ratio > 0 else float("nan")
                row.update(
                    sensitivity_metric="e_value_risk_ratio",
                    sensitivity_value=dg.e_value(e_.risk_ratio),
                    sensitivity_value_ci=dg.e_value_ci(lrr, e_.log_rr_se, st.alpha),
                )
                checks[f"E-value of the interval >= {st.min_e_value_ci:.2f}"] = bool(
                    row["sensitivity_value_ci"] >= st.min_e_value_ci
                )
            else:
                row.update(
                    sensitivity_metric="robustness_value_partial_r2",
                    sensitivity_value=rv,
                    sensitivity_value_ci=rv_ci,
                )
                checks[f"robustness value of the interval >= {st.min_robustness_value_ci:.2f}"] = bool(
                    rv_ci >= st.min_robustness_value_ci
                )
            for name in ("sensitivity_value", "sensitivity_value_ci"):
                diag.append(
                    {
                        **key,
                        "estimand": estimand,
                        "estimator": method,
                        "kind": "sensitivity",
                        "name": f"{row['sensitivity_metric']}{'_ci' if name.endswith('ci') else ''}",
                        "value": row[name],
                    }
                )
            row["verdict"], row["verdict_reason"] = dg.verdict(
                significant=e_.p_value < st.alpha, checks=checks
            )
            row["status"] = "ok"
            rows.append(row)
        if not pop["reason"] and "segment_id" in frame.columns:
            a, d = pseudo_outcome(estimand, y, t, nu, pop["s"])
            seg_rows += segment_effects(
                practice, outcome, estimand, frame["segment_id"], a, d, t, pop["s"], st
            )
    return rows, seg_rows, diag


def segment_effects(
    practice: str,
    outcome: str,
    estimand: str,
    segment: pd.Series,
    a: np.ndarray,
    d: np.ndarray,
    t: np.ndarray,
    s: np.ndarray,
    st: Settings,
) -> list[dict]:
    """AIPW effect per segment from the pseudo-outcomes of the global nuisance models.

    Intervals are Bonferroni-adjusted across the segments tested for this practice x outcome x estimand
    (simultaneous coverage >= 1 - alpha); p-values are Holm-adjusted. Segments with fewer than
    ``segment_min_deals_per_arm`` treated or control deals in the trimmed sample say "too few deals".
    """
    codes, labels = pd.factorize(segment.astype("string").fillna("unknown"), sort=True)
    k = len(labels)
    sums = {
        name: np.bincount(codes, v, minlength=k)
        for name, v in (
            ("a", a),
            ("d", d),
            ("aa", a * a),
            ("ad", a * d),
            ("dd", d * d),
            ("n1", (s & t).astype(float)),
            ("n0", (s & ~t).astype(float)),
        )
    }
    ok = (
        (sums["n1"] >= st.segment_min_deals_per_arm)
        & (sums["n0"] >= st.segment_min_deals_per_arm)
        & (sums["d"] > 0)
    )
    m = int(ok.sum())
    z = scipy.stats.norm.ppf(1 - st.alpha / (2 * max(m, 1)))
    with np.errstate(divide="ignore", invalid="ignore"):
        theta = sums["a"] / sums["d"]
        se = (
            np.sqrt(np.clip(sums["aa"] - 2 * theta * sums["ad"] + theta**2 * sums["dd"], 0, None)) / sums["d"]
        )
        p = 2 * scipy.stats.norm.sf(np.abs(theta / se))
    holm = np.full(k, np.nan)
    if m:
        idx = np.flatnonzero(ok)
        order = idx[np.argsort(p[idx])]
        adj = np.maximum.accumulate(np.minimum(1.0, (m - np.arange(m)) * p[order]))
        holm[order] = adj
    rows = []
    for i, label in enumerate(labels):
        row = {
            "practice": practice,
            "outcome": outcome,
            "segment_id": label,
            "estimand": estimand,
            "estimator": "aipw",
            "n_treated": int(sums["n1"][i]),
            "n_control": int(sums["n0"][i]),
            "n_segments_tested": m,
        }
        if ok[i]:
            row.update(
                estimate=float(theta[i]),
                std_error=float(se[i]),
                ci_low=float(theta[i] - z * se[i]),
                ci_high=float(theta[i] + z * se[i]),
                ci_method=f"bonferroni over {m} segments",
                p_value=float(p[i]),
                p_value_holm=float(holm[i]),
                status="ok",
            )
        else:
            row["status"] = f"too few deals (need {st.segment_min_deals_per_arm} treated and control)"
        rows.append(row)
    return rows


def frame_design(frame: pd.DataFrame, practice: Practice, config: CausalConfig) -> Design:
    """The design matrix of a practice's models: its declared confounders, intercept first."""
    return design_matrix(frame, {c: config.confounders[c].kind for c in practice.confounders})
