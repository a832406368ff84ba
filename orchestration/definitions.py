"""The Dagster code location: assembles assets, resources and jobs. Nothing else lives here."""

from __future__ import annotations

import dagster as dg

from orchestration import automation
from orchestration.analytics_assets import assets as analytics_assets
from orchestration.decision_assets import assets as decision_assets
from orchestration.extract.assets import assets as extract_assets
from orchestration.extract.sensors import drop_sensors
from orchestration.publish.assets import build_publish_assets
from orchestration.publish.exports import PUBLISHED_SCHEMAS
from orchestration.quality.assets import assets as quality_assets
from orchestration.quality.checks import checks as quality_checks
from orchestration.resources import build_resources
from orchestration.settings import Settings
from orchestration.transform.assets import assets as transform_assets

MAIN_JOB = "salesalign_main"

main_job = dg.define_asset_job(
    MAIN_JOB,
    selection=dg.AssetSelection.all(),
    description="Everything, end to end: extract -> quality -> dbt marts -> analytics -> publish.",
    executor_def=dg.in_process_executor,  # steps take turns on the DuckDB file (automation.py)
)

table_assets = [*transform_assets, *analytics_assets, *decision_assets]
published = [key for a in table_assets for key in a.keys if key.path[0] in PUBLISHED_SCHEMAS]

settings = Settings.from_env()
resources = build_resources(settings)

# Analytics, decisions and publish follow their marts (every step declares the warehouse pool).
publish_assets = build_publish_assets(published)
followers = automation.with_automation([*analytics_assets, *decision_assets, *publish_assets])

defs = dg.Definitions(
    assets=[*extract_assets, *quality_assets, *transform_assets, *followers],
    asset_checks=quality_checks,
    resources=resources,
    jobs=[main_job],
    schedules=[automation.daily_schedule(main_job)],
    sensors=[
        *(automation.with_partition(s) for s in drop_sensors(MAIN_JOB, settings, resources["source"])),
        automation.automation_sensor(),
    ],
)
