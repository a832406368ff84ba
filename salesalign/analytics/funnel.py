"""Funnel analytics: how many opportunities convert, and how fast, counted in deals (never money).

Reads every opportunity of ``marts.fct_opportunities``, open and closed, in one SQL query. Two rates
per row, because they answer different questions:

* ``win_rate_closed``: won / closed, with a Wilson interval. It conditions on having closed, so on a
  funnel where most leads are still open it describes the few that finished, not the funnel.
* ``conversion_<H>d``: the probability of being won within H days of creation, by the Aalen-Johansen
  cumulative incidence (statsmodels' ``CumIncidenceRight``): open opportunities are censored at the
  export's cut-off (``loaded_through``), lost is a competing event. Counting open ones as lost would
  bias the rate down; dropping them would bias it up. Open stays open.

Pure functions over a DuckDB connection and DataFrames (no Dagster).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import scipy.stats
from statsmodels.duration.survfunc import CumIncidenceRight
from statsmodels.stats.proportion import proportion_confint

from salesalign.analytics import preconditions as pre
from salesalign.analytics import registry
from salesalign.analytics.decision_data import unknown_label
from salesalign.analytics.registry import FUNNEL_DAYS, FUNNEL_HORIZON_DAYS

MART = "fct_opportunities"
Z95 = float(scipy.stats.norm.ppf(0.975))
CONVERSION = f"conversion_{FUNNEL_HORIZON_DAYS}d"
BASIS = "counts"
# dimension -> the column of the opportunities it groups by, and its name in words (status rows)
DIMENSIONS = {
    "all": (None, "all"),
    "lead_source": ("lead_source", "lead source"),
    "segment": ("segment_id", "segment"),
    "created_month": ("created_month", "created month"),
    "rep": ("rep_id", "rep"),
}
CURVE_DIMENSIONS = ("all", "lead_source")
LEAKAGE_DIMENSIONS = ("lead_source", "segment", "rep")  # recorded by people, so maybe only on wins
WON, LOST = 1, 2  # CumIncidenceRight's event codes; 0 = censored (open at the cut-off)

OPPORTUNITIES_SQL = f"""
select opportunity_id, created_at, close_date, is_closed, is_won, stage, lead_source, segment_id, rep_id,
       loaded_through
