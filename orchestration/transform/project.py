"""The dbt project and CLI resource. Importing this never needs the manifest; `prepare` makes it."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from dagster_dbt import DbtCliResource, DbtProject

DBT_PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


def dbt_executable() -> str:
    """The dbt installed beside this Python (the venv), so nothing depends on PATH."""
    beside = Path(sys.executable).parent / "dbt"
    return str(beside) if beside.exists() else (shutil.which("dbt") or "dbt")


def dbt_resource() -> DbtCliResource:
    return DbtCliResource(project_dir=dbt_project, dbt_executable=dbt_executable())


def prepare_manifest() -> Path:
    """Parse the dbt project into target/manifest.json (what the Definitions load from)."""
    dbt_resource().cli(["parse", "--quiet"], target_path=dbt_project.target_path).wait()
    return dbt_project.manifest_path


def ensure_manifest() -> Path:
    """The manifest, re-parsed if missing or older than any dbt project file (a stale manifest
    names tests and models that no longer exist, and Dagster then fails mid-run)."""
    manifest = dbt_project.manifest_path
    if manifest.exists():
        built = manifest.stat().st_mtime
        sources = (p for p in DBT_PROJECT_DIR.rglob("*") if p.suffix in {".sql", ".yml", ".yaml"}
                   and "target" not in p.relative_to(DBT_PROJECT_DIR).parts[:1])
        if all(p.stat().st_mtime <= built for p in sources):
            return manifest
    return prepare_manifest()
