"""Dagster asset checks that run the GX suites on every landed batch (dagster-ge lacks GX 1.x: docs/stack.md).

One check, `great_expectations`, per raw table on its landing asset `raw/<table>` (the marts'
invariants are dbt tests, run by `dbt build`). It validates the loads that the latest
materialisation of the asset landed (its `load_ids` metadata; if there is none, the newest load in
`raw._loads`). The check is `blocking` when the table's suites hold a
blocking `fail_batch` expectation, so a failure stops the downstream dbt models in the same run.
A check of a table with foreign keys waits for the landing of the tables it references.
"""

import json
from functools import cache

import dagster as dg
from dagster import AssetCheckExecutionContext

from orchestration.extract import raw_asset_key
from orchestration.metadata import markdown_table
from orchestration.operations import WAREHOUSE_POOL, backfill_policy, daily_partitions, starting_on
from orchestration.resources import WarehouseResource
from salesalign import contract
from salesalign.extract.landing import LOADS
from salesalign.quality.frames import FX_TABLE
from salesalign.quality.gx_context import EXPECTATIONS_DIR
from salesalign.quality.quarantine import TABLE, ledger_summary, quarantined_by_table
from salesalign.quality.quarantine import TABLE as QUARANTINE_TABLE
from salesalign.quality.validate import BLOCKING, FAIL_BATCH, BatchReport, validate_raw_batch

CHECK_NAME = "great_expectations"


@cache
def suite_metas(layer: str, table: str) -> list[dict]:
    """The `meta` of every expectation in the table's suite files (read as JSON: no GX import needed)."""
    folder = EXPECTATIONS_DIR / "expectations" / layer / table
    return [
        e.get("meta") or {}
        for p in sorted(folder.glob("*.json"))
        for e in json.loads(p.read_text())["expectations"]
    ]


def has_blocking(layer: str, table: str) -> bool:
    return any(
        m.get("severity", BLOCKING) == BLOCKING and m.get("on_failure", FAIL_BATCH) == FAIL_BATCH
        for m in suite_metas(layer, table)
    )


def referenced_tables(table: contract.Table) -> list[str]:
    """Raw tables whose rows this table's checks look up (foreign keys, FX rates)."""
    refs = [ref for ref, _ in table.foreign_keys.values() if ref != table.name]
    if "currency" in table.column_names and table.name != "fx_rates":
        refs.append(FX_TABLE.split(".")[1])
    return list(dict.fromkeys(refs))


def _landed_load_ids(context: dg.AssetCheckExecutionContext, con, table: str) -> list[str]:
    event = context.instance.get_latest_materialization_event(raw_asset_key(table))
    meta = event.asset_materialization.metadata if event and event.asset_materialization else {}
    if "load_ids" in meta:
        return list(meta["load_ids"].value or [])
    newest = con.execute(
        f"SELECT load_id FROM {LOADS} WHERE table_name = ? ORDER BY loaded_at DESC LIMIT 1", [table]
    ).fetchone()
    return [newest[0]] if newest else []


def report_metadata(report: BatchReport) -> dict[str, dg.MetadataValue]:
    failures = report.failures
    lines = ["| outcome | expectation | unexpected | reason | sample |", "|---|---|---|---|---|"]
    for o in failures:
        sample = "; ".join(", ".join(f"{k}={v}" for k, v in row.items()) for row in o.sample) or str(
            o.observed
        )
        count = f"{o.unexpected_count} of {o.element_count}" if o.element_count else "-"
        lines.append(f"| {o.outcome} | `{o.name}` | {count} | {o.reason} | {sample} |")
    meta = {
        "table": dg.MetadataValue.text(report.table),
        "load_ids": dg.MetadataValue.json(report.load_ids),
        "rows_validated": dg.MetadataValue.int(report.rows),
        "chunks": dg.MetadataValue.int(report.chunks),
        "validation_seconds": dg.MetadataValue.float(round(report.seconds, 3)),
        "expectations": dg.MetadataValue.int(len(report.outcomes)),
        "blocking_failures": dg.MetadataValue.int(len(report.by_outcome(BLOCKING))),
        "warnings": dg.MetadataValue.int(len(report.by_outcome("warning"))),
        "quarantined_rows": dg.MetadataValue.int(report.quarantined_rows),
        "quarantine_table": dg.MetadataValue.text(QUARANTINE_TABLE),
        "failed_expectations": dg.MetadataValue.json(
            [
                {
                    "expectation": o.name,
                    "suite": o.suite,
                    "outcome": o.outcome,
                    "unexpected_count": o.unexpected_count,
                    "element_count": o.element_count,
                    "quarantined": o.quarantined,
                    "reason": o.reason,
                    "sample": o.sample,
                    **({"error": o.error} if o.error else {}),
                }
                for o in failures
            ]
        ),
        "failures": dg.MetadataValue.md("\n".join(lines) if failures else "_every expectation passed_"),
    }
    if report.docs:
        meta["data_docs"] = dg.MetadataValue.url(report.docs)
    return meta


