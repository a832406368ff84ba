"""The Dagster code location: assembles assets, resources and jobs. Nothing else lives here."""

from __future__ import annotations

import dagster as dg

from orchestration.analytics_assets import assets as analytics_assets
from orchestration.extract.assets import assets as extract_assets
from orchestration.quality.checks import checks as quality_checks
from orchestration.resources import build_resources
from orchestration.settings import Settings
from orchestration.transform.assets import assets as transform_assets

MAIN_JOB = "salesalign_main"

main_job = dg.define_asset_job(
    MAIN_JOB,
    selection=dg.AssetSelection.all(),
    description="Everything, end to end: extract -> land -> dbt marts (and later quality, analytics, publish).",
)

defs = dg.Definitions(
    assets=[*extract_assets, *transform_assets, *analytics_assets],
    asset_checks=quality_checks,
    resources=build_resources(Settings.from_env()),
    jobs=[main_job],
)
