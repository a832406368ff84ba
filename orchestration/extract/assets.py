"""Dagster assets of the extract stage: the source snapshot, then one landing asset per raw table.

Thin wrappers: the work is in `sources.py` and `landing.py`.
"""


from collections.abc import Callable
from functools import wraps

import dagster as dg

from orchestration import contract
from orchestration.automation import WAREHOUSE_POOL, extraction_retry, freshness
from orchestration.extract.landing import (
    FileChangedError,
    LandingError,
    land_source,
    preview,
    row_count,
)
from orchestration.extract.sources import SourceError
from orchestration.resources import SourceResource, WarehouseResource

GROUP = "extract"
SOURCE_SNAPSHOT = dg.AssetKey(["extract", "source_snapshot"])


# Extraction is not partitioned: sources are snapshots (drops, the demo) or incremental by their own
# watermark (APIs, finance DB), and landing is idempotent. Partitioned landing would make every run,
# the file-drop sensor's included, name a partition, because Dagster cannot run a partitioned asset
# whose partitioned parents have no partition in the run (README: "Operating it").
EXTRACT_SCHEDULING = dict(retry_policy=extraction_retry, pool=WAREHOUSE_POOL)


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
    described = source.build().prepare()
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
        src = source.build()
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
                "preview": dg.MetadataValue.md(_markdown_table(sample)),
            }
        )

    return _land


def _markdown_table(rows: list[dict]) -> str:
    if not rows:
        return "_no new rows_"
    head = list(rows[0])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(r[h]) for h in head) + " |" for r in rows]
    return "\n".join(lines)


landing_assets = [_landing_asset(t) for t in contract.TABLES]
assets = [source_snapshot, *landing_assets]
