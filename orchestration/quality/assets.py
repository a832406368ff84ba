"""The quality stage in the asset graph: the quarantine ledger the GX checks fill.

The checks themselves are asset checks on the raw tables (`checks.py`); they write the rows they
quarantine to `raw_quarantine.quarantined_rows`. This asset comes after every raw table and its
(blocking) check, and before dbt: staging reads raw through the ledger (macro `landed`), so the
lineage raw -> quality -> staging is what the data really does. Thin: the SQL is in `quarantine.py`.
"""

import dagster as dg

from orchestration import contract
from orchestration.automation import WAREHOUSE_POOL, backfill_policy, daily_partitions
from orchestration.extract.assets import raw_asset_key
from orchestration.metadata import markdown_table
from orchestration.quality.quarantine import TABLE, ledger_summary, quarantined_by_table
from orchestration.resources import WarehouseResource

GROUP = "quality"
QUARANTINE_LEDGER = dg.AssetKey([GROUP, "quarantined_rows"])


@dg.asset(
    key=QUARANTINE_LEDGER,
    group_name=GROUP,
    deps=[raw_asset_key(t) for t in contract.TABLE_NAMES],
    description=f"{TABLE}: raw rows the Great Expectations checks quarantined (they stay in raw; dbt "
    "staging leaves them out), with the expectation and reason. Summarised per table and expectation.",
    kinds={"duckdb"},
    partitions_def=daily_partitions,  # as extraction and dbt: a backfill of days is one run through it
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
