"""The publish stage: runs after every mart and analytics table and writes what BI tools, analysts and
leaders read (Parquet exports and the serving snapshot, the alignment brief, the docs site). The work
is in `salesalign.publish`; staging and going live are explained in `salesalign/publish/golive.py`.
"""

from collections.abc import Sequence

import dagster as dg

from orchestration.operations import WAREHOUSE_POOL
from orchestration.resources import WarehouseResource
from salesalign.publish.brief import section_markdown, write_brief
from salesalign.publish.docs_site import docs_fingerprint, publish_dbt_docs, write_index
from salesalign.publish.golive import publish_bi_outputs, remove_leftovers
from salesalign.transform.dbt import MANIFEST_PATH

BRIEF = dg.AssetKey(["publish", "alignment_brief"])


def build_publish_assets(upstream: Sequence[dg.AssetKey]) -> list[dg.AssetsDefinition]:
    """The publish stage, depending on every table it publishes (so it runs last)."""

    @dg.asset(
        key=["publish", "bi_outputs"],
        group_name="publish",
        deps=list(upstream),
        description="Parquet exports of every marts.* and analytics.* table (with a manifest) and the "
        "read-only serving snapshot serving.duckdb, each replaced atomically.",
        kinds={"parquet", "duckdb"},
        pool=WAREHOUSE_POOL,
    )
    def bi_outputs(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        home = warehouse.path.parent
        for leftover in remove_leftovers(home):
            context.log.info(f"removed {leftover}, left by a publishing run that did not finish")
        with warehouse.connect() as con:
            published = publish_bi_outputs(con, home, context.run.run_id)
        snapshot = home / "serving.duckdb"
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

    @dg.asset(
        key=BRIEF,
        group_name="publish",
        deps=[k for k in upstream if k.path[0] == "analytics"],
        description="The alignment brief for sales and strategy leaders: one self-contained HTML page "
        "(reports/alignment-brief.html) with charts, intervals and verdicts.",
        kinds={"html"},
        pool=WAREHOUSE_POOL,
    )
    def alignment_brief(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        remove_leftovers(warehouse.path.parent)
        with warehouse.connect(read_only=True) as con:
            brief = write_brief(con, warehouse.path.parent, context.run.run_id)
        missing = [s for s in brief.sections if not s.ok]
        for s in missing:
            context.log.warning(f"brief section '{s.title}' not available: {s.status}")
        context.log.info(f"alignment brief: {brief.path}")
        return dg.MaterializeResult(
            metadata={
                "path": dg.MetadataValue.path(str(brief.path)),
                "sections": dg.MetadataValue.md(
                    "| section | status |\n|---|---|\n"
                    + "\n".join(f"| {s.title} | {s.status} |" for s in brief.sections)
                ),
                "sections_missing": dg.MetadataValue.int(len(missing)),
                "coverage": dg.MetadataValue.md(
                    "| analysis | table | status |\n|---|---|---|\n"
                    + "\n".join(f"| {c.analysis} | {c.table} | {c.status} |" for c in brief.coverage)
                ),
                "tables_not_ok": dg.MetadataValue.int(sum(not c.ok for c in brief.coverage)),
                # the brief's charts, viewable in the UI without opening the file
                **{f"chart_{s.anchor}": dg.MetadataValue.md(section_markdown(s)) for s in brief.sections},
                "bytes": dg.MetadataValue.int(brief.path.stat().st_size),
            }
        )

    @dg.asset(
        key=["publish", "docs_site"],
        group_name="publish",
        deps=[*upstream, BRIEF],
        description="dbt docs (static, opens from disk) and the Great Expectations Data Docs under docs/, "
        "with an index linking them, the brief and the exports.",
        kinds={"dbt", "html"},
        pool=WAREHOUSE_POOL,
    )
    def docs_site(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        home = warehouse.path.parent
        with warehouse.connect() as con:
            schema = con.execute(
                "SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns "
                "ORDER BY ALL"
            ).fetchall()
        fingerprint = docs_fingerprint(MANIFEST_PATH, schema)
        dbt_docs = publish_dbt_docs(home, context.run.run_id, fingerprint, warehouse.reporting_currency)
        index = write_index(home, context.run.run_id)
        context.log.info(f"docs site: {index}")
        return dg.MaterializeResult(
            metadata={
                "index": dg.MetadataValue.path(str(index)),
                "dbt_docs": dg.MetadataValue.path(str(dbt_docs)),
                "data_docs": dg.MetadataValue.path(str(home / "docs" / "quality" / "index.html")),
            }
        )

    return [bi_outputs, alignment_brief, docs_site]


def definitions(settings) -> dg.Definitions:
    """Publish: exports, serving snapshot, brief and docs, after every table they publish."""
    from orchestration import analytics, transform
    from orchestration.operations import with_automation
    from salesalign.publish.exports import PUBLISHED_SCHEMAS

    tables = [*transform.assets, *analytics.assets]
    published = [key for a in tables for key in a.keys if key.path[0] in PUBLISHED_SCHEMAS]
    return dg.Definitions(assets=with_automation(build_publish_assets(published)))
