"""The dbt models as Dagster assets: keys `<schema>/<model>`, groups by layer, tests as checks.

Only the models dbt builds incrementally (`config.materialized:incremental`: the facts that reprocess
a close-date window and the incremental staging tables they read) are daily partitions; every other
model (views, dimensions, aggregates) is unpartitioned, rebuilt on all history. A run of some days (a
partition, or a backfill range, always one run: `BackfillPolicy.single_run()`) runs
`dbt build --vars '{min_date: first day, max_date: last day}'`, so the facts reprocess the deals
closed in those days (macro `close_date_window_filter`) on top of what changed since their
watermark; a run without days is the plain incremental build.

All models stay in one multi-asset, so a run of the job is one `dbt build`. As a partitioned and an
unpartitioned multi-asset they would alternate along the lineage (incremental staging -> intermediate
views -> facts -> aggregates): Dagster would cut each into consecutive subsets, and a run of the job
would be seven `dbt build`s, each paying dbt's start-up (on the default demo, 77 s of dbt instead of
about 35 s).
"""

import json
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from orchestration.operations import (
    WAREHOUSE_POOL,
    backfill_policy,
    daily_partitions,
    freshness,
    partition_window,
    starting_on,
)
from orchestration.resources import WarehouseResource
from salesalign.transform.dbt import DBT_PROJECT_DIR, MANIFEST_TARGET, dbt_dir, dbt_executable, dbt_vars

# The manifest the definitions load is prepared at set-up into dbt_project/target/; every dbt
# invocation of a run writes its artefacts and logs under $SALESALIGN_HOME/dbt/ instead.
dbt_project = DbtProject(
    project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR, target_path=MANIFEST_TARGET
)


def dbt_resource() -> DbtCliResource:
    return DbtCliResource(project_dir=dbt_project, dbt_executable=dbt_executable())

LAYER_GROUPS = {"staging": "dbt_staging", "intermediate": "dbt_intermediate", "marts": "dbt_marts"}


class SalesalignTranslator(DagsterDbtTranslator):
    """Models are keyed by the schema they land in, so `marts/fct_deal_margin` reads like SQL; the
    incremental ones are daily partitions.

    Sources keep the key from their `meta.dagster.asset_key` (the landing assets `raw/<table>`).
    """

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return super().get_asset_key(dbt_resource_props)
        return dg.AssetKey([dbt_resource_props["schema"], dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        fqn = dbt_resource_props.get("fqn", [])
        layer = fqn[1] if len(fqn) > 2 else ""
        return LAYER_GROUPS.get(layer, "dbt")

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        if spec.key.path[0] == "marts":  # what analysts and BI read is expected fresh every day
            spec = spec.replace_attributes(freshness_policy=freshness)
        if _is_incremental(manifest["nodes"].get(unique_id, {})):
            spec = spec.replace_attributes(partitions_def=daily_partitions)
        return spec


def _is_incremental(node: Mapping[str, Any]) -> bool:
    """Whether a manifest node is a model dbt builds incrementally (what is daily-partitioned)."""
    return node.get("resource_type") == "model" and node["config"]["materialized"] == "incremental"


# dbt's unit tests check the SQL logic on fixed fixtures: they belong to `make test`
# (tests/integration/test_mart_deal_margin.py runs them), not to every production build (dbt's advice).
PRODUCTION_BUILD = ["build", "--exclude-resource-type", "unit_test"]


def dbt_build_args(warehouse: WarehouseResource, window: tuple[date, date] | None) -> list[str]:
    """`dbt build` (data tests, no unit tests) on the warehouse, in its reporting currency, with the
    partition window (first and last day) as `min_date`/`max_date`, if any."""
    project_vars = dbt_vars(warehouse.path, warehouse.reporting_currency, window)
    return [*PRODUCTION_BUILD, "--vars", json.dumps(project_vars)]


# A build of part of the project runs exactly the tests Dagster selected as its checks. A run holds part
# of it when a backfill launched from the UI runs each stretch of equally partitioned assets as a run of
# its own (incremental staging, then the views and dimensions, the facts, the aggregates), or when some
# models are materialised by hand. dbt's default selection would also run the tests of models outside
# the run that read a selected model, before their own run rebuilt them (they fail on new data); Dagster
# puts each check in the run that builds the last model it reads. Tests on dbt sources are not checks:
# they run in builds of the whole project (the daily run).
UNIQUE_ID = "dagster_dbt/unique_id"  # dagster-dbt's metadata key naming a check's dbt test


def checks_only(context: dg.AssetExecutionContext) -> list[str]:
    """dbt arguments selecting the run's checks as its only tests, if the run builds part of the project."""
    if not context.assets_def.is_subset:
        return []
    nodes = json.loads(dbt_project.manifest_path.read_text())["nodes"]
    names = sorted(
        ".".join(nodes[context.assets_def.get_spec_for_check_key(key).metadata[UNIQUE_ID]]["fqn"])
        for key in context.selected_asset_check_keys
    )
    return ["--indirect-selection", "empty", *(["--select", " ".join(names)] if names else [])]


def run_target(warehouse: WarehouseResource) -> Path:
    """The target folder of the pipeline's dbt invocations, kept between runs so that dbt's partial
    parsing carries over (runs take turns on the warehouse, so they never share it at once)."""
    return dbt_dir(warehouse.path.parent) / "target"


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=SalesalignTranslator(),
    backfill_policy=backfill_policy,  # the partitioned models' (the translator sets their days)
    pool=WAREHOUSE_POOL,
)
def dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource):
    """`dbt build` of the selected models: runs them and their tests (surfaced as asset checks)."""
    args = [*dbt_build_args(warehouse, partition_window(context)), *checks_only(context)]
    context.log.info(f"dbt {' '.join(args)}")
    yield from dbt.cli(args, context=context, target_path=run_target(warehouse)).stream()


assets = [dbt_models]


def definitions(settings) -> dg.Definitions:
    """Transform: the dbt project's models (the incremental ones daily from the settings' first day),
    their tests as asset checks."""
    return dg.Definitions(assets=starting_on(settings, assets))
