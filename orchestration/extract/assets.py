"""Dagster assets of the extract stage: the source snapshot, then one landing asset per raw table.

Thin wrappers: the work is in `sources.py` and `landing.py`.
"""


from collections.abc import Callable
from functools import wraps

import dagster as dg

from orchestration import contract
from orchestration.automation import (
    WAREHOUSE_POOL,
    backfill_policy,
    daily_partitions,
    extraction_retry,
    extraction_through,
    freshness,
)
from orchestration.extract.landing import (
    FileChangedError,
    LandingError,
    land_source,
    preview,
    row_count,
)
from orchestration.extract.sources import SourceError
from orchestration.metadata import markdown_table
from orchestration.resources import SourceResource, WarehouseResource

GROUP = "extract"
SOURCE_SNAPSHOT = dg.AssetKey(["extract", "source_snapshot"])


# Extraction is daily-partitioned like the dbt facts (one partition def, so a backfill of a range is
# one run of extract -> dbt): a partition is the raw tables as they stood at the end of that day.
# The newest partition extracts everything so far; a backfill of older days stops at the end of its
# window (`automation.extraction_through`). Landing is idempotent, so rerunning a day lands nothing twice.
EXTRACT_SCHEDULING = dict(
    retry_policy=extraction_retry,
    pool=WAREHOUSE_POOL,
    partitions_def=daily_partitions,
    backfill_policy=backfill_policy,
)


def fail_fast_on_data_errors(fn: Callable) -> Callable:
    """A value outside the contract or a missing drop is not transient: fail without retrying.
    A file that changed while it was landed (still being copied) is: the retry policy applies."""

    @wraps(fn)
    def _wrapped(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except FileChangedError as exc:  # a file still being copied: the retry lands it once stable
            raise dg.Failure(description=str(exc), allow_retries=True) from exc
        except (LandingError, SourceError) as exc:
            raise dg.Failure(description=str(exc), allow_retries=False) from exc

    return _wrapped


@dg.asset(
    key=SOURCE_SNAPSHOT,
    group_name=GROUP,
    description="The batch of source files to land: the generated demo company or a file drop.",
    kinds={"python"},
    **EXTRACT_SCHEDULING,
)
@fail_fast_on_data_errors
def source_snapshot(context: dg.AssetExecutionContext, source: SourceResource) -> dg.MaterializeResult:
    through = extraction_through(context)
    described = {**source.build(through).prepare(), "extracted_through": through or "now"}
    context.log.info(f"source ready: {described}")
    return dg.MaterializeResult(metadata={k: dg.MetadataValue.text(str(v)) for k, v in described.items()})


def raw_asset_key(table: str) -> dg.AssetKey:
    return dg.AssetKey(["raw", table])


def _landing_asset(table: contract.Table) -> dg.AssetsDefinition:
    @dg.asset(
        name=table.name,
        key_prefix=["raw"],
        group_name=GROUP,
        deps=[SOURCE_SNAPSHOT],
        description=f"raw.{table.name}: {table.description} Append-only, with load metadata.",
        kinds={"duckdb"},
        metadata={"contract_columns": dg.MetadataValue.json(table.column_names)},
        freshness_policy=freshness,
        **EXTRACT_SCHEDULING,
    )
    @fail_fast_on_data_errors
    def _land(
        context: dg.AssetExecutionContext, source: SourceResource, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        through = extraction_through(context)
        src = source.build(through)
        with warehouse.connect() as con:
            results = land_source(con, src, [table.name])
            landed = [r for r in results if not r.skipped]
            for r in results:
                if r.extra_columns:
                    context.log.warning(
                        f"{r.file}: columns not in the contract were ignored: {r.extra_columns}"
                    )
            total = row_count(con, table.name)
            sample = preview(con, table.name, [r.load_id for r in landed])
        if not results:
            context.log.warning(f"source {src.name} has no file for {table.name}: nothing landed")
        context.log.info(
            f"raw.{table.name}: {sum(r.rows for r in landed)} rows landed from {len(landed)} new file(s), "
            f"{len(results) - len(landed)} file(s) already landed; {total} rows in total"
        )
        return dg.MaterializeResult(
            metadata={
                "rows_landed": dg.MetadataValue.int(sum(r.rows for r in landed)),
                "rows_total": dg.MetadataValue.int(total),
                "files_landed": dg.MetadataValue.int(len(landed)),
                "files_skipped_already_landed": dg.MetadataValue.int(len(results) - len(landed)),
                "load_ids": dg.MetadataValue.json([r.load_id for r in landed]),
                "extracted_through": dg.MetadataValue.text(str(through or "now")),
                "preview": dg.MetadataValue.md(markdown_table(sample, empty="_no new rows_")),
            }
        )

    return _land


landing_assets = [_landing_asset(t) for t in contract.TABLES]
assets = [source_snapshot, *landing_assets]
