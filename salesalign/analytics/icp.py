"""The Ideal Customer Profile, built step by step and validated by the profitable growth it predicted.

1. Account outcomes: per account, closed and won deals, win rate, contribution margin, selling hours,
   cost-to-serve, cycle time, repeat (more than one won deal) and expansion deals (won after the first).
2. Hypotheses: segments are the combinations of configurable firmographic dimensions (default
   industry x size band x region, the marts' ``segment_id``).
3. Test: per segment, win rate, contribution per deal and per selling hour, cost-to-serve share, cycle
   time, with account-clustered intervals. A segment needs ``min_deals`` closed deals and
   ``min_accounts`` accounts to be scored; the score is its contribution per selling hour shrunk
   towards the overall rate (empirical Bayes, so a small lucky segment does not top the list), and
   tiers A-D are the quartiles of the score among scored segments.
4. Validate out of time: tiers defined on deals closed before ``split_date`` only; in the later window
   we measure each tier's realised contribution per selling hour, win rate and contribution margin
   per account-month, and the lift of tier A over the rest (ratio of contribution per selling hour,
   account-bootstrap interval).

The account fit score (0-100) is the percentile of an account's predicted contribution per selling
hour, from a weighted least-squares model on firmographics (weights = selling hours); tiers A >= 75,
B >= 50, C >= 25, D. Its calibration table compares the predictions of a model trained on the earlier
window with the later window's realised contribution per hour, by score decile.

Contribution margin per selling hour is the top rung of a ladder (`LADDER`): a source without selling
hours, cost data or won amounts is ranked on the first rung its closed deals support (contribution
margin per closed deal, net bookings per closed deal, the win rate), with the same steps and columns,
and every table's `basis` says which.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import statsmodels.api as sm

from salesalign.analytics.blas import single_threaded
from salesalign.analytics.decision_data import cost_basis_of, has_margin, period_columns
from salesalign.analytics.design import design_matrix
from salesalign.analytics.ratios import grouped_ratios
from salesalign.analytics.registry import columns

if TYPE_CHECKING:
    from salesalign.analytics.runner import AnalysisInputs

TIERS = ("A", "B", "C", "D")


@dataclass(frozen=True)
class Basis:
    """One rung of the ICP's ladder of what it ranks on, chosen from what the data holds.

    The ICP tables keep their column names on every rung (``contribution_margin``, ``selling_hours``,
    ``cm_per_selling_hour``); the rung says what they hold, and its ``label`` is the `basis` column."""

    rate: str  # what cm_per_selling_hour holds, e.g. "net bookings per closed deal"
    total: str  # what the contribution_margin columns sum
    effort: str  # the unit of the denominator ("hour of selling", "closed deal")
    holds: str  # why this rung, and what the columns hold on it ("" on the top rung)

    @property
    def label(self) -> str:
        return f"{self.rate} ({self.holds})" if self.holds else self.rate

    @property
    def is_money(self) -> bool:
        return self is not WIN_RATE_BASIS


MARGIN_BASIS = Basis("contribution margin per selling hour", "contribution margin", "hour of selling", "")
MARGIN_PER_DEAL_BASIS = Basis(
    "contribution margin per closed deal",
    "contribution margin",
    "closed deal",
    "no selling hours on the closed deals: selling_hours counts closed deals",
)
BOOKINGS_BASIS = Basis(
    "net bookings per closed deal",
    "net bookings",
    "closed deal",
    "cost basis '{cost_basis}': no contribution margin, so cm_* columns hold net bookings and "
    "selling_hours counts closed deals",
)
WIN_RATE_BASIS = Basis(
    "won deals per closed deal",
    "won deals",
    "closed deal",
    "no contribution margin and no won amounts (cost basis '{cost_basis}'): cm_* columns count won deals "
    "and selling_hours counts closed deals, so the rate is the win rate",
)
# best first: the ICP ranks on the first rung the closed deals support
LADDER = (MARGIN_BASIS, MARGIN_PER_DEAL_BASIS, BOOKINGS_BASIS, WIN_RATE_BASIS)


def choose_basis(deals: pd.DataFrame) -> tuple[Basis, pd.DataFrame]:
    """The first rung of `LADDER` the closed deals support, and the deals with ``contribution_margin``
    and ``selling_hours`` holding what that rung ranks on (never a value the source did not deliver)."""
    if has_margin(deals):
        if float(deals.selling_hours.fillna(0).sum()) > 0 and deals.selling_hours.notna().all():
            return MARGIN_BASIS, deals
        return MARGIN_PER_DEAL_BASIS, deals.assign(selling_hours=1.0)
    won_bookings = deals.net_bookings[deals.is_won] if "net_bookings" in deals else pd.Series(dtype=float)
    if len(won_bookings) and won_bookings.notna().all() and float(won_bookings.sum()) > 0:
        return BOOKINGS_BASIS, deals.assign(contribution_margin=deals.net_bookings, selling_hours=1.0)
    return WIN_RATE_BASIS, deals.assign(contribution_margin=deals.is_won.astype(float), selling_hours=1.0)


def basis_of(label: str | None) -> Basis:
    """The rung whose `label` an ICP table's `basis` column holds (the top rung for tables without one)."""
    for basis in LADDER:
        if label is not None and str(label).startswith(basis.rate):
            return basis
    return MARGIN_BASIS


