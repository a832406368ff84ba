"""Return on sales effort: what each hour and dollar of selling returns, by segment, practice, rep, channel.

* ``roi_by_segment`` / ``roi_by_channel``: contribution margin per selling hour and per dollar of
  selling cost (effort + commissions), account-clustered intervals. Contribution margin is already
  net of selling cost, so "per dollar" reads "margin left after paying for the selling, per dollar
  spent on selling".
* ``roi_by_practice``: from the cause-effect engine (``practice_effects`` and
  ``practice_effects_by_segment``, AIPW). The causal effect on contribution margin per deal already
  contains the practice's own effort cost (its hours are costed in the mart) and any price it gives
  away (deep discount), so ``net_incremental_cm_per_deal`` = the effect, ``gross`` = effect + the
  practice's incremental cost, and ``roi_per_dollar`` = net / incremental cost = (gross - cost) / cost.
  Incremental cost = mean hours of the practice's activities on treated deals x the loaded hourly cost
  of those deals' selling effort. Verdict from the interval: "worth executing" when its lower limit is
  above 0, "not worth it" when its upper limit is below 0, else "uncertain". Levels: overall (ATE and
  ATT), size band (the engine's segment effects pooled over the segments estimable in the band,
  Bonferroni over the 3 bands) and segment (the engine's Bonferroni intervals).
* ``roi_by_rep``: raw returns per hour and dollar, and mix-adjusted contribution per deal (the company
  mean plus the rep's shrunken effect from the contribution-margin mixed model of ``variance``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.stats

from salesalign.analytics.decision_data import (
    PRACTICES,
    has_margin,
    no_margin_reason,
    period_columns,
    unknown_label,
)
from salesalign.analytics.ratios import grouped_ratios
from salesalign.analytics.registry import columns

if TYPE_CHECKING:
    from salesalign.analytics.runner import AnalysisInputs


def _returns(deals: pd.DataFrame, by: str) -> pd.DataFrame:
    """Per group of ``by``: deals, wins, margin, hours, cost and the two ratios with intervals."""
    d = deals.assign(won=deals.is_won.astype(float), one=1.0)
    hour = grouped_ratios(d, by, "contribution_margin", "selling_hours", "account_id").set_index(by)
    dollar = grouped_ratios(d, by, "contribution_margin", "selling_cost", "account_id").set_index(by)
    win = grouped_ratios(d, by, "won", "one", "account_id").set_index(by)
    out = pd.DataFrame(
        {
            "n_accounts": win.n_clusters,
            "n_deals": win.den.astype(int),
            "n_won": win.num.astype(int),
            "win_rate": win.estimate,
            "contribution_margin": hour.num,
            "selling_hours": hour.den,
            "selling_cost": dollar.den,
            "cm_per_selling_hour": hour.estimate,
            "cm_per_selling_hour_ci_low": hour.ci_low,
            "cm_per_selling_hour_ci_high": hour.ci_high,
            "cm_per_selling_dollar": dollar.estimate,
            "cm_per_selling_dollar_ci_low": dollar.ci_low,
            "cm_per_selling_dollar_ci_high": dollar.ci_high,
        }
    )
    out["status"] = np.where(
        out.selling_cost > 0,
        np.where(out.selling_hours > 0, "ok", "no selling hours"),
        "no selling cost recorded: returns per dollar not computable",
    )
    if not has_margin(deals):
        # the source delivered no cost data: deals and win rates stand, returns are not invented
        unknown = [c for c in out.columns if c.startswith(("cm_per_", "contribution_margin", "selling_"))]
        if deals.selling_hours.notna().all():
            unknown.remove("selling_hours")
        out[unknown] = np.nan
        out["status"] = no_margin_reason(deals)
    return out.reset_index()


def roi_by_segment(deals: pd.DataFrame | None) -> pd.DataFrame:
    if deals is None or deals.empty:
        return pd.DataFrame([{"status": "no closed deals"}], columns=columns("roi_by_segment"))
    deals = deals.assign(segment_id=deals.segment_id.fillna(unknown_label("segment_id")))
    out = _returns(deals, "segment_id")
    dims = deals.drop_duplicates("segment_id").set_index("segment_id")[["industry", "size_band", "region"]]
    out = out.join(dims, on="segment_id").assign(**period_columns(deals))
    return out.sort_values("cm_per_selling_hour", ascending=False).reindex(columns=columns("roi_by_segment"))


def roi_by_channel(deals: pd.DataFrame | None) -> pd.DataFrame:
    if deals is None or deals.empty:
        return pd.DataFrame([{"status": "no closed deals"}], columns=columns("roi_by_channel"))
    d = deals.assign(lead_source=deals.lead_source.fillna(unknown_label("lead_source")))
    return (
        _returns(d, "lead_source").assign(**period_columns(deals)).reindex(columns=columns("roi_by_channel"))
    )


def roi_by_rep(deals: pd.DataFrame | None, rep_performance: pd.DataFrame | None) -> pd.DataFrame:
    """Raw returns per rep plus the mix-adjusted contribution per deal from ``rep_performance``."""
    if deals is None or deals.empty:
        return pd.DataFrame([{"status": "no closed deals"}], columns=columns("roi_by_rep"))
    out = _returns(deals.assign(rep_id=deals.rep_id.fillna(unknown_label("rep_id"))), "rep_id")
    if rep_performance is not None and not rep_performance.empty:
        cm = rep_performance[rep_performance.outcome == "contribution_margin"].set_index("rep_id")
        out = out.join(
            cm[
                [
                    "expected_mean_given_mix",
                    "adjusted_mean",
                    "ci_low",
                    "ci_high",
                    "rep_effect",
                    "adjusted_rank",
                ]
            ],
            on="rep_id",
        )
        base = out.adjusted_mean - out.rep_effect
        out["expected_cm_per_deal_given_mix"] = out.expected_mean_given_mix
        out["adjusted_cm_per_deal"] = out.adjusted_mean
        out["adjusted_cm_per_deal_ci_low"] = base + out.ci_low
        out["adjusted_cm_per_deal_ci_high"] = base + out.ci_high
        cost_per_deal = out.selling_cost / out.n_deals
        out["adjusted_cm_per_selling_dollar"] = out.adjusted_cm_per_deal / cost_per_deal.where(
            cost_per_deal > 0
        )
    return (
        out.assign(**period_columns(deals))
        .sort_values("adjusted_rank")
        .reindex(columns=columns("roi_by_rep"))
    )


# ------------------------------------------------------------------ practices
def _verdict(lo: float, hi: float) -> str:
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "uncertain"
    return "worth executing" if lo > 0 else "not worth it" if hi < 0 else "uncertain"


def practice_costs(deals: pd.DataFrame, by: str | None = None) -> pd.DataFrame:
    """Per practice (and group): mean practice hours on treated deals and the loaded cost per hour."""
    rows = []
    groups = [("all", deals)] if by is None else list(deals.groupby(by, dropna=False))
    for name, g in groups:
        for p in PRACTICES:
            t = g[g[f"has_{p}"].fillna(False).astype(bool)]
            hours = float(t[f"{p}_hours"].mean()) if len(t) else np.nan
            rate = (
                float(t.effort_cost.sum() / t.selling_hours.sum())
                if len(t) and t.selling_hours.sum() > 0
                else np.nan
            )
            rows.append(
                {"practice": p, "group_name": name, "hours": hours, "rate": rate, "cost": hours * rate}
            )
    return pd.DataFrame(rows, columns=["practice", "group_name", "hours", "rate", "cost"])


def _practice_row(
    practice, level, group, estimand, est, lo, hi, n1, n0, cost_row, ci_method, source, status="ok"
):
    cost = cost_row["cost"] if cost_row is not None else np.nan
    ok = status == "ok" and np.isfinite(est) and np.isfinite(cost) and cost > 0
    row = {
        "practice": practice,
        "level": level,
        "group_name": group,
        "estimand": estimand,
        "n_treated": n1,
        "n_control": n0,
        "practice_hours_per_treated_deal": None if cost_row is None else cost_row["hours"],
        "loaded_cost_per_hour": None if cost_row is None else cost_row["rate"],
        "incremental_cost_per_deal": cost,
        "ci_method": ci_method,
        "effect_source": source,
        "status": status,
    }
    if ok:
        row.update(
            gross_incremental_cm_per_deal=est + cost,
            net_incremental_cm_per_deal=est,
            net_ci_low=lo,
            net_ci_high=hi,
            roi_per_dollar=est / cost,
            roi_ci_low=lo / cost,
            roi_ci_high=hi / cost,
            verdict=_verdict(lo, hi),
        )
    elif status == "ok":
        row.update(
            net_incremental_cm_per_deal=est,
            net_ci_low=lo,
            net_ci_high=hi,
            verdict="uncertain",
            status="no practice cost recorded: ROI per dollar not computable",
        )
    else:
        row["verdict"] = "not estimable"
    return row


def segment_effect_rows(by_segment: pd.DataFrame | None) -> pd.DataFrame:
    """The engine's per-segment AIPW ATE rows on contribution margin, with the size band parsed."""
    if by_segment is None or by_segment.empty:
        return pd.DataFrame(
            columns=["practice", "segment_id", "size_band", "estimate", "std_error", "status"]
        )
    seg = by_segment[
        (by_segment.outcome == "contribution_margin")
        & (by_segment.estimator == "aipw")
        & (by_segment.estimand == "ATE")
    ].copy()
    seg["size_band"] = seg.segment_id.str.split("|").str[1]
    return seg


