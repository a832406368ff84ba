"""Dagster assets of the extract stage: the source snapshot, then one landing asset per raw table.

Thin wrappers: the work is in `sources.py` and `landing.py`.
"""


import json
from collections.abc import Callable
from functools import wraps
from pathlib import Path

import dagster as dg

from orchestration.metadata import markdown_table
from orchestration.operations import (
    WAREHOUSE_POOL,
    backfill_policy,
    daily_partitions,
    extraction_retry,
    extraction_through,
    freshness,
    latest_partition,
    starting_on,
)
from orchestration.resources import SourceResource, WarehouseResource
from salesalign import contract
from salesalign.extract.attributes import land_source_attributes
from salesalign.extract.drops import MANIFEST, MARKER, drop_signature, drop_status
from salesalign.extract.landing import (
    FileChangedError,
    LandingError,
    land_source,
    preview,
    record_source,
    row_count,
)
from salesalign.extract.profiles import count_line
from salesalign.extract.sources import SourceError

GROUP = "extract"
SOURCE_SNAPSHOT = dg.AssetKey(["extract", "source_snapshot"])


# Extraction is daily-partitioned like the incremental dbt models (the same days and backfill policy,
# so a backfill of a range lands those days' batches and reprocesses their deals in one run): a
# partition is the raw tables as they stood at the end of that day. The newest partition extracts
# everything so far; a backfill of older days stops at the end of its window
# (`operations.extraction_through`). Landing is idempotent, so rerunning a day lands nothing twice.
EXTRACT_SCHEDULING = dict(
    retry_policy=extraction_retry,
    pool=WAREHOUSE_POOL,
    partitions_def=daily_partitions,
    backfill_policy=backfill_policy,
)


def fail_fast_on_data_errors(fn: Callable) -> Callable:
    """A value outside the contract, a missing drop or a malformed mapping profile (`ProfileError` is a
    `SourceError`) is not transient: fail without retrying. A file that changed while it was landed
    (still being copied) is: the retry policy applies."""

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
def source_snapshot(
    context: dg.AssetExecutionContext, source: SourceResource, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    through = extraction_through(context)
    src = source.build(through)
    described = {**src.prepare(), "extracted_through": through or "now"}
    with warehouse.connect() as con:
        record_source(con, src.name, described)
    for key, counts in (described.get("rows") or {}).items():  # a profile source: one line per table
        context.log.info(f"mapped {count_line(key, counts)}")
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
            for r in land_source_attributes(con, src, table.name):
                context.log.info(
                    f"raw.attributes: {r.file} already landed" if r.skipped
                    else f"raw.attributes: {r.rows} {table.name} attribute values landed from {r.file}"
                )
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


# --- the file-drop sensor ----------------------------------------------------------------------

def source_run_config(source: dg.ConfigurableResource, **overrides) -> dict:
    """Run config for the `source` resource: its bound values with `overrides` (run config replaces a
    resource's whole config). Secrets stay environment references (`{"env": NAME}`), never values."""
    config = {}
    for name in type(source).model_fields:
        value = getattr(source, name)
        if value is not None:
            config[name] = {"env": value.env_var_name} if isinstance(value, dg.EnvVar) else value
    config.update({k: v for k, v in overrides.items() if v is not None})
    return {"resources": {"source": {"config": config}}}


def build_drop_sensor(
    job_name: str,
    watch_dir: Path,
    source: dg.ConfigurableResource,
    profile: str | None = None,
    minimum_interval_seconds: int = 60,
) -> dg.SensorDefinition:
    """A sensor launching `job_name` on each new complete drop under `watch_dir` with the `source`
    resource pointed at the drop (file-drop source, `profile` if the drops are foreign exports), for
    the newest day: the job's extraction is daily-partitioned, and a drop lands everything it holds."""

    @dg.sensor(
        name="file_drop_sensor",
        job_name=job_name,
        minimum_interval_seconds=minimum_interval_seconds,
        description=f"Launches the pipeline on each new complete drop in {watch_dir} "
        f"(a `{MARKER}` marker or a verified `{MANIFEST}`).",
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def file_drop_sensor(context: dg.SensorEvaluationContext):
        if not watch_dir.is_dir():
            return dg.SkipReason(f"watched folder {watch_dir} does not exist")
        launched = set(json.loads(context.cursor)) if context.cursor else set()
        requests, waiting = [], []
        for drop in sorted(p for p in watch_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
            complete, why = drop_status(drop)
            if not complete:
                waiting.append(f"{drop.name}: {why}")
                continue
            key = f"{drop.name}:{drop_signature(drop)}"
            if key in launched:
                continue
            launched.add(key)
            requests.append(
                dg.RunRequest(
                    run_key=key,
                    run_config=source_run_config(
                        source, kind="files", path=str(drop.resolve()), profile=profile
                    ),
                    tags={"salesalign/drop": drop.name, "salesalign/drop_complete": why},
                    partition_key=latest_partition(),
                )
            )
        if not requests:
            detail = f"; incomplete: {'; '.join(waiting)}" if waiting else ""
            return dg.SkipReason(f"no new complete drop in {watch_dir}{detail}")
        return dg.SensorResult(run_requests=requests, cursor=json.dumps(sorted(launched)))

    return file_drop_sensor


def drop_sensors(job_name: str, settings, source: dg.ConfigurableResource) -> list[dg.SensorDefinition]:
    """The file-drop sensor when `SALESALIGN_DROP_WATCH_DIR` is set (none otherwise)."""
    if settings.drop_watch_dir is None:
        return []
    return [build_drop_sensor(job_name, settings.drop_watch_dir, source, settings.profile)]


def definitions(settings) -> dg.Definitions:
    """Extraction: the source snapshot, one landing asset per raw table (daily from the settings'
    first day), the file-drop sensor."""
    from orchestration.operations import MAIN_JOB
    from orchestration.resources import source_resource

    sensors = drop_sensors(MAIN_JOB, settings, source_resource(settings))
    return dg.Definitions(assets=starting_on(settings, assets), sensors=sensors)
