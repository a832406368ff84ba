"""The dbt project: where it is, how the pipeline runs dbt on it, and the manifest Dagster loads.

Runs never write into the repository: every dbt invocation of a run keeps its artefacts and logs
under `$SALESALIGN_HOME/dbt/`. The settings reach dbt as vars (`dbt_vars`): the warehouse file the
profile opens and the reporting currency the marts convert to. The parsed manifest that the Dagster
definitions load is prepared once at set-up (`salesalign prepare`, `make manifest`) into
`dbt_project/target/` (ignored by git), like the virtual environment.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

DBT_PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"
MANIFEST_TARGET = DBT_PROJECT_DIR / "target"  # set-up only: the manifest the definitions load
MANIFEST_PATH = MANIFEST_TARGET / "manifest.json"
PROJECT_SUFFIXES = {".sql", ".yml", ".yaml"}


class DbtError(RuntimeError):
    """A dbt command failed; the message ends with the tail of dbt's output."""


def dbt_executable() -> str:
    """The dbt installed beside this Python (the venv), so nothing depends on PATH."""
    beside = Path(sys.executable).parent / "dbt"
    return str(beside) if beside.exists() else (shutil.which("dbt") or "dbt")


def dbt_dir(home: Path) -> Path:
    """Where a run's dbt artefacts and logs go: `$SALESALIGN_HOME/dbt/`."""
    return Path(home) / "dbt"


def dbt_vars(
    warehouse_path: Path, reporting_currency: str, window: tuple[date, date] | None = None
) -> dict[str, str]:
    """The project vars a run passes: the warehouse file (the profile reads it), the reporting
    currency, and the partition window (first and last close day) incremental facts reprocess."""
    out = {"warehouse_path": str(warehouse_path), "reporting_currency": reporting_currency}
    if window is not None:
        out |= {"min_date": window[0].isoformat(), "max_date": window[1].isoformat()}
    return out


def run_dbt(
    args: list[str], *, warehouse_path: Path, reporting_currency: str = "USD", target: Path | None = None
) -> subprocess.CompletedProcess:
    """`dbt <args>` on the project against `warehouse_path`; artefacts and logs in `target` (default:
    the `dbt/` folder beside the warehouse). Raises `DbtError` with dbt's output on failure."""
    target = Path(target) if target else dbt_dir(Path(warehouse_path).parent) / "target"
    return _dbt([*args, "--vars", json.dumps(dbt_vars(warehouse_path, reporting_currency))], target)


def prepare_manifest() -> Path:
    """Parse the dbt project into `dbt_project/target/manifest.json` (what the definitions load)."""
    _dbt(["parse", "--quiet"], MANIFEST_TARGET)
    return MANIFEST_PATH


def _dbt(args: list[str], target: Path) -> subprocess.CompletedProcess:
    cmd = [
        dbt_executable(), *args,
        "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
        "--target-path", str(target), "--log-path", str(target), "--no-send-anonymous-usage-stats",
    ]
    # dbt inherits this process's environment: the flag above keeps it from sending usage data
    proc = subprocess.run(cmd, cwd=DBT_PROJECT_DIR, capture_output=True, text=True)
    if proc.returncode != 0:
        output = f"{proc.stdout[-6000:]}\n{proc.stderr[-2000:]}"
        raise DbtError(f"dbt {' '.join(args[:2])} failed ({proc.returncode}):\n{output}")
    return proc


def ensure_manifest() -> Path:
    """The manifest, re-parsed if missing or older than any dbt project file (a stale manifest
    names tests and models that no longer exist, and Dagster then fails mid-run)."""
    if MANIFEST_PATH.exists():
        built = MANIFEST_PATH.stat().st_mtime
        sources = (
            p for p in DBT_PROJECT_DIR.rglob("*")
            if p.suffix in PROJECT_SUFFIXES and "target" not in p.relative_to(DBT_PROJECT_DIR).parts[:1]
        )
        if all(p.stat().st_mtime <= built for p in sources):
            return MANIFEST_PATH
    return prepare_manifest()
