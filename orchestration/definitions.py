"""The Dagster code location: one `Definitions` per stage, merged. Nothing else lives here.

Stages follow the data: extract -> quality -> transform (dbt) -> analytics -> publish; operations
holds what runs them (the job, schedule, sensors, resources, the warehouse pool).
"""

from __future__ import annotations

import dagster as dg

from orchestration import analytics, extract, operations, publish, quality, transform
from salesalign.settings import Settings

STAGES = (extract, quality, transform, analytics, publish, operations)


def build_definitions(settings: Settings) -> dg.Definitions:
    """Every stage's definitions for one configuration."""
    return dg.Definitions.merge(*(stage.definitions(settings) for stage in STAGES))


defs = build_definitions(Settings.from_env())
