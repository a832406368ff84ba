"""BI outputs: Parquet exports equal the warehouse; the serving snapshot is readable while a writer holds the warehouse."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import duckdb
import pyarrow.parquet as pq
import pytest

from orchestration.publish.exports import export_parquet, published_tables, write_serving_snapshot


@pytest.fixture
def home(tmp_path, small_marts_home):
    shutil.copy(small_marts_home / "warehouse.duckdb", tmp_path / "warehouse.duckdb")
    return tmp_path


def test_exports_and_snapshot_match_the_warehouse(home):
    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        tables = published_tables(con)
        published = export_parquet(con, home, "run-1")
        write_serving_snapshot(con, home, "run-1")
        counts = {(s, t): con.execute(f"SELECT count(*) FROM {s}.{t}").fetchone()[0] for s, t in tables}
    assert ("marts", "fct_deal_margin") in counts and len(published) == len(tables)

    manifest = json.loads((home / "exports" / "manifest.json").read_text())
    assert manifest["run_id"] == "run-1"
    for entry in manifest["tables"]:
        path = home / entry["file"]
        assert pq.read_metadata(path).num_rows == counts[(entry["schema"], entry["table"])] == entry["rows"]
        assert [c["name"] for c in entry["columns"]] == pq.read_schema(path).names
        with duckdb.connect() as reader:  # a fresh in-memory DuckDB reading the file, as a BI tool would
            assert reader.execute(f"SELECT count(*) FROM '{path}'").fetchall() == [(entry["rows"],)]
    assert not list(home.rglob("*.tmp"))  # nothing half-written left behind

    with duckdb.connect(str(home / "serving.duckdb"), read_only=True) as serving:
        for (schema, table), rows in counts.items():
            assert serving.execute(f"SELECT count(*) FROM {schema}.{table}").fetchone()[0] == rows


def test_serving_snapshot_opens_while_another_process_writes_the_warehouse(home):
    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        write_serving_snapshot(con, home, "run-1")
        # The warehouse is now held read-write by this process: a BI tool (another process)
        # cannot open it, but can open the serving snapshot.
        probe = (
            "import duckdb, sys\n"
            "try:\n    duckdb.connect(sys.argv[1], read_only=True); print('opened')\n"
            "except duckdb.IOException as e:\n    print('locked')\n"
        )
        main = subprocess.run([sys.executable, "-c", probe, str(home / "warehouse.duckdb")],
                              capture_output=True, text=True, check=True)
        serving = subprocess.run([sys.executable, "-c", probe, str(home / "serving.duckdb")],
                                 capture_output=True, text=True, check=True)
    assert main.stdout.strip() == "locked"
    assert serving.stdout.strip() == "opened"


def test_a_dropped_table_leaves_the_exports(home):
    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        export_parquet(con, home, "run-1")
        con.execute("DROP TABLE marts.mart_rep_performance")
        export_parquet(con, home, "run-2")
    assert not (home / "exports" / "marts" / "mart_rep_performance.parquet").exists()
    names = {t["table"] for t in json.loads((home / "exports" / "manifest.json").read_text())["tables"]}
    assert "mart_rep_performance" not in names and "fct_deal_margin" in names
