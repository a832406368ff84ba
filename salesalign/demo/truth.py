"""Deal outcomes (realised and expected) and the planted truth, from a built World."""

from __future__ import annotations

import math

import numpy as np

from . import model as M


def accumulate_effort(
    w: M.World, chunk: dict, routine_effort: np.ndarray, routine_minutes: np.ndarray
) -> None:
    """Add one activity chunk's routine effort (USD) and minutes to the per-deal accumulators."""
    routine = chunk["type"] < len(M.ROUTINE)
    n = w.preset.n_opportunities
    routine_effort += np.bincount(chunk["deal"][routine], chunk["effort_usd"][routine], minlength=n)
    routine_minutes += np.bincount(chunk["deal"][routine], chunk["minutes"][routine], minlength=n)


def realised_win(w: M.World) -> tuple[np.ndarray, np.ndarray]:
    a = w.arrays
    p = M.expit(a["deal_base_logit"] + M.practice_logit(a, a["deal_treat"]))
    return p, a["deal_closed"] & (a["deal_u_win"] < p)


def deal_outcomes(w: M.World, routine_effort: np.ndarray, routine_minutes: np.ndarray) -> dict:
    """Per closed deal: treatments, p_win, realised win, realised and expected contribution margin (USD)."""
    a = w.arrays
    idx = np.flatnonzero(a["deal_closed"])
    treat = a["deal_treat"][idx]
    p_all, won_all = realised_win(w)
    amount, disc = M.amount_cents(a, treat[:, M.DISCOUNT_PRACTICE], idx)
    val = M.won_value_usd(w, idx, amount)
    effort = routine_effort[idx] + (treat * a["deal_peffort"][idx]).sum(axis=1)
    minutes = routine_minutes[idx] + (treat * a["deal_pminutes"][idx]).sum(axis=1)
    won = won_all[idx]
    p = p_all[idx]
    return {
        "idx": idx,
        "treat": treat,
        "p_win": p,
        "won": won,
        "amount_cents": amount,
        "discount": disc,
        "effort": effort,
        "selling_hours": minutes / 60.0,
        "cm_realised": np.where(won, val["value_realised"], 0.0) - effort,
        "cm_expected": p * val["value_expected"] - effort,
        "value": val,
        "routine_effort": routine_effort[idx],
    }


def potential(w: M.World, out: dict, k: int, t: int) -> tuple[np.ndarray, np.ndarray]:
    """E[win], E[contribution margin] of closed deals under do(practice k = t), rest as realised."""
    a = w.arrays
    idx = out["idx"]
    treat = out["treat"].copy()
    treat[:, k] = bool(t)
    p = M.expit(a["deal_base_logit"][idx] + M.practice_logit({"deal_band": a["deal_band"][idx]}, treat))
    amount, _ = M.amount_cents(a, treat[:, M.DISCOUNT_PRACTICE], idx)
    value = M.won_value_usd(w, idx, amount)["value_expected"]
    effort = out["routine_effort"] + (treat * a["deal_peffort"][idx]).sum(axis=1)
    return p, p * value - effort


def _f(x, nd: int = 6):
    x = float(x)
    return None if math.isnan(x) else round(x, nd)


def _diff(y: np.ndarray, t: np.ndarray) -> tuple[float, float]:
    y1, y0 = y[t], y[~t]
    if y1.size < 2 or y0.size < 2:
        return float("nan"), float("nan")
    return y1.mean() - y0.mean(), math.sqrt(y1.var(ddof=1) / y1.size + y0.var(ddof=1) / y0.size)


