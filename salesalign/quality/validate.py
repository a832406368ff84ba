"""Validate a landed batch with its GX suites and turn the results into a verdict.

What an expectation failure means is read from the suite file, in each expectation's `meta`:
- `severity`: `blocking` (the batch must not flow downstream) or `warning` (recorded, passes);
- `on_failure`: `fail_batch` (the failure counts against the batch with its severity) or
  `quarantine` (a row-level expectation: the offending rows are set aside in
  `raw_quarantine.quarantined_rows` and the batch goes on; the raw rows themselves stay in raw);
- `reason`: the sentence people read when it fails.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd

from salesalign import contract
from salesalign.contract import BLOCKING, FAIL_BATCH, QUARANTINE, WARNING
from salesalign.quality import frames
from salesalign.quality.gx_context import RAW_KINDS, quality_context, suite_name
from salesalign.quality.quarantine import QuarantinedRow, replace_quarantine

SAMPLE_ROWS = 5


@dataclass
class ExpectationOutcome:
    """One expectation over the whole batch (its chunks folded together)."""

    suite: str
    type: str
    column: str | None
    reason: str
    severity: str
    on_failure: str
    success: bool = True
    element_count: int = 0
    unexpected_count: int = 0
    observed: object = None
    sample: list[dict] = field(default_factory=list)
    quarantined: int = 0
    error: str | None = None

    @property
    def name(self) -> str:
        return f"{self.type}({self.column})" if self.column else self.type

    @property
    def outcome(self) -> str:
        """`passed`, `quarantined`, `blocking` or `warning`."""
        if self.success:
            return "passed"
        if self.on_failure == QUARANTINE and self.error is None:
            return "quarantined"
        return self.severity

    def message(self, table: str) -> str:
        if self.error:
            what = f"could not be evaluated: {self.error}"
        elif self.element_count:
            what = f"failed for {self.unexpected_count} of {self.element_count} rows"
        else:
            what = f"failed (observed {self.observed!r})"
        text = f"{table}: [{self.outcome}] {self.name} {what}: {self.reason}"
        if self.sample:
            text += "; e.g. " + "; ".join(
                ", ".join(f"{k}={v}" for k, v in row.items()) for row in self.sample
            )
        return text


@dataclass
class BatchReport:
    """The verdict on one batch of one table."""

    table: str  # `raw.opportunities`
    load_ids: list[str]
    rows: int = 0
    chunks: int = 0
    seconds: float = 0.0
    outcomes: list[ExpectationOutcome] = field(default_factory=list)
    quarantined_rows: int = 0
    docs: str | None = None

    def by_outcome(self, outcome: str) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if o.outcome == outcome]

    @property
    def passed(self) -> bool:
        return not self.by_outcome(BLOCKING)

    @property
    def failures(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success]

    def summary(self) -> str:
        counts = {k: len(self.by_outcome(k)) for k in (BLOCKING, WARNING, "quarantined")}
        head = (
            f"{self.table}: {len(self.outcomes)} expectations on {self.rows} rows"
            f"{f' of {len(self.load_ids)} load(s)' if self.load_ids else ''}: "
            f"{counts[BLOCKING]} blocking failure(s), {counts[WARNING]} warning(s), "
            f"{counts['quarantined']} quarantining ({self.quarantined_rows} rows quarantined)"
        )
        return "\n".join([head, *(o.message(self.table) for o in self.failures)])


def _meta(expectation) -> tuple[str, str, str]:
    meta = expectation.meta or {}
    return meta.get("severity", BLOCKING), meta.get("on_failure", FAIL_BATCH), meta.get("reason", "")


def _column(kwargs: dict) -> str | None:
    if kwargs.get("column"):
        return kwargs["column"]
    if kwargs.get("column_A"):
        return f"{kwargs['column_A']},{kwargs['column_B']}"
    return None


def _plain(value):
    """JSON- and SQL-friendly scalar."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    return value


