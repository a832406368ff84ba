"""Running one registered analysis: its inputs read on first use, its preconditions checked, its
function, its tables written.

Every analysis is wired the same way: ``run_analysis`` checks the preconditions the registry declares
on the closed deals and reps of the marts (on every opportunity, open ones too, for an analysis whose
``population`` is the opportunities), then ``Analysis.compute(AnalysisInputs)`` returns its
tables, and they are written with the registry's schema. A table whose preconditions are unmet holds
status rows ``not estimable: <finding> (needs <requirement>)``; an analysis that raises writes
``failed: <exception type>: <message>`` rows in all its tables and logs the traceback, so one failing
analysis never keeps the others or the publishing from running. The warehouse is opened only for each
read and for the final write (DuckDB has one writer at a time), never while the analysis computes.

    connect = functools.partial(duckdb.connect, "warehouse.duckdb")  # returns a context manager
    run = run_analysis(registry.analysis("rep_variance"), connect, "causal.yml", "strategy.yml")
"""

from __future__ import annotations

import logging
import resource
import time
import traceback
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import duckdb
import pandas as pd

from salesalign.analytics.alignment import Strategy, load_strategy
from salesalign.analytics.config import CausalConfig, load_config, read_deals
from salesalign.analytics.decision_data import MART_TABLES, DecisionInputs, read_decision_inputs
from salesalign.analytics.funnel import MART as OPPORTUNITIES_MART
from salesalign.analytics.funnel import read_opportunities
from salesalign.analytics.preconditions import failed, not_estimable, table_status
from salesalign.analytics.registry import CAUSAL_MARTS, OPPORTUNITIES, SCHEMA, Analysis
from salesalign.analytics.warehouse import write_table

log = logging.getLogger(__name__)

Connect = Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]]


class AnalysisInputs:
    """What an analysis may read, each loaded once on first use: the marts' closed deals, reps and
    accounts (`decision_data`), every opportunity open or closed (`funnel`), the effects' frame
    declared by causal.yml, the analytics tables it declares in ``reads``, causal.yml and strategy.yml.

    Reading a mart or an analytics table the registry entry does not declare raises, so the asset's
    dependencies are the truth. ``missing`` collects what the warehouse lacked (status rows follow).
    """

    def __init__(
        self,
        analysis: Analysis,
        connect: Connect,
        causal_yml: str | Path | None,
        strategy_yml: str | Path | None,
    ):
        self.analysis = analysis
        self.missing: list[str] = []
        self._connect = connect
        self._causal_yml = causal_yml
        self._strategy_yml = strategy_yml
        self._tables: dict[str, pd.DataFrame | None] = {}

    def _require_marts(self, marts: tuple[str, ...]) -> None:
        undeclared = [m for m in marts if m not in self.analysis.marts]
        if undeclared:
            raise LookupError(
                f"analysis {self.analysis.name} reads marts {undeclared} it does not declare in the registry"
            )

    @cached_property
    def decision(self) -> DecisionInputs:
        """Closed deals, reps and accounts of the marts, and what is missing there."""
        self._require_marts(MART_TABLES)
        with self._connect() as con:
            inputs = read_decision_inputs(con)
        self.missing += inputs.missing
        return inputs

    @property
    def deals(self) -> pd.DataFrame | None:
        """One row per closed deal with account firmographics and the owner's hiring profile."""
        return self.decision.deals

    @property
    def reps(self) -> pd.DataFrame | None:
        return self.decision.reps

    @cached_property
    def opportunities(self) -> pd.DataFrame | None:
        """Every opportunity of marts.fct_opportunities, open and closed, with its follow-up
        (`funnel.read_opportunities`); None when the mart does not exist."""
        self._require_marts((OPPORTUNITIES_MART,))
        with self._connect() as con:
            frame, missing = read_opportunities(con)
        self.missing += missing
        return frame

    @property
    def accounts(self) -> pd.DataFrame | None:
        return self.decision.accounts

    @cached_property
    def causal_config(self) -> CausalConfig:
        """causal.yml: practices, outcomes, confounders and the engine's settings."""
        return load_config(self._causal_yml)

    @cached_property
    def causal_deals(self) -> tuple[pd.DataFrame | None, list[str]]:
        """The effects' frame (the columns causal.yml declares) and the expressions the marts cannot
        answer; no frame when the deal mart does not exist."""
        self._require_marts(CAUSAL_MARTS)
        config = self.causal_config
        with self._connect() as con:
            try:
                frame, missing = read_deals(con, config)
            except LookupError as exc:
                frame, missing = None, [str(exc)]
        self.missing += missing
        return frame, missing

    @cached_property
    def strategy(self) -> Strategy:
        """strategy.yml: the declared strategy and the ICP settings."""
        return load_strategy(self._strategy_yml)

    def table(self, name: str) -> pd.DataFrame | None:
        """``analytics.<name>`` as written by its analysis, or None when it has not been built."""
        if name not in self.analysis.reads:
            raise LookupError(
                f"analysis {self.analysis.name} reads analytics.{name} without declaring it in the "
                f"registry (reads: {list(self.analysis.reads)})"
            )
        if name not in self._tables:
            with self._connect() as con:
                exists = con.execute(
                    "select count(*) from information_schema.tables where table_schema = ? "
                    "and table_name = ?",
                    [SCHEMA, name],
                ).fetchone()[0]
                self._tables[name] = con.execute(f"select * from {SCHEMA}.{name}").df() if exists else None
        return self._tables[name]


