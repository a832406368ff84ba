"""Inputs of the decision tables: the columns they need from the marts, pulled in one SQL query each.

Pure functions over a DuckDB connection (no Dagster): ``read_decision_inputs(con)`` returns the closed
deals (one row per deal, with account firmographics and the owner's hiring profile), the reps and the
accounts, plus the list of what is missing (a mart not built, no activities, no costs) so the decision
functions can write status rows instead of failing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from salesalign.contract import PRACTICE_ACTIVITY_TYPES

PRACTICES = PRACTICE_ACTIVITY_TYPES
MART_TABLES = ("fct_deal_margin", "dim_accounts", "dim_reps")
# the row label of deals whose account (so segment), owner or lead source the source does not know, in
# tables grouped by them: a group of its own, never dropped (marts.mart_segment_performance labels the
# unknown account alike)
UNKNOWN_LABELS = {
    "segment_id": "(unknown account)",
    "rep_id": "(unknown rep)",
    "lead_source": "(unknown lead source)",
}


def unknown_label(column: str) -> str:
    """The group label of the rows whose ``column`` is NULL."""
    return UNKNOWN_LABELS.get(column, "(unknown)")

DEALS_SQL = """
select d.opportunity_id, d.account_id, d.rep_id, d.product_id, d.segment_id, d.lead_source,
       a.industry, a.size_band, a.region, a.country, a.employee_count,
       d.is_won, d.created_date, d.close_date, d.close_month, d.days_to_close, d.reporting_currency,
       cast(d.list_amount as double) as list_amount,
       cast(d.net_revenue as double) as net_revenue,
       cast(d.cogs as double) as cogs,
       cast(d.effort_cost as double) as effort_cost,
       cast(d.selling_cost as double) as selling_cost,
       cast(d.allocated_cost_to_serve as double) as cost_to_serve,
       cast(d.contribution_margin as double) as contribution_margin,
       d.selling_hours,
       cast(d.net_bookings as double) as net_bookings,
       {coverage_cols},
       {practice_cols},
       r.hire_date, r.prior_industry_experience, r.previous_role,
       date_diff('day', r.hire_date, d.created_date) / 30.4375 as rep_tenure_months