@dataclass(frozen=True)
class IcpSettings:
    dimensions: tuple[str, ...] = ("industry", "size_band", "region")
    min_deals: int = 100
    min_accounts: int = 20
    split_date: str | None = None  # default: 12 months before the last close date (month start)
    bootstrap: int = 300
    seed: int = 0
    fit_features: tuple[str, ...] = ("industry", "size_band", "region", "log_employee_count")

    @classmethod
    def from_dict(cls, raw: dict | None) -> IcpSettings:
        raw = dict(raw or {})
        for key in ("dimensions", "fit_features"):
            if key in raw:
                raw[key] = tuple(raw[key])
        return cls(**raw)


def segment_key(frame: pd.DataFrame, dims: tuple[str, ...]) -> pd.Series:
    """``dim1|dim2|...`` (equals the marts' segment_id for industry, size_band, region)."""
    parts = [frame[d].astype("string").fillna("unknown") for d in dims]
    key = parts[0]
    for part in parts[1:]:  # vectorised concatenation (a row-wise join took 90 s at 1M deals)
        key = key + "|" + part
    return key.astype("str").rename(None)


def account_outcomes(deals: pd.DataFrame) -> pd.DataFrame:
    """Per account: deals, wins, margin, hours, cost-to-serve, cycle time, repeat and expansion deals."""
    d = deals.sort_values("close_date")
    won_rank = d.is_won.astype(int).groupby(d.account_id).cumsum().where(d.is_won)
    out = d.groupby("account_id").agg(
        n_deals=("opportunity_id", "size"),
        n_won=("is_won", "sum"),
        contribution_margin=("contribution_margin", "sum"),
        selling_hours=("selling_hours", "sum"),
        selling_cost=("selling_cost", "sum"),
        cost_to_serve=("cost_to_serve", "sum"),
        net_revenue=("net_revenue", "sum"),
        days_to_close=("days_to_close", "mean"),
    )
    out["expansion_deals"] = (won_rank > 1).groupby(d.account_id).sum()
    out["is_repeat"] = out.n_won > 1
    out["win_rate"] = out.n_won / out.n_deals
    out["cm_per_selling_hour"] = out.contribution_margin / out.selling_hours.where(out.selling_hours > 0)
    return out.reset_index()


def _shrink(est: pd.Series, se: pd.Series, prior: float) -> pd.Series:
    """Empirical-Bayes shrinkage of estimates towards ``prior`` (method-of-moments between variance)."""
    ok = est.notna() & se.notna() & (se > 0)
    if ok.sum() < 3:
        return est
    tau2 = max(float(np.var(est[ok], ddof=1) - np.mean(se[ok] ** 2)), 0.0)
    w = tau2 / (tau2 + se**2)
    return prior + w * (est - prior)