from marts.{MART}
order by opportunity_id
"""


def read_opportunities(con) -> tuple[pd.DataFrame | None, list[str]]:
    """Every opportunity of the marts with the funnel's columns and the days each was followed
    (``days``: to its close, or to the cut-off while open) and its ``event`` (won, lost or 0 =
    censored); no frame and the reason when the mart does not exist."""
    present = con.execute(
        "select count(*) from information_schema.tables where table_schema = 'marts' and table_name = ?",
        [MART],
    ).fetchone()[0]
    if not present:
        return None, [f"marts.{MART} does not exist (build the marts first)"]
    return follow_up(con.execute(OPPORTUNITIES_SQL).df()), []


def follow_up(opps: pd.DataFrame) -> pd.DataFrame:
    """``opps`` with ``days`` (creation to close, or to the cut-off while open), ``event``,
    ``created_month`` (`YYYY-MM`) and ``censored_at``: the cut-off, the latest ``loaded_through`` of
    the mart (a row keeps the one of the run that built it, and an open opportunity no later load
    changed was still open at the latest one)."""
    created = pd.to_datetime(opps.created_at).dt.normalize()
    closed = opps.is_closed.astype(bool)
    cut_off = pd.to_datetime(opps.loaded_through).max().normalize()
    end = pd.to_datetime(opps.close_date).where(closed, cut_off)
    # a close stamped before the creation (a source's data-entry error) is an event on day 0
    days = (end - created).dt.days.clip(lower=0)
    event = np.where(~closed, 0, np.where(opps.is_won.astype(bool), WON, LOST))
    return opps.assign(
        days=days.astype("int64"),
        event=event.astype("int64"),
        created_month=created.dt.strftime("%Y-%m"),
        censored_at=cut_off,
    )


# ---------------------------------------------------------------------------------------- estimators
def wilson(successes: int, n: int) -> tuple[float, float, float]:
    """The proportion ``successes / n`` and its Wilson 95% interval (NaNs when n is 0)."""
    if n == 0:
        return math.nan, math.nan, math.nan
    low, high = proportion_confint(successes, n, alpha=0.05, method="wilson")
    return successes / n, float(low), float(high)


def cumulative_incidence(days, event, at: tuple[int, ...]) -> pd.DataFrame:
    """Aalen-Johansen cumulative incidence of winning and of losing at each of ``at`` days, open
    opportunities censored: one row per (outcome, day) with the estimate, its 95% interval and the
    number still at risk. The interval is the log(-log) transform of the normal one (it stays inside
    0..1; none when the estimate is 0 or 1). A day beyond the longest follow-up has no estimate
    (``followed`` false): nothing is known there."""
    days = np.asarray(days, dtype=float)
    event = np.asarray(event, dtype=np.int64)
    rows = []
    times, curves = _curves(days, event)
    longest = float(days.max()) if len(days) else -1.0
    for outcome, code in (("won", WON), ("lost", LOST)):
        cinc, se = curves[code]
        for d in at:
            followed = longest >= d
            i = int(np.searchsorted(times, d, side="right")) - 1  # the last observed time on or before d
            p = float(cinc[i]) if i >= 0 else 0.0
            s = float(se[i]) if i >= 0 else 0.0
            low, high = _loglog_interval(p, s)
            rows.append(
                {
                    "outcome": outcome,
                    "days": int(d),
                    "cumulative_incidence": p if followed else math.nan,
                    "ci_low": low if followed else math.nan,
                    "ci_high": high if followed else math.nan,
                    "at_risk": int((days >= d).sum()),
                    "followed": followed,
                }
            )
    return pd.DataFrame(rows)


def _curves(days: np.ndarray, event: np.ndarray) -> tuple[np.ndarray, dict[int, tuple[np.ndarray, ...]]]:
    """Event times and, per event code, the cumulative incidence and its standard error there. A code
    that never occurs has incidence 0 (CumIncidenceRight returns curves only up to the largest code)."""
    if not (event > 0).any():
        zero = np.zeros(1)
        return np.zeros(1), {WON: (zero, zero), LOST: (zero, zero)}
    # its variance divides by (at risk - events), 0 at a last time where everyone left closes: from
    # there on no interval (NaN); the times before are unaffected
    with np.errstate(divide="ignore", invalid="ignore"):
        fit = CumIncidenceRight(days, event)
    out = {}
    for code in (WON, LOST):
        if code <= len(fit.cinc):
            out[code] = (np.asarray(fit.cinc[code - 1]), np.asarray(fit.cinc_se[code - 1]))
        else:
            out[code] = (np.zeros(len(fit.times)), np.zeros(len(fit.times)))
    return np.asarray(fit.times), out


def _loglog_interval(p: float, se: float) -> tuple[float, float]:
    if not (0 < p < 1) or not math.isfinite(se) or se <= 0:
        return math.nan, math.nan
    shift = Z95 * se / (p * math.log(p))
    a, b = p ** math.exp(shift), p ** math.exp(-shift)
    return min(a, b), max(a, b)


# ---------------------------------------------------------------------------------------- tables
def compute(inputs) -> dict[str, pd.DataFrame]:
    """The funnel tables from every opportunity of the marts (``inputs.opportunities``)."""
    opps = inputs.opportunities
    return {
        "funnel_conversion": conversion_table(opps),
        "funnel_time_to_convert": time_to_convert_table(opps),
    }


def _groups(opps: pd.DataFrame, dimension: str):
    """(value, its opportunities) of one dimension; a NULL value is its own group (`unknown_label`)."""
    column, _ = DIMENSIONS[dimension]
    if column is None:
        yield "all", opps
        return
    labels = opps[column].astype("string").fillna(unknown_label(column))
    for value in sorted(labels.unique()):
        yield str(value), opps[labels == value]


def _leakage(opps: pd.DataFrame) -> dict[str, str]:
    """Dimension -> its `not estimable` status, for the dimensions known for one outcome only among
    the closed opportunities (the rule of `preconditions.known_for_both_outcomes`)."""
    closed = opps[opps.is_closed.astype(bool)]
    out = {}
    for dimension in LEAKAGE_DIMENSIONS:
        column, what = DIMENSIONS[dimension]
        status = pre.known_for_both_outcomes(column, what).unmet(closed, None)
        if status:
            out[dimension] = status
    return out


def _too_few(n: int) -> str | None:
    threshold = pre.MIN_OPPORTUNITIES
    if n >= threshold.value:
        return None
    return pre.not_estimable(f"{n:,} opportunities (needs at least {threshold.value:,.0f}: {threshold.why})")


def _dates(opps: pd.DataFrame) -> dict:
    return {
        "created_from": pd.Timestamp(opps.created_at.min()).date(),
        "created_to": pd.Timestamp(opps.created_at.max()).date(),
        "censored_at": pd.Timestamp(opps.censored_at.iloc[0]).date(),
    }


def conversion_table(opps: pd.DataFrame) -> pd.DataFrame:
    """``analytics.funnel_conversion``: one row per (dimension, value), counts, the closed-only win
    rate and the censored conversion within the horizon, each with its interval."""
    leaked = _leakage(opps)
    rows = []
    for dimension in DIMENSIONS:
        for value, group in _groups(opps, dimension):
            won, lost = int((group.event == WON).sum()), int((group.event == LOST).sum())
            row = {
                "dimension": dimension,
                "value": value,
                "opportunities": len(group),
                "open": int((group.event == 0).sum()),
                "won": won,
                "lost": lost,
                **_dates(group),
                "basis": BASIS,
            }
            status = leaked.get(dimension) or _too_few(len(group))
            if status is None:
                rate, low, high = wilson(won, won + lost)
                curve = cumulative_incidence(group.days, group.event, (FUNNEL_HORIZON_DAYS,))
                at_h = curve[curve.outcome == "won"].iloc[0]
                row |= {
                    "win_rate_closed": rate,
                    "win_rate_closed_ci_low": low,
                    "win_rate_closed_ci_high": high,
                    CONVERSION: at_h.cumulative_incidence,
                    f"{CONVERSION}_ci_low": at_h.ci_low,
                    f"{CONVERSION}_ci_high": at_h.ci_high,
                    "at_risk_at_horizon": int(at_h.at_risk),
                }
                if not at_h.followed:
                    status = pre.not_estimable(
                        f"follow-up ends after {int(group.days.max()):,} days, before the "
                        f"{FUNNEL_HORIZON_DAYS}-day horizon"
                    )
            rows.append({**row, "status": status or "ok"})
    return pd.DataFrame(rows).reindex(columns=registry.columns("funnel_conversion"))


def time_to_convert_table(opps: pd.DataFrame) -> pd.DataFrame:
    """``analytics.funnel_time_to_convert``: the cumulative incidence of winning and of losing at
    each day of the grid, overall and by lead source, with intervals and the number at risk."""
    leaked = _leakage(opps)
    rows = []
    for dimension in CURVE_DIMENSIONS:
        for value, group in _groups(opps, dimension):
            key = {
                "dimension": dimension,
                "value": value,
                "opportunities": len(group),
                **_dates(group),
                "basis": BASIS,
            }
            status = leaked.get(dimension) or _too_few(len(group))
            if status is not None:
                rows += [
                    {
                        **key,
                        "outcome": o,
                        "days": d,
                        "at_risk": int((group.days >= d).sum()),
                        "status": status,
                    }
                    for o in ("won", "lost")
                    for d in FUNNEL_DAYS
                ]
                continue
            curve = cumulative_incidence(group.days, group.event, FUNNEL_DAYS)
            longest = int(group.days.max())
            for r in curve.itertuples():
                ok = (
                    "ok"
                    if r.followed
                    else pre.not_estimable(f"follow-up ends after {longest:,} days, before day {r.days}")
                )
                rows.append({**key, **r._asdict(), "status": ok})
    return pd.DataFrame(rows).reindex(columns=registry.columns("funnel_time_to_convert"))
