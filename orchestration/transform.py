"""The dbt models as Dagster assets: keys `<schema>/<model>`, groups by layer, tests as checks.

Daily partitions: a partition (or a backfill range, always one run: `BackfillPolicy.single_run()`)
runs `dbt build --vars '{min_date: first day, max_date: last day}'`, so the incremental facts
reprocess the deals closed in those days (macro `close_date_window_filter`) on top of what changed
since their watermark. A run without a partition (`salesalign run`) is the plain incremental build.
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
    """Models are keyed by the schema they land in, so `marts/fct_deal_margin` reads like SQL.

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
        return spec


# dbt's unit tests check the SQL logic on fixed fixtures: they belong to `make test`
# (tests/integration/test_mart_deal_margin.py runs them), not to every production build (dbt's advice).
PRODUCTION_BUILD = ["build", "--exclude-resource-type", "unit_test"]


def dbt_build_args(warehouse: WarehouseResource, window: tuple[date, date] | None) -> list[str]:
    """`dbt build` (data tests, no unit tests) on the warehouse, in its reporting currency, with the
    partition window (first and last day) as `min_date`/`max_date`, if any."""
    project_vars = dbt_vars(warehouse.path, warehouse.reporting_currency, window)
    return [*PRODUCTION_BUILD, "--vars", json.dumps(project_vars)]


def run_target(warehouse: WarehouseResource) -> Path:
    """The target folder of the pipeline's dbt invocations, kept between runs so that dbt's partial
    parsing carries over (runs take turns on the warehouse, so they never share it at once)."""
    return dbt_dir(warehouse.path.parent) / "target"


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=SalesalignTranslator(),
    partitions_def=daily_partitions,
    backfill_policy=backfill_policy,
    pool=WAREHOUSE_POOL,
)
def dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource):
    """`dbt build` of the selected models: runs them and their tests (surfaced as asset checks)."""
    args = dbt_build_args(warehouse, partition_window(context))
    context.log.info(f"dbt {' '.join(args)}")
    yield from dbt.cli(args, context=context, target_path=run_target(warehouse)).stream()


assets = [dbt_models]


def definitions(settings) -> dg.Definitions:
    """Transform: the dbt project's models, their tests as asset checks."""
    return dg.Definitions(assets=assets)
