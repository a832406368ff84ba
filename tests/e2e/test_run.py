"""`salesalign run` end to end in a temporary SALESALIGN_HOME, as a user would type it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import duckdb
import pytest
from fixtures.cli import salesalign_run

from salesalign import contract

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
NOT_THE_RUNS = {".git", ".venv", "__pycache__", ".pytest_cache", ".ruff_cache"}  # tools', not a run's


def _repo_files() -> dict[str, tuple[int, int]]:
    """Every file of the checkout, ignored ones included (dbt_project/target, data/), with its size and
    modification time; the venv, git's own folder and the interpreters' caches left out."""
    files = {}
    for path in REPO.rglob("*"):
        rel = path.relative_to(REPO)
        if NOT_THE_RUNS & set(rel.parts) or not path.is_file():
            continue
        stat = path.stat()
        files[str(rel)] = (stat.st_size, stat.st_mtime_ns)
    return files


def _git_status() -> str:
    return subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True,
                          check=True).stdout


def _counts(home: Path, schema: str) -> dict[str, int]:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        names = [r[0] for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = ? "
            "AND NOT starts_with(table_name, '_')",
            [schema]).fetchall()]
        return {n: con.execute(f"SELECT count(*) FROM {schema}.{n}").fetchone()[0] for n in names}


def test_run_small_demo_materialises_everything_is_idempotent_and_writes_only_its_home(tmp_path):
    home = tmp_path / "home"
    status, files = _git_status(), _repo_files()
    first = salesalign_run(home, "--source", "demo", "--scale", "small", "--seed", "11")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "SUCCESS" in first.stdout and str(home / "warehouse.duckdb") in first.stdout
    assert (home / "demo" / "small-seed11" / "truth.json").exists()

    raw = _counts(home, "raw")
    assert set(contract.TABLE_NAMES) <= set(raw) and all(raw[t] > 0 for t in contract.TABLE_NAMES), raw
    marts = _counts(home, "marts")
    assert marts.get("fct_deal_margin", 0) > 0, marts

    again = salesalign_run(home, "--source", "demo", "--scale", "small", "--seed", "11")
    assert again.returncode == 0, again.stderr[-3000:]
    assert _counts(home, "raw") == raw  # the same drop landed twice adds nothing
    assert _counts(home, "marts") == marts

    # A run writes only under its SALESALIGN_HOME: not one file of the checkout is new or touched.
    assert _git_status() == status
    after = _repo_files()
    assert {f: after.get(f) for f in set(after) | set(files) if after.get(f) != files.get(f)} == {}


def test_run_on_a_file_drop_and_a_clear_failure(tmp_path, small_drop):
    ok = salesalign_run(tmp_path / "home", "--source", "files", "--path", str(small_drop))
    assert ok.returncode == 0, ok.stdout[-3000:] + ok.stderr[-3000:]
    with duckdb.connect(str(tmp_path / "home" / "warehouse.duckdb"), read_only=True) as con:
        sources = con.execute("SELECT DISTINCT source FROM raw._loads").fetchall()
    assert sources == [(f"files:{small_drop}",)]

    missing = tmp_path / "no-such-drop"
    bad = salesalign_run(tmp_path / "home2", "--source", "files", "--path", str(missing))
    assert bad.returncode == 1
    assert "FAILED" in bad.stdout and f"file drop {missing} does not exist" in bad.stderr