from marts.fct_deal_margin d
-- a deal with the unknown account (has_known_account false) stays, its firmographics null
left join marts.dim_accounts a using (account_id)
-- likewise a deal whose owner is unknown: its rep columns null
left join marts.dim_reps r on r.rep_id = d.rep_id
order by d.opportunity_id  -- fits sum in row order: the same deals must give the same digits
"""

REPS_SQL = """
select rep_id, hire_date, prior_industry_experience, previous_role, years_experience, is_manager, region
from marts.dim_reps
order by rep_id
"""

ACCOUNTS_SQL = """
select account_id, industry, size_band, region, country, employee_count, segment_id
from marts.dim_accounts
order by account_id
"""


@dataclass
class DecisionInputs:
    deals: pd.DataFrame | None
    reps: pd.DataFrame | None
    accounts: pd.DataFrame | None
    missing: list[str] = field(default_factory=list)

    @property
    def has_effort(self) -> bool:
        """Activities were recorded (selling hours exist): ROI per hour and practices are computable."""
        return self.deals is not None and not self.deals.empty and float(self.deals.selling_hours.sum()) > 0

    @property
    def has_costs(self) -> bool:
        """Rep costs were recorded (selling effort has a price)."""
        return self.deals is not None and not self.deals.empty and float(self.deals.effort_cost.sum()) > 0

    @property
    def cost_basis(self) -> str | None:
        """``fct_deal_margin.cost_basis``: 'full', 'bookings only: no finance data' or 'partial: no ...'."""
        if self.deals is None or self.deals.empty:
            return None
        return cost_basis_of(self.deals)

    @property
    def has_margin(self) -> bool:
        """Contribution margin is computed on every deal (the source delivered all cost tables)."""
        return has_margin(self.deals)


def has_margin(deals: pd.DataFrame | None) -> bool:
    """Every deal has a contribution margin (the mart's cost basis is 'full')."""
    return deals is not None and not deals.empty and bool(deals.contribution_margin.notna().all())


def cost_basis_of(deals: pd.DataFrame | None) -> str:
    """The deals' cost basis in words: the one basis they share, or each basis with its deal count (a
    deal whose product is unknown has no COGS, so its basis differs from the others')."""
    if deals is None or deals.empty or "cost_basis" not in deals:
        return "unknown"
    counts = deals.cost_basis.fillna("unknown").value_counts()
    if len(counts) == 1:
        return str(counts.index[0])
    return ", ".join(f"{basis} on {n:,} deals" for basis, n in counts.items())


def no_margin_reason(deals: pd.DataFrame | None) -> str:
    """Why contribution margin is not available, naming the mart's cost basis."""
    basis = cost_basis_of(deals)
    return (
        "not estimable: contribution margin needs cost data the source did not deliver "
        f"(cost basis: {basis})"
    )


def read_decision_inputs(con) -> DecisionInputs:
    """Closed deals, reps and accounts from ``marts.*``; a missing mart is reported, not raised."""
    present = {
        r[0]
        for r in con.execute(
            "select table_name from information_schema.tables where table_schema = 'marts'"
        ).fetchall()
    }
    missing = [f"marts.{t} does not exist (build the marts first)" for t in MART_TABLES if t not in present]
    if missing:
        return DecisionInputs(None, None, None, missing)
    deal_cols = {
        r[0]
        for r in con.execute(
            "select column_name from information_schema.columns "
            "where table_schema = 'marts' and table_name = 'fct_deal_margin'"
        ).fetchall()
    }
    practice_cols = []
    for p in PRACTICES:
        if f"has_{p}" in deal_cols:
            practice_cols += [f"d.has_{p}", f"d.{p}_hours"]
        else:
            missing.append(f"practice {p}: no has_{p} column in marts.fct_deal_margin")
            practice_cols += [f"null::boolean as has_{p}", f"null::double as {p}_hours"]
    coverage_cols = ", ".join(
        f"d.{c}" if c in deal_cols else default
        for c, default in (
            ("cost_basis", "'full' as cost_basis"),
            ("has_cost_data", "true as has_cost_data"),
            ("has_activity_data", "true as has_activity_data"),
        )
    )
    deals = con.execute(
        DEALS_SQL.format(practice_cols=", ".join(practice_cols), coverage_cols=coverage_cols)
    ).df()
    for c in ("created_date", "close_date", "close_month", "hire_date"):
        deals[c] = pd.to_datetime(deals[c])
    deals["is_won"] = deals.is_won.astype(bool)
    reps = con.execute(REPS_SQL).df()
    reps["hire_date"] = pd.to_datetime(reps.hire_date)
    accounts = con.execute(ACCOUNTS_SQL).df()
    inputs = DecisionInputs(deals, reps, accounts, missing)
    if deals.empty:
        missing.append("no closed deals in marts.fct_deal_margin")
    elif not bool(deals.has_activity_data.all()):
        missing.append(
            "the source delivered no activities: selling hours and practices are unknown "
            f"(per-hour returns and practice effects not computable; cost basis: {inputs.cost_basis})"
        )
    elif not inputs.has_effort:
        missing.append(
            "no selling activities: selling hours are 0 (per-hour returns and practices not computable)"
        )
    elif not inputs.has_costs:
        missing.append("no rep costs: effort cost is 0 (returns per dollar of selling cost not computable)")
    return inputs


def add_mix_columns(deals: pd.DataFrame) -> pd.DataFrame:
    """Derived deal-mix columns the models adjust for (log list amount, close quarter, rep tenure).

    Unknown stays unknown (NaN): the design matrix gives it a missing indicator, and a covariate unknown
    on every deal is constant and adjusts for nothing (`mix_adjusted_for` leaves it out)."""
    out = deals.copy()
    out["log_list_amount"] = np.log1p(out.list_amount.astype(float).clip(lower=0))
    out["close_quarter"] = out.close_date.dt.year.astype(str) + "Q" + out.close_date.dt.quarter.astype(str)
    tenure = out.rep_tenure_months.astype(float).clip(lower=0)
    out["rep_tenure_60"] = tenure.clip(upper=60) / 60.0
    out["first_year_rep"] = (tenure < 12).astype(float).where(tenure.notna())
    return out


def mix_adjusted_for(deals: pd.DataFrame, mix: dict[str, str]) -> str:
    """The covariates of ``mix`` a model of ``deals`` really adjusts for, and those it cannot: a
    covariate with one value (or none) on every deal, e.g. deal size from a source without amounts."""
    inputs = [c for c in ("list_amount", "close_date", "rep_tenure_months", *mix) if c in deals]
    d = add_mix_columns(deals[list(dict.fromkeys(inputs))])
    varies = [name for name in mix if d[name].nunique(dropna=True) > 1]
    constant = [name for name in mix if name not in varies]
    return ", ".join(varies) + (
        f" (not adjusted for {', '.join(constant)}: one value or unknown on every deal)" if constant else ""
    )


def period_columns(frame: pd.DataFrame, date_col: str = "close_date") -> dict:
    """``period_start``/``period_end`` of the rows described (ISO dates, None when empty)."""
    if frame is None or frame.empty:
        return {"period_start": None, "period_end": None}
    return {
        "period_start": str(frame[date_col].min().date()),
        "period_end": str(frame[date_col].max().date()),
    }