def segment_table(deals: pd.DataFrame, settings: IcpSettings) -> pd.DataFrame:
    """Per-segment metrics with intervals, score and tier (``icp_segments`` rows)."""
    d = deals.assign(
        icp_segment=segment_key(deals, settings.dimensions), won=deals.is_won.astype(float), one=1.0
    )
    by = "icp_segment"
    win = grouped_ratios(d, by, "won", "one", "account_id").set_index(by)
    per_deal = grouped_ratios(d, by, "contribution_margin", "one", "account_id").set_index(by)
    per_hour = grouped_ratios(d, by, "contribution_margin", "selling_hours", "account_id").set_index(by)
    acc = account_outcomes(d).merge(d[["account_id", by]].drop_duplicates("account_id"), on="account_id")
    g = acc.groupby(by).agg(
        n_accounts=("account_id", "size"),
        repeat_account_share=("is_repeat", "mean"),
        expansion_deals=("expansion_deals", "sum"),
        cost_to_serve=("cost_to_serve", "sum"),
        net_revenue=("net_revenue", "sum"),
    )
    seg = pd.DataFrame(
        {
            "n_accounts": g.n_accounts,
            "n_deals": win.den.astype(int),
            "n_won": win.num.astype(int),
            "win_rate": win.estimate,
            "win_rate_ci_low": win.ci_low,
            "win_rate_ci_high": win.ci_high,
            "contribution_margin": per_deal.num,
            "cm_per_deal": per_deal.estimate,
            "cm_per_deal_ci_low": per_deal.ci_low,
            "cm_per_deal_ci_high": per_deal.ci_high,
            "selling_hours": per_hour.den,
            "cm_per_selling_hour": per_hour.estimate,
            "cm_per_selling_hour_ci_low": per_hour.ci_low,
            "cm_per_selling_hour_ci_high": per_hour.ci_high,
            "cost_to_serve_share_of_revenue": g.cost_to_serve / g.net_revenue.where(g.net_revenue > 0),
            "mean_days_to_close": d.groupby(by).days_to_close.mean(),
            "repeat_account_share": g.repeat_account_share,
            "expansion_deals": g.expansion_deals,
        }
    )
    eligible = (
        (seg.n_deals >= settings.min_deals)
        & (seg.n_accounts >= settings.min_accounts)
        & seg.cm_per_selling_hour.notna()
    )
    overall = (
        float(d.contribution_margin.sum() / d.selling_hours.sum()) if d.selling_hours.sum() > 0 else np.nan
    )
    seg["score"] = _shrink(seg.cm_per_selling_hour, per_hour.std_error, overall).where(eligible)
    seg["score_rank"] = seg.score.rank(ascending=False, method="first")
    n_el = int(eligible.sum())
    quart = np.ceil(seg.score_rank / max(n_el, 1) * 4).clip(1, 4)
    seg["tier"] = quart.map(lambda q: TIERS[int(q) - 1] if pd.notna(q) else None)
    seg["status"] = np.where(
        eligible,
        "ok",
        f"too few deals or accounts (need {settings.min_deals} deals and "
        f"{settings.min_accounts} accounts): not scored",
    )
    seg["dimensions"] = ",".join(settings.dimensions)
    seg = seg.reset_index().sort_values(["score_rank", "icp_segment"], na_position="last")
    return seg.assign(**period_columns(deals))


# ------------------------------------------------------------------ account fit
def _fit_frame(accounts: pd.DataFrame) -> pd.DataFrame:
    return accounts.assign(log_employee_count=np.log1p(accounts.employee_count.astype(float).fillna(0)))