@dataclass(frozen=True)
class AnalysisRun:
    """What one run of an analysis wrote, and what the asset reports about it."""

    analysis: Analysis
    tables: dict[str, pd.DataFrame]  # as written, by table name
    missing: list[str]
    deals: int  # closed deals in marts.fct_deal_margin
    period: tuple[str | None, str | None]  # their first and last close date
    seconds: float
    peak_rss_mb: float
    # by table: "ok", or the `not estimable: ...` / `failed: ...` status its rows hold instead of numbers
    statuses: dict[str, str]
    error: str | None = None  # the traceback when the analysis raised

    @property
    def failed(self) -> bool:
        return self.error is not None


def run_analysis(
    analysis: Analysis, connect: Connect, causal_yml: str | Path | None, strategy_yml: str | Path | None
) -> AnalysisRun:
    """Check the analysis' preconditions, compute it and replace its tables in the warehouse (one
    connection for the writes). Unmet preconditions and exceptions become status rows (module
    docstring); only a failure to write the tables themselves raises."""
    started = time.perf_counter()
    inputs = AnalysisInputs(analysis, connect, causal_yml, strategy_yml)
    error = None
    try:
        tables = _compute(analysis, inputs)
        written = _write(analysis, connect, tables)
    except Exception as exc:  # isolation: the status says failed, the log has the traceback
        error = traceback.format_exc()
        log.error("analysis %s failed:\n%s", analysis.name, error)
        tables = analysis.status_tables(failed(exc), inputs, _period_of(inputs))
        written = _write(analysis, connect, tables)
    return AnalysisRun(
        analysis,
        tables,
        inputs.missing,
        *written,
        time.perf_counter() - started,
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        {name: table_status(frame) for name, frame in tables.items()},
        error,
    )


def _compute(analysis: Analysis, inputs: AnalysisInputs) -> dict[str, pd.DataFrame]:
    """The analysis' tables: preconditions first, then the compute for the tables they allow (an
    analysis whose every table is gated is not computed at all)."""
    population, reps, absent = _population(analysis, inputs)
    if absent:
        return analysis.status_tables(not_estimable(absent), inputs)
    unmet = analysis.unmet(population, reps)
    period = _period_of(inputs)
    tables = analysis.compute(inputs) if len(unmet) < len(analysis.tables) else {}
    for name, status in unmet.items():
        tables[name] = analysis.status_tables(status, inputs, period)[name]
    return tables


def _population(
    analysis: Analysis, inputs: AnalysisInputs
) -> tuple[pd.DataFrame | None, pd.DataFrame | None, str]:
    """The rows the analysis' preconditions are checked on (`Analysis.population`), the reps beside
    them, and why nothing can be computed ("" when the rows are there)."""
    if analysis.population == OPPORTUNITIES:
        opportunities = inputs.opportunities
        if opportunities is None:
            return None, None, f"marts not available: {inputs.missing[-1]}"  # read_opportunities says why
        if opportunities.empty:
            return opportunities, None, f"no opportunities in marts.{OPPORTUNITIES_MART}"
        return opportunities, None, ""
    deals = inputs.deals
    if deals is None:
        return None, None, f"marts not available: {inputs.decision.missing[0]}"
    if deals.empty:
        return deals, None, "no closed deals in marts.fct_deal_margin"
    return deals, inputs.reps, ""


def _period_of(inputs: AnalysisInputs) -> dict:
    """period_start/period_end of the closed deals (for status rows), nothing when they cannot be read
    or the analysis does not describe closed deals."""
    if inputs.analysis.population == OPPORTUNITIES:
        return {}
    try:
        deals = inputs.deals
    except Exception:
        return {}
    if deals is None or deals.empty:
        return {}
    return {
        "period_start": str(deals.close_date.min().date()),
        "period_end": str(deals.close_date.max().date()),
    }


def _write(analysis: Analysis, connect: Connect, tables: dict[str, pd.DataFrame]):
    with connect() as con:
        for t in analysis.tables:
            write_table(con, t, tables[t.name])
        return _closed_deals(con)


def _closed_deals(con) -> tuple[int, tuple[str | None, str | None]]:
    """How many closed deals the marts hold and their close-date range (0 and no dates without marts)."""
    exists = con.execute(
        "select count(*) from information_schema.tables where table_schema = 'marts' "
        "and table_name = 'fct_deal_margin'"
    ).fetchone()[0]
    if not exists:
        return 0, (None, None)
    n, first, last = con.execute(
        "select count(*), min(close_date), max(close_date) from marts.fct_deal_margin"
    ).fetchone()
    return int(n), tuple(None if d is None else str(pd.Timestamp(d).date()) for d in (first, last))
