"""The dbt models as Dagster assets: keys `<schema>/<model>`, groups by layer, tests as checks."""


from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets

from orchestration.transform.project import dbt_project

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


@dbt_assets(manifest=dbt_project.manifest_path, project=dbt_project, dagster_dbt_translator=SalesalignTranslator())
def dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    """`dbt build` of the selected models: runs them and their tests (surfaced as asset checks)."""
    yield from dbt.cli(["build"], context=context).stream()


assets = [dbt_models]