def fit_model(deals: pd.DataFrame, accounts: pd.DataFrame, settings: IcpSettings):
    """WLS of the account's value per unit of effort (the basis' rate; contribution margin per selling
    hour on full cost data) on firmographics; returns a predictor for accounts."""
    acc = account_outcomes(deals)
    acc = acc[acc.selling_hours > 0].merge(_fit_frame(accounts), on="account_id")
    kinds = {
        f: ("numeric" if f.startswith("log_") or f == "employee_count" else "categorical")
        for f in settings.fit_features
    }
    design = design_matrix(pd.concat([acc, _fit_frame(accounts)], ignore_index=True), kinds)
    X_all = design.X
    n = len(acc)
    res = sm.WLS(
        acc.cm_per_selling_hour.to_numpy(float), X_all[:n], weights=acc.selling_hours.to_numpy(float)
    ).fit()
    predicted = X_all[n:] @ np.asarray(res.params)
    return pd.Series(predicted, index=accounts.account_id.to_numpy())


def _score(predicted: pd.Series) -> pd.Series:
    return (predicted.rank(pct=True, method="average") * 100).round(1)


def _fit_tier(score: float) -> str:
    return "A" if score >= 75 else "B" if score >= 50 else "C" if score >= 25 else "D"


# ------------------------------------------------------------------ out-of-time validation
def _split(deals: pd.DataFrame, settings: IcpSettings) -> pd.Timestamp:
    if settings.split_date:
        return pd.Timestamp(settings.split_date)
    last = deals.close_date.max()
    return (last - pd.DateOffset(months=12)).to_period("M").to_timestamp() + pd.DateOffset(months=1)


def _tier_rows(
    validation: str,
    tier_of_account: pd.Series,
    later: pd.DataFrame,
    months: float,
    meta: dict,
    settings: IcpSettings,
) -> list[dict]:
    """Per tier realised metrics in the later window and the lift of tier A over the rest."""
    d = later.assign(tier=later.account_id.map(tier_of_account), won=later.is_won.astype(float), one=1.0)
    d = d[d.tier.notna()]
    rows = []
    for metric, num, den in (
        ("cm_per_selling_hour", "contribution_margin", "selling_hours"),
        ("win_rate", "won", "one"),
    ):
        r = grouped_ratios(d, "tier", num, den, "account_id")
        for _, x in r.sort_values("tier").iterrows():
            rows.append(
                {
                    "validation": validation,
                    "group_name": f"tier {x.tier}",
                    "metric": metric,
                    "n_accounts": x.n_clusters,
                    "n_deals": int((d.tier == x.tier).sum()),
                    "estimate": x.estimate,
                    "ci_low": x.ci_low,
                    "ci_high": x.ci_high,
                    **meta,
                    "status": "ok",
                }
            )
    cm_acc = d.groupby(["tier", "account_id"]).contribution_margin.sum().reset_index()
    for tier, g in cm_acc.groupby("tier"):
        per_month = g.contribution_margin / months
        se = per_month.std(ddof=1) / np.sqrt(len(g)) if len(g) > 1 else np.nan
        rows.append(
            {
                "validation": validation,
                "group_name": f"tier {tier}",
                "metric": "cm_per_active_account_month",
                "n_accounts": len(g),
                "estimate": per_month.mean(),
                "ci_low": per_month.mean() - 1.96 * se,
                "ci_high": per_month.mean() + 1.96 * se,
                **meta,
                "status": "ok",
            }
        )
    # lift of tier A over the rest: ratio of contribution per selling hour, bootstrap over accounts
    acc = (
        d.assign(is_a=d.tier == "A")
        .groupby("account_id")
        .agg(
            cm=("contribution_margin", "sum"),
            hours=("selling_hours", "sum"),
            is_a=("is_a", "first"),
            won=("won", "sum"),
            n=("one", "sum"),
        )
    )
    a, rest = acc[acc.is_a], acc[~acc.is_a]
    if len(a) < 2 or len(rest) < 2 or a.hours.sum() <= 0 or rest.hours.sum() <= 0:
        rows.append(
            {
                "validation": validation,
                "group_name": "tier A vs rest",
                "metric": "lift_cm_per_selling_hour",
                **meta,
                "status": "not estimable: tier A or the rest has no accounts in the later window",
            }
        )
        return rows
    rng = np.random.default_rng(settings.seed)

    def ratio(x, w):
        return (w @ x.cm.to_numpy()) / (w @ x.hours.to_numpy())

    est = ratio(a, np.ones(len(a))) / ratio(rest, np.ones(len(rest)))
    boots = np.array(
        [
            ratio(a, rng.poisson(1.0, len(a))) / ratio(rest, rng.poisson(1.0, len(rest)))
            for _ in range(settings.bootstrap)
        ]
    )
    diff_win = a.won.sum() / a.n.sum() - rest.won.sum() / rest.n.sum()
    boots_w = np.array(
        [
            (w1 @ a.won.to_numpy()) / (w1 @ a.n.to_numpy())
            - (w0 @ rest.won.to_numpy()) / (w0 @ rest.n.to_numpy())
            for w1, w0 in (
                (rng.poisson(1.0, len(a)), rng.poisson(1.0, len(rest))) for _ in range(settings.bootstrap)
            )
        ]
    )
    rows.append(
        {
            "validation": validation,
            "group_name": "tier A vs rest",
            "metric": "lift_cm_per_selling_hour",
            "n_accounts": len(acc),
            "n_deals": int(acc.n.sum()),
            "estimate": float(est),
            "ci_low": float(np.nanpercentile(boots, 2.5)),
            "ci_high": float(np.nanpercentile(boots, 97.5)),
            "compared_with": "ratio: tier A / all other tiers (1 = no lift); "
            "percentile bootstrap over accounts",
            **meta,
            "status": "ok",
        }
    )
    rows.append(
        {
            "validation": validation,
            "group_name": "tier A vs rest",
            "metric": "win_rate_difference",
            "n_accounts": len(acc),
            "n_deals": int(acc.n.sum()),
            "estimate": float(diff_win),
            "ci_low": float(np.percentile(boots_w, 2.5)),
            "ci_high": float(np.percentile(boots_w, 97.5)),
            "compared_with": "difference: tier A - all other tiers; percentile bootstrap over accounts",
            **meta,
            "status": "ok",
        }
    )
    return rows