def pooled_practice_row(
    practice: str, level: str, group: str, segment_rows: pd.DataFrame, cost_row, z: float, ci_label: str
) -> dict:
    """One practice's effect over a group of segments: the deal-weighted mean of the estimable segments'
    effects (segments are disjoint, so their estimates are independent), interval at ``z``."""
    ok = segment_rows[segment_rows.status == "ok"]
    if len(ok) == 0:
        return _practice_row(
            practice,
            level,
            group,
            "ATE",
            np.nan,
            np.nan,
            np.nan,
            0,
            0,
            cost_row,
            "",
            "practice_effects_by_segment",
            "too few deals in every segment",
        )
    n = (ok.n_treated + ok.n_control).astype(float)
    w = n / n.sum()
    est = float(w @ ok.estimate)
    se = float(np.sqrt(np.sum((w * ok.std_error) ** 2)))
    covered = (
        f"pooled over {len(ok)} of {len(segment_rows)} segments with enough deals ({int(n.sum())} deals)"
    )
    return _practice_row(
        practice,
        level,
        group,
        "ATE",
        est,
        est - z * se,
        est + z * se,
        int(ok.n_treated.sum()),
        int(ok.n_control.sum()),
        cost_row,
        f"{ci_label}; {covered}",
        "practice_effects_by_segment (aipw, deal-weighted)",
    )