def compute_truth(w: M.World, out: dict, bookkeeping: dict) -> dict:
    a = w.arrays
    idx = out["idx"]
    segs = M.segment_ids()
    seg = a["deal_seg"][idx]
    band = a["deal_band"][idx]
    realised = {"win": out["won"].astype(float), "contribution_margin": out["cm_realised"]}
    practices: dict = {}
    for k, name in enumerate(M.PRACTICES):
        t = out["treat"][:, k]
        p1, cm1 = potential(w, out, k, 1)
        p0, cm0 = potential(w, out, k, 0)
        eff = {"win": p1 - p0, "contribution_margin": cm1 - cm0}
        entry: dict = {
            "n_closed": int(idx.size),
            "n_treated": int(t.sum()),
            "logit_win_effect_by_size_band": dict(
                zip(M.SIZE_BANDS, M.PRACTICE_WIN_EFFECT[name], strict=True)
            ),
            "activity_minutes_mean": M.PRACTICE_MINUTES[name][0],
        }
        for y, e in eff.items():
            naive, se = _diff(realised[y], t)
            entry[y] = {
                "ate": _f(e.mean()),
                "att": _f(e[t].mean()) if t.any() else None,
                "naive_diff": _f(naive),
                "naive_se": _f(se),
                "mean_if_treated": _f((p1 if y == "win" else cm1).mean()),
                "mean_if_untreated": _f((p0 if y == "win" else cm0).mean()),
            }
        by_seg = {}
        for s in np.unique(seg):
            m = seg == s
            by_seg[segs[s]] = {
                "n": int(m.sum()),
                "n_treated": int(t[m].sum()),
                "win": _f(eff["win"][m].mean()),
                "contribution_margin": _f(eff["contribution_margin"][m].mean()),
            }
        entry["by_segment"] = by_seg
        by_band = {}
        for b, bname in enumerate(M.SIZE_BANDS):
            m = band == b
            if m.any():
                by_band[bname] = {
                    "n": int(m.sum()),
                    "n_treated": int(t[m].sum()),
                    "win": _f(eff["win"][m].mean()),
                    "contribution_margin": _f(eff["contribution_margin"][m].mean()),
                    "win_att": _f(eff["win"][m & t].mean()) if (m & t).any() else None,
                }
        entry["by_size_band"] = by_band
        practices[name] = entry

    # rep effects
    s2 = M.WIN["sigma_rep"] ** 2
    rep_ids = rep_id_list(w)
    rep_effects = {
        "sigma_rep": M.WIN["sigma_rep"],
        "sigma2_rep": s2,
        "icc_latent": _f(s2 / (s2 + math.pi**2 / 3)),
        "sample_variance_u": _f(a["rep_u"].var(ddof=1)),
        "u_rep": {rid: _f(u) for rid, u in zip(rep_ids, a["rep_u"], strict=True)},
        "n_closed_deals_by_rep": {
            rep_ids[i]: int(c)
            for i, c in enumerate(np.bincount(a["deal_owner"][idx], minlength=len(rep_ids)))
            if c
        },
    }

    # hiring traits: AME on first-year win probability (practices as realised)
    fy = a["deal_first_year"][idx]
    prac = M.practice_logit({"deal_band": band}, out["treat"])
    owner = a["deal_owner"][idx]
    prior, role = a["rep_prior"][owner], a["rep_role"][owner]

    def p_with(prior_v, role_v):
        sub = {k: v[idx] for k, v in a.items() if k.startswith("deal_") and v.ndim == 1}
        sub.update({k: v for k, v in a.items() if k.startswith("rep_")})
        return M.expit(M.base_logit(sub, prior_v, role_v) + prac)[fy]

    ame = {
        "prior_industry_experience": _f(
            (p_with(np.ones_like(prior), role) - p_with(np.zeros_like(prior), role)).mean()
        )
        if fy.any()
        else None
    }
    other = M.ROLES.index("other")
    for r_i, rname in enumerate(M.ROLES):
        if rname != "other":
            ame[f"previous_role_{rname}"] = (
                _f((p_with(prior, np.full_like(role, r_i)) - p_with(prior, np.full_like(role, other))).mean())
                if fy.any()
                else None
            )
    hiring = {
        "ramp_months": M.HIRING["ramp_months"],
        "ramp_intercept": M.HIRING["ramp_intercept"],
        "coefficients": {
            "prior_industry_experience": M.HIRING["prior_industry_experience"],
            **{f"previous_role_{r}": v for r, v in M.HIRING["previous_role"].items() if r != "other"},
        },
        "reference_role": "other",
        "ame_first_year_win": ame,
        "n_first_year_closed_deals": int(fy.sum()),
    }

    # segments: expected contribution margin per selling hour (practices as realised)
    seg_out = {}
    cm_sum = np.bincount(seg, out["cm_expected"], minlength=len(segs))
    hours = np.bincount(seg, out["selling_hours"], minlength=len(segs))
    n_seg = np.bincount(seg, minlength=len(segs))
    win_p = np.bincount(seg, out["p_win"], minlength=len(segs))
    per_hour = np.where(hours > 0, cm_sum / np.maximum(hours, 1e-9), -np.inf)
    order = np.argsort(-per_hour, kind="stable")
    rank = np.empty(len(segs), int)
    rank[order] = np.arange(1, len(segs) + 1)
    for s, sid in enumerate(segs):
        if n_seg[s] == 0:
            continue
        ind, b, reg = sid.split("|")
        seg_out[sid] = {
            "industry": ind,
            "size_band": b,
            "region": reg,
            "n_closed": int(n_seg[s]),
            "expected_win_rate": _f(win_p[s] / n_seg[s]),
            "expected_contribution_margin": _f(cm_sum[s], 2),
            "selling_hours": _f(hours[s], 2),
            "cm_per_selling_hour": _f(per_hour[s]),
            "rank": int(rank[s]),
            "serve_rate_annual": float(a["serve_rate"][s]),
        }
    ranked = sorted(seg_out, key=lambda k: seg_out[k]["rank"])
    for i, sid in enumerate(ranked, 1):  # dense ranks over segments present
        seg_out[sid]["rank"] = i

    economics = {
        "reporting_currency": "USD",
        "currencies_by_region": dict(zip(M.REGIONS, M.CURRENCIES, strict=True)),
        "commission_rate": M.COMMISSION_RATE,
        "deep_discount_points": M.DEEP_DISCOUNT_POINTS,
        "routine_discount": {"distribution": "beta", "a": 2.0, "b": 23.0, "mean": 2.0 / 25.0},
        "serve_rate_annual_by_segment": {sid: float(a["serve_rate"][s]) for s, sid in enumerate(segs)},
        "serve_months_after_close": 12,
        "serve_account_month_noise_sigma": M.SERVE["account_month_noise_sigma"],
        "cogs_rate_by_product_year": {
            p[0]: {str(2023 + y): float(a["cogs"][i, y]) for y in range(4)} for i, p in enumerate(M.PRODUCTS)
        },
        "finance_horizon_end": "2026-12-31",
        "window": {
            "deals_created_from": "2023-01-01",
            "deals_created_to": "2025-12-31",
            "export_at": "2025-12-31T23:59:59",
        },
    }
    win_model = {
        "win": {k: v for k, v in M.WIN.items()},
        "log_list_amount_center": M.LOG_AMOUNT_CENTER,
        "practice_logit_effects": {
            p: dict(zip(M.SIZE_BANDS, v, strict=True)) for p, v in M.PRACTICE_WIN_EFFECT.items()
        },
        "propensity": M.PROPENSITY,
        "propensity_clip": list(M.PROPENSITY_CLIP),
    }
    return {
        "scale": w.preset.name,
        "seed": w.seed,
        "practices": practices,
        "rep_effects": rep_effects,
        "hiring_traits": hiring,
        "segments": seg_out,
        "bookkeeping": bookkeeping,
        "economics": economics,
        "model": win_model,
        "strategy": strategy_truth(seg_out),
    }