def _calibration_rows(pred_early: pd.Series, later: pd.DataFrame, meta: dict) -> list[dict]:
    d = later.assign(pred=later.account_id.map(pred_early))
    d = d[d.pred.notna()]
    decile = np.ceil(pred_early.rank(pct=True) * 10).clip(1, 10)
    d["decile"] = d.account_id.map(decile)
    r = grouped_ratios(d, "decile", "contribution_margin", "selling_hours", "account_id")
    # predicted per decile, weighted by the later hours like the realised ratio
    pred = d.groupby("decile").apply(
        lambda g: np.average(g.pred, weights=g.selling_hours) if g.selling_hours.sum() > 0 else np.nan,
        include_groups=False,
    )
    return [
        {
            "validation": "account_fit_calibration",
            "group_name": f"score decile {int(x.decile)}",
            "metric": "cm_per_selling_hour",
            "n_accounts": x.n_clusters,
            "n_deals": int((d.decile == x.decile).sum()),
            "estimate": x.estimate,
            "ci_low": x.ci_low,
            "ci_high": x.ci_high,
            "predicted": float(pred[x.decile]),
            "compared_with": "predicted by the model trained on the earlier window",
            **meta,
            "status": "ok",
        }
        for _, x in r.sort_values("decile").iterrows()
    ]


