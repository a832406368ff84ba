"""The analytics stage: one multi-asset per analysis of the registry (salesalign/analytics/registry.py),
keys `analytics/<table>`, depending on the marts and upstream analytics tables the analysis reads.

Each asset runs its analysis through `salesalign.analytics.runner.run_analysis` (reads on first use,
checks the registry's preconditions, computes without holding the warehouse open, writes its tables
in one short connection: DuckDB has one writer at a time) and reports row counts, timing, the period,
missing inputs, each table's status and a preview. Missing inputs and unmet preconditions become
`not estimable: ...` status rows.

An analysis that raises does not fail its asset: the runner writes `failed: <type>: <message>` rows
in its tables, the asset logs the traceback as an error and reports `analysis_failed` in its metadata,
and the materialization succeeds. We chose that because a failed asset would keep every downstream
analysis and the whole publish stage (brief, exports, serving snapshot) from running, so one analysis
tripping on unusual data would cost leaders everything else; the brief's coverage section and the
tables' status rows show the failure instead, and the run log keeps the traceback.
"""

import dagster as dg
import pandas as pd

from orchestration.operations import WAREHOUSE_POOL
from orchestration.resources import AnalysisResource, WarehouseResource
from salesalign.analytics import registry
from salesalign.analytics.registry import Analysis, Table
from salesalign.analytics.runner import AnalysisRun, run_analysis

GROUP = "analytics"


def build_asset(entry: Analysis) -> dg.AssetsDefinition:
    """The multi-asset of one registered analysis."""
    deps = [dg.AssetKey(["marts", m]) for m in entry.marts]
    deps += [dg.AssetKey(list(registry.table(t).key)) for t in entry.reads]

    @dg.multi_asset(
        name=entry.name,
        specs=[
            dg.AssetSpec(
                dg.AssetKey(list(t.key)),
                group_name=GROUP,
                deps=deps,
                description=t.description,
                kinds={"python", "duckdb"},
            )
            for t in entry.tables
        ],
        description=entry.description,
        pool=WAREHOUSE_POOL,
    )
    def _analysis(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource, analysis: AnalysisResource
    ):
        run = run_analysis(entry, warehouse.connect, analysis.causal_yml, analysis.strategy_yml)
        if run.failed:
            context.log.error(f"analysis {entry.name} failed; its tables hold status rows:\n{run.error}")
        if run.missing:
            context.log.warning(f"missing inputs (status rows written): {run.missing}")
        for name, status in run.statuses.items():
            if status != "ok" and not run.failed:
                context.log.warning(f"analytics.{name}: {status}")
        for t in entry.tables:
            yield dg.MaterializeResult(asset_key=dg.AssetKey(list(t.key)), metadata=_metadata(t, run))

    return _analysis


def _metadata(table: Table, run: AnalysisRun) -> dict:
    frame = run.tables[table.name]
    meta = {
        "dagster/row_count": len(frame),
        "seconds": round(run.seconds, 1),
        "peak_rss_mb": round(run.peak_rss_mb),
        "deals": run.deals,
        "period": f"{run.period[0]} .. {run.period[1]}",
        "missing_inputs": dg.MetadataValue.json(run.missing),
        "status": dg.MetadataValue.text(run.statuses[table.name]),
        "analysis_failed": dg.MetadataValue.bool(run.failed),
    }
    if table.tally:
        counts = frame[table.tally].value_counts(dropna=False)
        meta[f"{table.tally}_counts"] = dg.MetadataValue.json({str(k): int(v) for k, v in counts.items()})
    if table.preview:
        shown = frame.query(table.preview_where) if table.preview_where else frame
        meta["preview"] = dg.MetadataValue.md(_markdown(shown[list(table.preview)].head(20)))
    return meta


def _markdown(frame: pd.DataFrame) -> str:
    return frame.to_markdown(index=False, floatfmt=".4g") if len(frame) else "_no rows_"


ASSETS: dict[str, dg.AssetsDefinition] = {a.name: build_asset(a) for a in registry.ANALYSES}
assets = list(ASSETS.values())


def definitions(settings) -> dg.Definitions:
    """Analytics: every registered analysis, following its marts and upstream analytics tables."""
    from orchestration.operations import with_automation

    return dg.Definitions(assets=with_automation(assets))
