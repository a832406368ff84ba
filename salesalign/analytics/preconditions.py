"""What an analysis needs from the data before its numbers mean anything, checked on the data at hand.

Each `Precondition` states a requirement in words and checks it on the closed deals and reps of the
marts (`salesalign.analytics.decision_data`); unmet, it returns the finding with its figures. The
registry declares which preconditions every analysis (or one of its tables) has, and the runner
checks them before the compute: an unmet one turns the tables it gates into status rows
``not estimable: <finding> (needs <requirement>)`` instead of numbers that would look "ok".

The thresholds are declared once here, each with the reason for its value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from salesalign.analytics.decision_data import cost_basis_of

NOT_ESTIMABLE = "not estimable"
FAILED = "failed"


@dataclass(frozen=True)
class Threshold:
    value: float
    why: str


MIN_CLOSED_DEALS = Threshold(
    50,
    "the models adjust for the deal mix (segment, product, lead source, close quarter: dozens of "
    "parameters); with fewer closed deals their estimates are noise",
)
MIN_REPS = Threshold(
    5,
    "a variance between reps, a rep ranking or a ramp comparison needs several reps: with 2-4 the "
    "between-rep variance has 1-3 degrees of freedom and a single rep has none",
)
MIN_SEGMENTS = Threshold(
    2,
    "a customer profile ranks segments against each other; one segment has nothing to be compared with",
)
MAX_ENTITY_SHARE = Threshold(
    0.5,
    "one rep or account holding more than half of the closed deals is a placeholder (an export's "
    "default owner or catch-all account), not a person or a customer",
)
MIN_OPPORTUNITIES = Threshold(
    30,
    "below 30 opportunities a conversion rate of 50% has a Wilson 95% interval more than 34 points wide, "
    "and the normal interval of a cumulative incidence needs several events of each outcome",
)
THRESHOLDS = {
    "MIN_CLOSED_DEALS": MIN_CLOSED_DEALS,
    "MIN_REPS": MIN_REPS,
    "MIN_SEGMENTS": MIN_SEGMENTS,
    "MAX_ENTITY_SHARE": MAX_ENTITY_SHARE,
    "MIN_OPPORTUNITIES": MIN_OPPORTUNITIES,
}

Check = Callable[[pd.DataFrame, pd.DataFrame | None], str | None]


@dataclass(frozen=True)
class Precondition:
    """One requirement of an analysis on the data: ``check(deals, reps)`` returns None when it holds,
    else the finding (with figures) that breaks it."""

    requirement: str  # what must hold, in words: the docs and the status row say it
    check: Check
    tables: tuple[str, ...] = ()  # the tables it gates; () = every table of the analysis

    def unmet(self, deals: pd.DataFrame, reps: pd.DataFrame | None) -> str | None:
        """The status text when the data breaks the requirement, None when it holds."""
        finding = self.check(deals, reps)
        return None if finding is None else not_estimable(f"{finding} (needs {self.requirement})")


def not_estimable(reason: str) -> str:
    """The status of a table whose data does not support the analysis."""
    return f"{NOT_ESTIMABLE}: {reason}"


def failed(exc: BaseException) -> str:
    """The status of a table whose analysis raised: the exception's type and message."""
    return f"{FAILED}: {type(exc).__name__}: {exc}"


def table_status(frame: pd.DataFrame) -> str:
    """``ok`` when some row of an analytics table holds numbers (status ``ok``), else the status of its
    first row (why it holds none)."""
    if frame.empty:
        return "empty"
    if "status" not in frame:
        return "ok"
    statuses = frame.status.dropna()
    if (statuses == "ok").any():
        return "ok"
    return str(statuses.iloc[0]) if len(statuses) else "no status"


def _n(v: float) -> str:
    return f"{v:,.0f}"


def _examples(values, limit: int = 3) -> str:
    shown = [str(v) for v in list(values)[:limit]]
    return ", ".join(shown) + (", ..." if len(values) > limit else "")


# ---------------------------------------------------------------------------------------- factories
def enough_closed_deals(threshold: Threshold = MIN_CLOSED_DEALS) -> Precondition:
    """At least ``threshold`` closed deals."""

    def check(deals, _reps):
        n = len(deals)
        return None if n >= threshold.value else f"{_n(n)} closed deals"

    return Precondition(f"at least {_n(threshold.value)} closed deals: {threshold.why}", check)


def enough_opportunities(threshold: Threshold = MIN_OPPORTUNITIES) -> Precondition:
    """At least ``threshold`` opportunities, open or closed (checked on `AnalysisInputs.opportunities`)."""

    def check(opportunities, _reps):
        n = len(opportunities)
        return None if n >= threshold.value else f"{_n(n)} opportunities"

    return Precondition(f"at least {_n(threshold.value)} opportunities: {threshold.why}", check)


def outcome_varies() -> Precondition:
    """Both won and lost deals: a model of winning needs both."""

    def check(deals, _reps):
        won = int(deals.is_won.sum())
        if 0 < won < len(deals):
            return None
        return f"all {_n(len(deals))} closed deals are {'won' if won else 'lost'}"

    return Precondition("won and lost deals: what predicts winning is measured by comparing them", check)


