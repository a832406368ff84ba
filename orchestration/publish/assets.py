"""The publish asset: runs after every mart and analytics table, writes what BI tools read."""

from collections.abc import Sequence

import dagster as dg

from orchestration.publish.exports import export_parquet, write_serving_snapshot
from orchestration.resources import WarehouseResource


def build_publish_assets(upstream: Sequence[dg.AssetKey]) -> list[dg.AssetsDefinition]:
    """The publish stage, depending on every table it publishes (so it runs last)."""

    @dg.asset(
        key=["publish", "bi_outputs"],
        group_name="publish",
        deps=list(upstream),
        description="Parquet exports of every marts.* and analytics.* table (with a manifest) and the "
        "read-only serving snapshot serving.duckdb, each replaced atomically.",
        kinds={"parquet", "duckdb"},
    )
    def bi_outputs(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        home = warehouse.path.parent
        with warehouse.connect() as con:
            published = export_parquet(con, home, context.run_id)
            snapshot = write_serving_snapshot(con, home, context.run_id)
        context.log.info(f"published {len(published)} tables to {home / 'exports'} and {snapshot}")
        return dg.MaterializeResult(
            metadata={
                "exports": dg.MetadataValue.path(str(home / "exports")),
                "manifest": dg.MetadataValue.path(str(home / "exports" / "manifest.json")),
                "serving_snapshot": dg.MetadataValue.path(str(snapshot)),
                "tables": dg.MetadataValue.md(
                    "| table | rows |\n|---|---|\n"
                    + "\n".join(f"| {p.schema}.{p.table} | {p.rows:,} |" for p in published)
                ),
            }
        )

    return [bi_outputs]
