"""The dbt project and CLI resource. Importing this never needs the manifest; `prepare` makes it."""

from __future__ import annotations

from pathlib import Path

from dagster_dbt import DbtCliResource, DbtProject

DBT_PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


def dbt_resource() -> DbtCliResource:
    return DbtCliResource(project_dir=dbt_project)


def prepare_manifest() -> Path:
    """Parse the dbt project into target/manifest.json (what the Definitions load from)."""
    dbt_project.preparer.prepare(dbt_project)
    return dbt_project.manifest_path