def roi_by_practice(
    deals: pd.DataFrame | None,
    practice_effects: pd.DataFrame | None,
    by_segment: pd.DataFrame | None,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """ROI of every practice from the engine's contribution-margin effects (see module docstring)."""
    if deals is None or deals.empty or practice_effects is None or practice_effects.empty:
        reason = (
            "no closed deals"
            if deals is None or deals.empty
            else "no practice effects (analytics.practice_effects not built or empty)"
        )
        return pd.DataFrame(
            [{"practice": p, "status": reason, "verdict": "not estimable"} for p in PRACTICES],
            columns=columns("roi_by_practice"),
        )
    period = period_columns(deals)
    costs = practice_costs(deals).set_index("practice")
    band_costs = practice_costs(deals, "size_band").set_index(["practice", "group_name"])
    seg_costs = practice_costs(deals, "segment_id").set_index(["practice", "group_name"])
    rows = []
    pe = practice_effects[
        (practice_effects.outcome == "contribution_margin") & (practice_effects.estimator == "aipw")
    ]
    for _, e in pe.iterrows():
        status = (
            "ok" if pd.notna(e.estimate) else (e.get("status") or e.get("verdict_reason") or "not estimable")
        )
        rows.append(
            _practice_row(
                e.practice,
                "overall",
                "all deals",
                e.estimand,
                e.estimate,
                e.ci_low,
                e.ci_high,
                e.n_treated,
                e.n_control,
                costs.loc[e.practice] if e.practice in costs.index else None,
                "95% normal (influence function)",
                "practice_effects (aipw)",
                str(status),
            )
        )
    if by_segment is not None and not by_segment.empty:
        seg = segment_effect_rows(by_segment)
        z_band = scipy.stats.norm.ppf(1 - alpha / (2 * 3))
        for (practice, band), g in seg.groupby(["practice", "size_band"]):
            cost = band_costs.loc[(practice, band)] if (practice, band) in band_costs.index else None
            rows.append(
                pooled_practice_row(
                    practice, "size_band", band, g, cost, z_band, "Bonferroni over 3 size bands"
                )
            )
        for _, s in seg.iterrows():
            status = "ok" if s.status == "ok" else s.status
            rows.append(
                _practice_row(
                    s.practice,
                    "segment",
                    s.segment_id,
                    "ATE",
                    s.estimate,
                    s.ci_low,
                    s.ci_high,
                    s.n_treated,
                    s.n_control,
                    seg_costs.loc[(s.practice, s.segment_id)]
                    if (s.practice, s.segment_id) in seg_costs.index
                    else None,
                    s.ci_method or "",
                    "practice_effects_by_segment (aipw)",
                    status,
                )
            )
    out = pd.DataFrame(rows).assign(**period)
    return out.reindex(columns=columns("roi_by_practice"))


def compute_effort_returns(inputs: AnalysisInputs) -> dict[str, pd.DataFrame]:
    """``roi_by_segment``, ``roi_by_channel`` and ``roi_by_rep`` (mix-adjusted from ``rep_performance``)."""
    deals = inputs.deals
    return {
        "roi_by_segment": roi_by_segment(deals),
        "roi_by_channel": roi_by_channel(deals),
        "roi_by_rep": roi_by_rep(deals, inputs.table("rep_performance")),
    }


def compute_practice_returns(inputs: AnalysisInputs) -> dict[str, pd.DataFrame]:
    """``roi_by_practice`` from the engine's tables."""
    return {
        "roi_by_practice": roi_by_practice(
            inputs.deals, inputs.table("practice_effects"), inputs.table("practice_effects_by_segment")
        )
    }