class _Runner:
    """Runs suites through their checkpoints (so results reach the store and Data Docs)."""

    def __init__(self, home: Path | str):
        self.context = quality_context(home)
        self.result_ids: list = []

    def suites_for(self, table: str, kinds: Iterable[str]) -> dict[str, object]:
        existing = {s.name: s for s in self.context.suites.all()}
        names = {k: suite_name("raw", table, k) for k in kinds}
        return {k: existing[name] for k, name in names.items() if name in existing}

    def run_suite(
        self,
        suite,
        frames_: Iterator[pd.DataFrame],
        report: BatchReport,
        about: dict[str, str] | None = None,
        index_columns: tuple[str, ...] = (),
    ) -> list[QuarantinedRow]:
        """Run the suite's checkpoint on every frame; fold the results into `report`."""
        checkpoint = self.context.checkpoints.get(suite.name)
        outcomes: dict[str, ExpectationOutcome] = {}
        for e in suite.expectations:
            severity, on_failure, reason = _meta(e)
            kwargs = e.configuration.kwargs
            outcomes[e.id] = ExpectationOutcome(
                suite.name, e.expectation_type, _column(kwargs), reason, severity, on_failure
            )
        quarantined: list[QuarantinedRow] = []
        for frame in frames_:
            if about is not None:  # the rows frame: count what was validated
                report.rows += len(frame)
                report.chunks += 1
            result = checkpoint.run(batch_parameters={"dataframe": frame})
            for result_id, run_result in result.run_results.items():
                self.result_ids.append(result_id)
                for r in run_result.results:
                    o = outcomes[r.expectation_config.id]
                    self._fold(o, r, frame, about, index_columns, quarantined)
        report.outcomes.extend(outcomes.values())
        return quarantined

    def _fold(self, o, r, frame, about, index_columns, quarantined) -> None:
        res = r.result or {}
        if r.exception_info and r.exception_info.get("raised_exception"):
            o.error = (r.exception_info.get("exception_message") or "error").splitlines()[0]
        o.success = o.success and bool(r.success)
        o.element_count += int(res.get("element_count") or 0)
        o.unexpected_count += int(res.get("unexpected_count") or 0)
        if "observed_value" in res:
            o.observed = (
                _plain(res["observed_value"])
                if not isinstance(res["observed_value"], list)
                else res["observed_value"]
            )
        if r.success:
            return
        unexpected = res.get("unexpected_index_list") or []
        if unexpected and isinstance(unexpected[0], dict) and about is not None:
            row_id = list(frames.ROW_ID)
            bad = pd.DataFrame(unexpected)[row_id].astype(frame[row_id].dtypes.to_dict())
            rows = frame.merge(bad, on=row_id, how="inner")
            raw_column = about.get(o.column or "", o.column)
            shown = [
                c
                for c in dict.fromkeys([*index_columns, raw_column, o.column])
                if c in rows.columns and c != "_load_id"
            ]
            for row in rows.head(max(SAMPLE_ROWS - len(o.sample), 0)).to_dict("records"):
                o.sample.append({c: _plain(row[c]) for c in shown})
            if o.on_failure == QUARANTINE:
                key_cols = [c for c in index_columns if c not in frames.ROW_ID]
                for row in rows.to_dict("records"):
                    quarantined.append(
                        QuarantinedRow(
                            load_id=row["_load_id"],
                            source_row=int(row["_source_row"]),
                            key_value="|".join(str(_plain(row[k])) for k in key_cols),
                            expectation=o.name,
                            column_name=raw_column,
                            value=_str(row.get(raw_column)),
                            reason=o.reason,
                        )
                    )
                o.quarantined += len(rows)
        elif not o.sample:
            values = res.get("partial_unexpected_list") or []
            o.sample = [{o.column or "value": _plain(v)} for v in values[:SAMPLE_ROWS]]

    def build_docs(self) -> str | None:
        if not self.result_ids:
            return None
        sites = self.context.build_data_docs(resource_identifiers=self.result_ids)
        return next(iter(sites.values()), None)


def _str(value) -> str | None:
    value = _plain(value)
    return None if value is None else str(value)


def validate_raw_batch(
    con: duckdb.DuckDBPyConnection,
    table_name: str,
    load_ids: list[str],
    home: Path | str,
    *,
    chunk_rows: int = frames.DEFAULT_CHUNK_ROWS,
    build_docs: bool = True,
) -> BatchReport:
    """Validate the rows of `load_ids` in `raw.<table>` with the table's suites; quarantine, report."""
    t = contract.table(table_name)
    started = time.perf_counter()
    runner = _Runner(home)
    report = BatchReport(f"raw.{t.name}", list(load_ids))
    suites = runner.suites_for(t.name, RAW_KINDS)
    quarantined: list[QuarantinedRow] = []
    if "schema" in suites:
        runner.run_suite(suites["schema"], iter([frames.schema_frame(con, t.name)]), report)
    if "batch" in suites:
        runner.run_suite(suites["batch"], iter([frames.batch_frame(con, t.name, load_ids)]), report)
    if "reconciliation" in suites:
        runner.run_suite(
            suites["reconciliation"], iter([frames.reconciliation_frame(con, t.name, load_ids)]), report
        )
    if "rows" in suites:
        suite = suites["rows"]
        derived = frames.derived_columns(t.name)
        about = {name: d.about for name, d in derived.items()}
        columns = _columns_read(suite, about)
        index_columns = tuple(dict.fromkeys([*frames.ROW_ID, *t.primary_key]))
        chunks = frames.iter_rows(con, t.name, load_ids, columns, chunk_rows)
        quarantined = runner.run_suite(suite, chunks, report, about, index_columns)
    report.quarantined_rows = replace_quarantine(con, t.name, load_ids, quarantined, datetime.now(UTC))
    report.seconds = time.perf_counter() - started
    if build_docs:
        report.docs = runner.build_docs()
    return report


def _columns_read(suite, about: dict[str, str]) -> list[str]:
    """The columns the suite's expectations read, with the raw column each computed one is about."""
    columns: list[str] = []
    for e in suite.expectations:
        for c in frames.referenced_columns(e.configuration.kwargs):
            columns += [c, about[c]] if c in about else [c]
    return list(dict.fromkeys(columns))