def enough_distinct(
    column: str, what: str, threshold: Threshold, tables: tuple[str, ...] = ()
) -> Precondition:
    """At least ``threshold`` distinct values of ``column`` among the closed deals."""

    def check(deals, _reps):
        values = deals[column].dropna().unique()
        if len(values) >= threshold.value:
            return None
        listed = f" ({_examples(sorted(map(str, values)))})" if len(values) else ""
        return f"{len(values)} {what}{'' if len(values) == 1 else 's'} on the closed deals{listed}"

    return Precondition(f"at least {_n(threshold.value)} {what}s: {threshold.why}", check, tables)


def known_for_both_outcomes(column: str, what: str, tables: tuple[str, ...] = ()) -> Precondition:
    """``column`` takes several values on one outcome but at most one (or none) on the other: it is
    recorded for one outcome only, so any model of it learns the outcome (leakage)."""

    def check(deals, _reps):
        values = {
            outcome: deals.loc[deals.is_won == won, column].dropna().unique()
            for outcome, won in (("won", True), ("lost", False))
        }
        counts = {k: int((deals.is_won == (k == "won")).sum()) for k in values}
        for one, other in (("won", "lost"), ("lost", "won")):
            if len(values[one]) >= 2 and len(values[other]) <= 1 and counts[other] > 0:
                held = (
                    f"all have {values[other][0]}"
                    if len(values[other]) == 1
                    else f"none has a {what}"
                )
                return (
                    f"the {what} is known only on {one} deals: the {_n(counts[other])} {other} deals "
                    f"{held}, the {_n(counts[one])} {one} deals have {len(values[one])} (outcome leakage)"
                )
        return None

    return Precondition(
        f"the {what} recorded on won and lost deals alike: a value known for one outcome only predicts "
        "the outcome by construction",
        check,
        tables,
    )


def no_placeholder(
    column: str, what: str, threshold: Threshold = MAX_ENTITY_SHARE, tables: tuple[str, ...] = ()
) -> Precondition:
    """No single value of ``column`` holds more than ``threshold`` of the closed deals."""

    def check(deals, _reps):
        counts = deals[column].value_counts(dropna=True)
        if counts.empty or len(deals) == 0:
            return None
        share = counts.iloc[0] / len(deals)
        if share <= threshold.value or counts.size < 2:
            # a single value is "too few", not "a placeholder": enough_distinct says so
            return None
        return (
            f"{what} {counts.index[0]} holds {share:.0%} of the closed deals "
            f"({_n(counts.iloc[0])} of {_n(len(deals))})"
        )

    return Precondition(
        f"no {what} holding more than {threshold.value:.0%} of the closed deals: {threshold.why}",
        check,
        tables,
    )


def close_dates_vary(tables: tuple[str, ...] = ()) -> Precondition:
    """Closed deals on more than one day."""

    def check(deals, _reps):
        days = deals.close_date.dropna().dt.normalize().unique()
        if len(days) >= 2:
            return None
        on = f" ({pd.Timestamp(days[0]):%Y-%m-%d})" if len(days) else ""
        return f"every closed deal has the same close date{on}"

    return Precondition(
        "close dates on more than one day: comparing periods (earlier against later deals) needs time",
        check,
        tables,
    )


def hire_dates_vary(tables: tuple[str, ...] = ()) -> Precondition:
    """The reps who own closed deals have different hire dates."""

    def check(deals, reps):
        owners = reps[reps.rep_id.isin(deals.rep_id.unique())] if reps is not None else None
        if owners is None or owners.empty:
            return "no rep of the closed deals is in marts.dim_reps"
        if len(owners) < 2:
            return None  # one rep has no ramp to compare: enough_distinct says so
        dates = owners.hire_date.dropna().unique()
        if len(dates) >= 2:
            return None
        if len(dates) == 0:
            return f"none of the {len(owners)} reps has a hire date"
        return (
            f"every one of the {len(owners)} reps has the same hire date ({pd.Timestamp(dates[0]):%Y-%m-%d}: "
            "the source has no hire dates and the export profile assumed one)"
        )

    return Precondition(
        "reps hired on different dates: tenure and ramp are measured from the hire date", check, tables
    )


def selling_hours_recorded(tables: tuple[str, ...] = ()) -> Precondition:
    """Selling hours recorded on the closed deals (the source delivered activities)."""

    def check(deals, _reps):
        hours = deals.selling_hours
        if hours.notna().all() and float(hours.sum()) > 0:
            return None
        if hours.isna().all() or not bool(deals.has_activity_data.all()):
            return "no selling activities: the source delivered none, so selling hours are unknown"
        return "no selling activities: selling hours are 0 on every closed deal"

    return Precondition(
        "selling hours on the deals: effort shares and returns per hour are measured in them", check, tables
    )


def margin_recorded(tables: tuple[str, ...] = ()) -> Precondition:
    """Contribution margin on every closed deal (the source delivered the full cost data)."""

    def check(deals, _reps):
        known = int(deals.contribution_margin.notna().sum())
        if known == len(deals):
            return None
        basis = cost_basis_of(deals)
        return (
            f"contribution margin is known on {_n(known)} of {_n(len(deals))} closed deals "
            f"(cost basis: {basis})"
        )

    return Precondition(
        "contribution margin on every closed deal: the returns compared are contribution per selling hour",
        check,
        tables,
    )