@single_threaded
def icp_tables(
    deals: pd.DataFrame | None, accounts: pd.DataFrame | None, settings: IcpSettings = IcpSettings()
) -> dict[str, pd.DataFrame]:
    """``icp_segments``, ``icp_account_fit`` and ``icp_validation`` (status rows when inputs are missing)."""
    if deals is None or deals.empty or accounts is None:
        return _status("no closed deals in the marts")
    rung, deals = choose_basis(deals)
    basis = rung.label.format(cost_basis=cost_basis_of(deals))
    segments = segment_table(deals, settings).assign(basis=basis)
    # account fit on the whole window
    predicted = fit_model(deals, accounts, settings)
    acc = account_outcomes(deals).set_index("account_id")
    fit = _fit_frame(accounts).assign(icp_segment=segment_key(accounts, settings.dimensions))
    fit["predicted_cm_per_selling_hour"] = fit.account_id.map(predicted)
    fit["fit_score"] = fit.account_id.map(_score(predicted))
    fit["fit_tier"] = fit.fit_score.map(_fit_tier)
    fit["segment_tier"] = fit.icp_segment.map(segments.set_index("icp_segment").tier)
    fit["n_closed_deals"] = fit.account_id.map(acc.n_deals).fillna(0).astype(int)
    fit["n_won_deals"] = fit.account_id.map(acc.n_won).fillna(0).astype(int)
    fit["contribution_margin"] = fit.account_id.map(acc.contribution_margin)
    fit["selling_hours"] = fit.account_id.map(acc.selling_hours)
    fit["realised_cm_per_selling_hour"] = fit.account_id.map(acc.cm_per_selling_hour)
    fit["model"] = (
        f"WLS of account {rung.rate} on "
        + ", ".join(settings.fit_features)
        + (" (weights: selling hours)" if rung is MARGIN_BASIS else " (weights: closed deals)")
        + "; score = percentile of the prediction"
    )
    fit["basis"] = basis
    fit["status"] = "ok"
    fit = fit.assign(**period_columns(deals))
    # out of time
    split = _split(deals, settings)
    early, later = deals[deals.close_date < split], deals[deals.close_date >= split]
    validation: list[dict] = []
    if early.empty or later.empty:
        validation.append(
            {"validation": "segment_tier_out_of_time", "status": f"no deals on one side of {split.date()}"}
        )
    else:
        meta = {
            "train_period_start": str(early.close_date.min().date()),
            "train_period_end": str(early.close_date.max().date()),
            "test_period_start": str(later.close_date.min().date()),
            "test_period_end": str(later.close_date.max().date()),
        }
        months = max((later.close_date.max() - later.close_date.min()).days / 30.4375, 1.0)
        early_segments = segment_table(early, settings).set_index("icp_segment").tier
        tier_of_account = fit.set_index("account_id").icp_segment.map(early_segments).dropna()
        validation += _tier_rows("segment_tier_out_of_time", tier_of_account, later, months, meta, settings)
        pred_early = fit_model(early, accounts, settings)
        fit_tier_early = _score(pred_early).map(_fit_tier)
        validation += _tier_rows(
            "account_fit_tier_out_of_time", fit_tier_early, later, months, meta, settings
        )
        validation += _calibration_rows(pred_early, later, meta)
    return {
        "icp_segments": segments.reindex(columns=columns("icp_segments")),
        "icp_account_fit": fit.reindex(columns=columns("icp_account_fit")),
        "icp_validation": pd.DataFrame(validation)
        .assign(basis=basis)
        .reindex(columns=columns("icp_validation")),
    }


def _status(reason: str) -> dict[str, pd.DataFrame]:
    return {
        "icp_segments": pd.DataFrame([{"status": reason}], columns=columns("icp_segments")),
        "icp_account_fit": pd.DataFrame([{"status": reason}], columns=columns("icp_account_fit")),
        "icp_validation": pd.DataFrame([{"status": reason}], columns=columns("icp_validation")),
    }


def compute(inputs: AnalysisInputs) -> dict[str, pd.DataFrame]:
    """The three ICP tables, with the ICP settings of strategy.yml."""
    settings = IcpSettings.from_dict(inputs.strategy.icp)
    return icp_tables(inputs.deals, inputs.accounts, settings)