def raw_quality_check(table: contract.Table) -> dg.AssetChecksDefinition:
    """The GX check of one raw table's landed batch."""

    @dg.asset_check(
        asset=raw_asset_key(table.name),
        name=CHECK_NAME,
        blocking=has_blocking("raw", table.name),
        additional_deps=[raw_asset_key(t) for t in referenced_tables(table)],
        description=f"Great Expectations suites raw.{table.name}.* (expectations/) on the batch just landed.",
        pool=WAREHOUSE_POOL,  # it opens the warehouse: DuckDB allows one process at a time
    )
    def _check(context: AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
        with warehouse.connect() as con:
            load_ids = _landed_load_ids(context, con, table.name)
            if not load_ids:
                context.log.info(f"raw.{table.name}: no new batch landed; nothing to validate")
                return dg.AssetCheckResult(
                    passed=True,
                    description="no new batch landed",
                    metadata={"load_ids": dg.MetadataValue.json([])},
                )
            report = validate_raw_batch(con, table.name, load_ids, warehouse.home)
        return _result(context, report)

    return _check


def _result(context: AssetCheckExecutionContext, report: BatchReport) -> dg.AssetCheckResult:
    """Log every failed expectation and turn the report into the check's result."""
    for o in report.failures:
        log = context.log.error if o.outcome == BLOCKING else context.log.warning
        log(o.message(report.table))
    context.log.info(f"{report.summary().splitlines()[0]} in {report.seconds:.2f} s")
    return dg.AssetCheckResult(
        passed=report.passed,
        severity=dg.AssetCheckSeverity.ERROR if not report.passed else dg.AssetCheckSeverity.WARN,
        description=report.summary()[:2000],
        metadata=report_metadata(report),
    )


raw_checks = [raw_quality_check(t) for t in contract.TABLES]


# --- the quality stage in the asset graph: the quarantine ledger ------------------------------
# The quality stage in the asset graph: the quarantine ledger the GX checks fill.
# 
# The checks themselves are asset checks on the raw tables (`checks.py`); they write the rows they
# quarantine to `raw_quarantine.quarantined_rows`. This asset comes after every raw table and its
# (blocking) check, and before dbt: staging reads raw through the ledger (macro `landed`), so the
# lineage raw -> quality -> staging is what the data really does. Thin: the SQL is in `quarantine.py`.

GROUP = "quality"
QUARANTINE_LEDGER = dg.AssetKey([GROUP, "quarantined_rows"])


@dg.asset(
    key=QUARANTINE_LEDGER,
    group_name=GROUP,
    deps=[raw_asset_key(t) for t in contract.TABLE_NAMES],
    description=f"{TABLE}: raw rows the Great Expectations checks quarantined (they stay in raw; dbt "
    "staging leaves them out), with the expectation and reason. Summarised per table and expectation.",
    kinds={"duckdb"},
    # Daily like extraction, though it summarises every day: a backfill launched from the UI runs
    # each stretch of equally partitioned assets as a run of its own, and a failed blocking check
    # stops only what follows it in its run. Daily, the ledger runs with the landing, so a blocked
    # batch stops it and, through it, dbt staging and everything built on it.
    partitions_def=daily_partitions,
    backfill_policy=backfill_policy,
    pool=WAREHOUSE_POOL,
)
def quarantined_rows(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    with warehouse.connect() as con:
        summary = ledger_summary(con)
        by_table = quarantined_by_table(con)
    total = sum(by_table.values())
    context.log.info(
        f"{TABLE}: {total} raw row(s) quarantined in {len(summary)} (table, expectation) pair(s)"
    )
    return dg.MaterializeResult(
        metadata={
            "rows_quarantined": dg.MetadataValue.int(total),
            "by_table": dg.MetadataValue.json(by_table),
            "ledger": dg.MetadataValue.md(markdown_table(summary[:25], empty="_nothing quarantined_")),
        }
    )


assets = [quarantined_rows]


def definitions(settings) -> dg.Definitions:
    """Quality: the GX checks on every landed batch, the quarantine ledger."""
    return dg.Definitions(assets=starting_on(settings, assets), asset_checks=raw_checks)
