"""Running one registered analysis: its inputs read on first use, its function, its tables written.

Every analysis is wired the same way: ``Analysis.compute(AnalysisInputs)`` returns its tables, and
``run_analysis`` writes them with the registry's schema. The warehouse is opened only for each read
and for the final write (DuckDB has one writer at a time), never while the analysis computes.

    connect = functools.partial(duckdb.connect, "warehouse.duckdb")  # returns a context manager
    run = run_analysis(registry.analysis("rep_variance"), connect, "causal.yml", "strategy.yml")
"""

from __future__ import annotations

import resource
import time
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
from salesalign.analytics.registry import CAUSAL_MARTS, SCHEMA, Analysis
from salesalign.analytics.warehouse import write_table

Connect = Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]]


class AnalysisInputs:
    """What an analysis may read, each loaded once on first use: the marts' closed deals, reps and
    accounts (`decision_data`), the effects' frame declared by causal.yml, the analytics tables it
    declares in ``reads``, causal.yml and strategy.yml.

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
    tables: dict[str, pd.DataFrame]  # as computed, by table name
    missing: list[str]
    deals: int  # closed deals in marts.fct_deal_margin
    period: tuple[str | None, str | None]  # their first and last close date
    seconds: float
    peak_rss_mb: float


def run_analysis(
    analysis: Analysis, connect: Connect, causal_yml: str | Path | None, strategy_yml: str | Path | None
) -> AnalysisRun:
    """Compute an analysis and replace its tables in the warehouse (one connection for the writes)."""
    started = time.perf_counter()
    inputs = AnalysisInputs(analysis, connect, causal_yml, strategy_yml)
    tables = analysis.compute(inputs)
    with connect() as con:
        for t in analysis.tables:
            write_table(con, t, tables[t.name])
        deals, period = _closed_deals(con)
    return AnalysisRun(
        analysis,
        tables,
        inputs.missing,
        deals,
        period,
        time.perf_counter() - started,
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    )


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
