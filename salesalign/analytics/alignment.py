"""Strategy alignment: the declared strategy (strategy.yml) against where effort goes and what it returns.

* ``strategy_alignment``: per target, intended versus actual share of selling hours (account-clustered
  interval), over-/under-invested beyond the tolerance, contribution per selling hour, promised versus
  realised contribution (the previous ``comparison_months`` grown at the promised rate, against the
  last ``comparison_months``) and margin, with the realisation %; a last row ``all (company goals)``
  holds the whole company against the ``goals`` of strategy.yml.
* ``practice_alignment``: per target x practice, prescribed or not, how often it is used, and its
  measured ROI in the target (the engine's per-segment effects pooled over the target's segments,
  Bonferroni over the targets): "aligned", "not worth it" (prescribed but destroys margin),
  "unused opportunity" (not prescribed but pays), "prescribed, unproven", "no evidence" or
  "aligned (not prescribed)".
* ``effort_reallocation``: moves of selling hours from over-invested to under-invested targets
  (hours per year; planned greedily, the largest return difference first, until a source's excess or
  a destination's shortfall of intended share is used), ranked by expected contribution gained =
  hours x (return of the destination - return of the source). Returns are the measured average
  contribution per selling hour of each target; using them as marginal returns assumes constant
  returns over the hours moved (an upper bound when returns diminish). The interval combines both
  returns' intervals (independent account samples).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.stats
import yaml

from salesalign.analytics.decision_data import PRACTICES, has_margin, no_margin_reason, period_columns
from salesalign.analytics.ratios import cluster_ratio
from salesalign.analytics.registry import columns
from salesalign.analytics.roi import pooled_practice_row, practice_costs, segment_effect_rows

if TYPE_CHECKING:
    from salesalign.analytics.runner import AnalysisInputs

REPO_STRATEGY_YML = Path(__file__).resolve().parents[2] / "strategy.yml"
NOT_DECLARED = (
    "no strategy declared for this source (give one: salesalign run --strategy FILE, or "
    "SALESALIGN_STRATEGY_YML)"
)
DIMENSIONS = ("industry", "size_band", "region")
OTHER = "other"
COMPANY = "all (company goals)"
EFFORT_SHARES_ONLY = "effort shares only: "  # the status of targets measured without contribution margin
# the strategy_alignment columns computed from contribution margin or revenue
MARGIN_COLUMNS = (
    "contribution_margin", "cm_per_selling_hour", "cm_per_selling_hour_ci_low", "cm_per_selling_hour_ci_high",
    "previous_period_cm", "recent_period_cm", "realised_cm_growth_pct", "promised_contribution",
    "realised_contribution", "realisation_pct", "realised_margin_pct",
)
Z95 = scipy.stats.norm.ppf(0.975)


@dataclass(frozen=True)
class Target:
    name: str
    match: dict[str, tuple[str, ...]]
    intended_effort_share: float
    promised_cm_growth_pct: float | None = None
    promised_margin_pct: float | None = None
    prescribed_practices: tuple[str, ...] = ()
    description: str = ""


@dataclass
class Strategy:
    name: str
    targets: dict[str, Target]
    goals: dict = field(default_factory=dict)
    misallocation_tolerance: float = 0.05
    comparison_months: int = 12
    icp: dict = field(default_factory=dict)
    declared: bool = True  # False: the source has no strategy (the alignment tables say so)


def load_strategy(path: str | Path | None = REPO_STRATEGY_YML) -> Strategy:
    """Read and check strategy.yml (shares in [0, 1] summing to at most 1, known dimensions/practices);
    None: the source declares no strategy (no targets, default ICP settings)."""
    if path is None:
        return Strategy("", {}, declared=False)
    raw = yaml.safe_load(Path(path).read_text()) or {}
    targets = {}
    for name, spec in (raw.get("targets") or {}).items():
        match = {
            k: tuple(str(x) for x in (v if isinstance(v, list) else [v]))
            for k, v in (spec.get("match") or {}).items()
        }
        unknown = set(match) - set(DIMENSIONS)
        if unknown:
            raise ValueError(f"strategy.yml target {name}: unknown dimensions {sorted(unknown)}")
        practices = tuple(spec.get("prescribed_practices") or ())
        bad = set(practices) - set(PRACTICES)
        if bad:
            raise ValueError(f"strategy.yml target {name}: unknown practices {sorted(bad)}")
        targets[name] = Target(
            name,
            match,
            float(spec["intended_effort_share"]),
            spec.get("promised_cm_growth_pct"),
            spec.get("promised_margin_pct"),
            practices,
            spec.get("description", ""),
        )
    total = sum(t.intended_effort_share for t in targets.values())
    if total > 1 + 1e-9 or any(not 0 <= t.intended_effort_share <= 1 for t in targets.values()):
        raise ValueError(
            f"strategy.yml: intended effort shares must be in [0, 1] and sum to <= 1 (sum {total:g})"
        )
    al = raw.get("alignment") or {}
    return Strategy(
        raw.get("name", ""),
        targets,
        raw.get("goals") or {},
        float(al.get("misallocation_tolerance", 0.05)),
        int(al.get("comparison_months", 12)),
        raw.get("icp") or {},
    )


def assign_targets(frame: pd.DataFrame, strategy: Strategy) -> pd.Series:
    """The target of every row (first matching target; ``other`` when none matches)."""
    out = pd.Series(OTHER, index=frame.index, dtype=object)
    free = pd.Series(True, index=frame.index)
    for name, t in strategy.targets.items():
        m = free.copy()
        for dim, allowed in t.match.items():
            m &= frame[dim].astype(str).isin(allowed)
        out[m] = name
        free &= ~m
    return out


def _intended(strategy: Strategy) -> dict[str, float]:
    shares = {n: t.intended_effort_share for n, t in strategy.targets.items()}
    shares[OTHER] = max(0.0, 1 - sum(shares.values()))
    return shares


def strategy_alignment(deals: pd.DataFrame | None, strategy: Strategy) -> pd.DataFrame:
    """Per target: intended versus actual effort, returns, promised versus realised (module docstring)."""
    if deals is None or deals.empty:
        return pd.DataFrame([{"status": "no closed deals"}], columns=columns("strategy_alignment"))
    if deals.selling_hours.sum() <= 0:
        return pd.DataFrame(
            [
                {"target": n, "status": "not estimable: no selling activities: effort shares unknown"}
                for n in strategy.targets
            ],
            columns=columns("strategy_alignment"),
        )
    d = deals.assign(target=assign_targets(deals, strategy))
    intended = _intended(strategy)
    end = d.close_date.max()
    recent_start = (end - pd.DateOffset(months=strategy.comparison_months)).normalize() + pd.Timedelta(days=1)
    prev_start = recent_start - pd.DateOffset(months=strategy.comparison_months)
    goals = strategy.goals
    groups = [
        (n, (d.target == n).to_numpy(), t.promised_cm_growth_pct, t.promised_margin_pct, t.description)
        for n, t in strategy.targets.items()
    ]
    other = (d.target == OTHER).to_numpy()
    if other.any():
        groups.append((OTHER, other, None, None, "segments matched by no target"))
    groups.append(
        (
            COMPANY,
            np.ones(len(d), bool),
            goals.get("contribution_margin_growth_pct"),
            goals.get("contribution_margin_pct"),
            "every deal, against the company-wide goals",
        )
    )
    intended[COMPANY] = 1.0
    rows = []
    for name, in_t, growth, margin, description in groups:
        share = cluster_ratio(d.selling_hours * in_t, d.selling_hours, d.account_id)
        g = d[in_t]
        ret = cluster_ratio(g.contribution_margin, g.selling_hours, g.account_id)
        gap = share["estimate"] - intended[name]
        tol = strategy.misallocation_tolerance
        allocation = "over-invested" if gap > tol else "under-invested" if gap < -tol else "aligned"
        if name == COMPANY:
            allocation = None
        prev = float(
            g.contribution_margin[(g.close_date >= prev_start) & (g.close_date < recent_start)].sum()
        )
        recent_rows = g[g.close_date >= recent_start]
        recent = float(recent_rows.contribution_margin.sum())
        promised = prev * (1 + growth / 100) if growth is not None and prev > 0 else np.nan
        revenue = float(recent_rows.net_revenue.sum())
        rows.append(
            {
                "target": name,
                "description": description,
                "n_deals": int(in_t.sum()),
                "n_accounts": int(g.account_id.nunique()),
                "selling_hours": float(g.selling_hours.sum()),
                "intended_effort_share": intended[name],
                "actual_effort_share": share["estimate"],
                "actual_effort_share_ci_low": share["ci_low"],
                "actual_effort_share_ci_high": share["ci_high"],
                "effort_share_gap": gap,
                "allocation": allocation,
                "contribution_margin": float(g.contribution_margin.sum()),
                "cm_per_selling_hour": ret["estimate"],
                "cm_per_selling_hour_ci_low": ret["ci_low"],
                "cm_per_selling_hour_ci_high": ret["ci_high"],
                "previous_period_cm": prev,
                "recent_period_cm": recent,
                "promised_cm_growth_pct": growth,
                "realised_cm_growth_pct": (recent / prev - 1) * 100 if prev > 0 else np.nan,
                "promised_contribution": promised,
                "realised_contribution": recent,
                "realisation_pct": recent / promised * 100 if promised and promised > 0 else np.nan,
                "promised_margin_pct": margin,
                "realised_margin_pct": recent / revenue * 100 if revenue > 0 else np.nan,
                "recent_period_start": str(recent_start.date()),
                "status": "ok",
            }
        )
    out = pd.DataFrame(rows)
    if not has_margin(deals):
        # effort shares are measured; returns and growth are not (a sum of unknowns is not 0)
        money = [c for c in MARGIN_COLUMNS if c in out]
        out[money] = np.nan
        out["status"] = EFFORT_SHARES_ONLY + no_margin_reason(deals)
    return out.assign(**period_columns(deals)).reindex(columns=columns("strategy_alignment"))


def _practice_alignment(prescribed: bool, verdict: str) -> str:
    if verdict == "worth executing":
        return "aligned" if prescribed else "unused opportunity"
    if verdict == "not worth it":
        return "not worth it" if prescribed else "aligned (not prescribed)"
    return "prescribed, unproven" if prescribed else "no evidence"


def practice_alignment(
    deals: pd.DataFrame | None, strategy: Strategy, by_segment: pd.DataFrame | None, alpha: float = 0.05
) -> pd.DataFrame:
    """Per target x practice: prescribed, usage and measured ROI in the target (module docstring)."""
    if deals is None or deals.empty:
        return pd.DataFrame([{"status": "no closed deals"}], columns=columns("practice_alignment"))
    d = deals.assign(target=assign_targets(deals, strategy))
    seg_target = d.drop_duplicates("segment_id").set_index("segment_id").target
    seg = segment_effect_rows(by_segment)
    seg = seg.assign(target=seg.segment_id.map(seg_target))
    costs = practice_costs(d, "target").set_index(["practice", "group_name"])
    targets = list(strategy.targets)
    z = scipy.stats.norm.ppf(1 - alpha / (2 * max(len(targets), 1)))
    rows = []
    for name in targets:
        g = d[d.target == name]
        for p in PRACTICES:
            prescribed = p in strategy.targets[name].prescribed_practices
            usage = float(g[f"has_{p}"].fillna(False).astype(bool).mean()) if len(g) else np.nan
            cost = costs.loc[(p, name)] if (p, name) in costs.index else None
            rows_p = seg[(seg.practice == p) & (seg.target == name)]
            if rows_p.empty:
                r = {
                    "verdict": "not estimable",
                    "status": "not estimable: no per-segment effects for this practice (engine output "
                    "missing or no deals)",
                }
            else:
                r = pooled_practice_row(
                    p, "target", name, rows_p, cost, z, f"Bonferroni over {len(targets)} targets"
                )
            verdict = r.get("verdict") or "not estimable"
            rows.append(
                {
                    "target": name,
                    "practice": p,
                    "prescribed": prescribed,
                    "n_deals": len(g),
                    "usage_rate": usage,
                    **{
                        k: r.get(k)
                        for k in (
                            "net_incremental_cm_per_deal",
                            "net_ci_low",
                            "net_ci_high",
                            "incremental_cost_per_deal",
                            "roi_per_dollar",
                            "roi_ci_low",
                            "roi_ci_high",
                            "ci_method",
                        )
                    },
                    "roi_verdict": verdict,
                    "alignment": _practice_alignment(prescribed, verdict),
                    "status": r.get("status", "ok"),
                }
            )
    return (
        pd.DataFrame(rows).assign(**period_columns(deals)).reindex(columns=columns("practice_alignment"))
    )


def effort_reallocation(alignment: pd.DataFrame, deals: pd.DataFrame | None) -> pd.DataFrame:
    """Ranked hour moves from over- to under-invested targets (module docstring)."""
    ok = alignment[alignment.status == "ok"] if "status" in alignment else alignment
    if deals is None or deals.empty or ok.empty:
        return pd.DataFrame(
            [{"status": "no strategy alignment to reallocate from"}],
            columns=columns("effort_reallocation"),
        )
    years = max((deals.close_date.max() - deals.close_date.min()).days / 365.25, 1 / 12)
    total_per_year = float(deals.selling_hours.sum()) / years
    over = ok[ok.allocation == "over-invested"].set_index("target")
    under = ok[ok.allocation == "under-invested"].set_index("target")
    excess = (over.effort_share_gap * total_per_year).to_dict()
    shortfall = (-under.effort_share_gap * total_per_year).to_dict()
    # greedy plan: the pair with the largest return difference first, until excess or shortfall runs out
    pairs = sorted(
        ((f, t) for f in over.index for t in under.index),
        key=lambda ft: -(under.cm_per_selling_hour[ft[1]] - over.cm_per_selling_hour[ft[0]]),
    )
    rows = []
    for f, t in pairs:
        hours = min(excess[f], shortfall[t])
        if hours <= 0:
            continue
        excess[f] -= hours
        shortfall[t] -= hours
        fr, to = over.loc[f], under.loc[t]
        gain = hours * (to.cm_per_selling_hour - fr.cm_per_selling_hour)
        se = hours * np.hypot(
            (to.cm_per_selling_hour_ci_high - to.cm_per_selling_hour_ci_low) / (2 * Z95),
            (fr.cm_per_selling_hour_ci_high - fr.cm_per_selling_hour_ci_low) / (2 * Z95),
        )
        rows.append(
            {
                "from_target": f,
                "to_target": t,
                "hours_per_year": hours,
                "from_cm_per_selling_hour": fr.cm_per_selling_hour,
                "to_cm_per_selling_hour": to.cm_per_selling_hour,
                "expected_cm_gain_per_year": gain,
                "gain_ci_low": gain - Z95 * se,
                "gain_ci_high": gain + Z95 * se,
                "assumption": "average contribution per selling hour of each target used as its "
                "marginal return "
                "(constant returns over the hours moved); hours per year, planned greedily from the "
                "largest return difference until the excess or the shortfall of the intended share is used",
                "status": "ok"
                if gain > 0
                else "moving effort as the strategy intends would lose contribution",
            }
        )
    if not rows:
        return pd.DataFrame(
            [{"status": "no over- and under-invested targets: nothing to move"}],
            columns=columns("effort_reallocation"),
        ).assign(**period_columns(deals))
    out = pd.DataFrame(rows).sort_values("expected_cm_gain_per_year", ascending=False)
    out["rank"] = np.arange(1, len(out) + 1)
    return out.assign(**period_columns(deals)).reindex(columns=columns("effort_reallocation"))


def compute(inputs: AnalysisInputs) -> dict[str, pd.DataFrame]:
    """The three alignment tables: the strategy of strategy.yml against the deals and the engine's
    per-segment effects."""
    deals, strategy = inputs.deals, inputs.strategy
    if not strategy.declared:
        return {
            name: pd.DataFrame([{"status": NOT_DECLARED}], columns=columns(name))
            for name in ("strategy_alignment", "practice_alignment", "effort_reallocation")
        }
    alignment = strategy_alignment(deals, strategy)
    by_segment = inputs.table("practice_effects_by_segment")
    return {
        "strategy_alignment": alignment,
        "practice_alignment": practice_alignment(deals, strategy, by_segment),
        "effort_reallocation": effort_reallocation(alignment, deals),
    }
