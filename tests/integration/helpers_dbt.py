"""Run the dbt project against a temporary warehouse (for the mart tests)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd

REPO = Path(__file__).resolve().parents[2]
DBT_PROJECT = REPO / "dbt_project"
DBT = Path(sys.executable).parent / "dbt"


def new_home(tmp: Path, landed_home: Path | None = None) -> Path:
    """A SALESALIGN_HOME under `tmp`, with a copy of `landed_home`'s warehouse if given."""
    tmp.mkdir(parents=True, exist_ok=True)
    if landed_home is not None:
        shutil.copy(landed_home / "warehouse.duckdb", tmp / "warehouse.duckdb")
    return tmp


def run_dbt(home: Path, *args: str) -> subprocess.CompletedProcess:
    """`dbt <args>` on the project with SALESALIGN_HOME=home; target and logs stay inside `home`
    (dbt_project/target is shared by concurrent runs). Raises with dbt's output on failure."""
    env = {
        **os.environ,
        "SALESALIGN_HOME": str(home),
        "DO_NOT_TRACK": "1",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    cmd = [
        str(DBT), *args,
        "--project-dir", str(DBT_PROJECT), "--profiles-dir", str(DBT_PROJECT),
        "--target-path", str(home / "dbt-target"), "--log-path", str(home / "dbt-logs"),
    ]
    proc = subprocess.run(cmd, cwd=DBT_PROJECT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-6000:]}\n{proc.stderr[-2000:]}"
        )
    return proc


def query(home: Path, sql: str) -> pd.DataFrame:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql).df()


def land_drop(home: Path, drop: Path) -> None:
    """Land every file of a drop not landed yet (landing skips files it has seen)."""
    from salesalign.extract.landing import land_source
    from salesalign.extract.sources import FileDropSource

    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        land_source(con, FileDropSource(drop, "demo"))


def analytics_resources(home: Path) -> dict:
    """The resources the analytics assets need, on the warehouse in `home` (repo causal.yml, strategy.yml)."""
    from orchestration.resources import AnalysisResource, WarehouseResource

    return {"warehouse": WarehouseResource(home=str(home)), "analysis": AnalysisResource()}