# The demo company's declared strategy (mirrored by strategy.yml at the repo root): "win the
# enterprise". Effort actually flows to mid-market and small deals (more, cheaper opportunities), so
# the declared intent and the realised allocation disagree: the planted misallocation.
DEMO_STRATEGY = {
    "enterprise": {"match": {"size_band": ["enterprise"]}, "intended_effort_share": 0.50},
    "mid_market": {"match": {"size_band": ["mid"]}, "intended_effort_share": 0.40},
    "small_business": {"match": {"size_band": ["small"]}, "intended_effort_share": 0.10},
}
MISALLOCATION_TOLERANCE = 0.05  # |actual - intended| effort share above this is a misallocation


def strategy_truth(seg_out: dict) -> dict:
    """Per declared target: intended vs true effort share (selling hours of closed deals) and the true
    expected contribution margin per selling hour; which targets are over/under-invested."""
    total = sum(v["selling_hours"] for v in seg_out.values())
    targets = {}
    for name, spec in DEMO_STRATEGY.items():
        segs = [v for v in seg_out.values() if all(v[k] in allowed for k, allowed in spec["match"].items())]
        hours = sum(v["selling_hours"] for v in segs)
        cm = sum(v["expected_contribution_margin"] for v in segs)
        gap = hours / total - spec["intended_effort_share"]
        targets[name] = {
            "match": spec["match"],
            "intended_effort_share": spec["intended_effort_share"],
            "actual_effort_share": _f(hours / total),
            "effort_share_gap": _f(gap),
            "expected_cm_per_selling_hour": _f(cm / hours),
            "allocation": "over-invested" if gap > MISALLOCATION_TOLERANCE
            else "under-invested" if gap < -MISALLOCATION_TOLERANCE else "aligned",
        }
    over = sorted((k for k, v in targets.items() if v["allocation"] == "over-invested"),
                  key=lambda k: targets[k]["expected_cm_per_selling_hour"])
    under = sorted((k for k, v in targets.items() if v["allocation"] == "under-invested"),
                   key=lambda k: -targets[k]["expected_cm_per_selling_hour"])
    return {
        "tolerance": MISALLOCATION_TOLERANCE,
        "targets": targets,
        "over_invested": over,
        "under_invested": under,
        "best_move": {"from": over[0], "to": under[0]} if over and under else None,
    }


def rep_id_list(w: M.World) -> list[str]:
    width = max(4, len(str(w.preset.n_reps)))
    return [f"REP-{i:0{width}d}" for i in range(w.preset.n_reps)]
