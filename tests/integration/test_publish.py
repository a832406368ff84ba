"""BI outputs: Parquet and CSV exports equal the warehouse (CSV text guarded against formulas); the
serving snapshot is readable while a writer holds the warehouse."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys

import duckdb
import pyarrow.parquet as pq
import pytest

from salesalign.publish.exports import (
    export_tables,
    published_tables,
    write_serving_snapshot,
)


@pytest.fixture
def home(tmp_path, small_marts_home):
    shutil.copy(small_marts_home / "warehouse.duckdb", tmp_path / "warehouse.duckdb")
    return tmp_path


def test_exports_and_snapshot_match_the_warehouse(home):
    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        tables = published_tables(con)
        published = export_tables(con, home, "run-1")
        write_serving_snapshot(con, home, "run-1")
        counts = {(s, t): con.execute(f"SELECT count(*) FROM {s}.{t}").fetchone()[0] for s, t in tables}
    assert ("marts", "fct_deal_margin") in counts and len(published) == len(tables)

    manifest = json.loads((home / "exports" / "manifest.json").read_text())
    assert manifest["run_id"] == "run-1"
    for entry in manifest["tables"]:
        path = home / entry["file"]
        assert pq.read_metadata(path).num_rows == counts[(entry["schema"], entry["table"])] == entry["rows"]
        assert [c["name"] for c in entry["columns"]] == pq.read_schema(path).names
        with (home / entry["csv"]).open(encoding="utf-8-sig", newline="") as f:  # the CSV beside it
            rows = list(csv.reader(f))
        assert rows[0] == pq.read_schema(path).names and len(rows) == entry["rows"] + 1
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
        export_tables(con, home, "run-1")
        con.execute("DROP TABLE marts.mart_rep_performance")
        export_tables(con, home, "run-2")
    assert not (home / "exports" / "marts" / "mart_rep_performance.parquet").exists()
    assert not (home / "exports" / "marts" / "mart_rep_performance.csv").exists()
    assert (home / "exports" / "marts" / "fct_deal_margin.csv").exists()
    names = {t["table"] for t in json.loads((home / "exports" / "manifest.json").read_text())["tables"]}
    assert "mart_rep_performance" not in names and "fct_deal_margin" in names


def test_csv_neutralises_formulas_in_text_and_leaves_other_types(tmp_path):
    """Every formula trigger, in VARCHAR and ENUM columns; numbers (negative ones too), dates,
    booleans and NULLs untouched; quoting keeps commas, quotes and line breaks inside one cell."""
    hostile = ['=HYPERLINK("http://evil","x")', "+cmd|' /C calc'!A0", "@SUM(1)", "-2+3", "\tx", "\rx"]
    benign = ["<script>alert(1)</script>", "a, b", 'say "hi"', "two\nlines", "", "O'Brien", "ok=1"]
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        con.execute("CREATE SCHEMA analytics")
        con.execute("CREATE TYPE verdict AS ENUM ('-worse', 'fine')")
        con.execute(
            "CREATE TABLE analytics.t (name VARCHAR, verdict verdict, cm DECIMAL(18,2), x DOUBLE, n BIGINT, "
            "d DATE, ok BOOLEAN)"
        )
        values = [*hostile, *benign, None]
        for i, v in enumerate(values):
            con.execute(
                "INSERT INTO analytics.t VALUES (?, ?, ?, ?, ?, DATE '2024-01-01' + ?, ?)",
                [v, "-worse" if i % 2 else "fine", -1234.5 - i, -0.25 * i, -i, i, i % 2 == 0],
            )
        published = export_tables(con, tmp_path, "run-1")
    entry = published[0]
    assert entry.csv == "exports/analytics/t.csv" and entry.csv_neutralised_columns == ["name", "verdict"]
    raw = (tmp_path / entry.csv).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbfname,verdict,cm,x,n,d,ok\n")
    with (tmp_path / entry.csv).open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["name"] for r in rows] == ["'" + v for v in hostile] + benign + [""]
    assert {r["verdict"] for r in rows} == {"'-worse", "fine"}
    assert [r["cm"] for r in rows[:2]] == ["-1234.50", "-1235.50"]  # numbers: no quote, still negative
    assert rows[3]["x"] == "-0.75" and rows[3]["n"] == "-3" and rows[3]["d"] == "2024-01-04"
    assert rows[0]["ok"] == "true"
    with duckdb.connect() as reader:  # the Parquet beside it keeps every original value
        names = [r[0] for r in reader.execute(f"SELECT name FROM '{tmp_path / entry.file}'").fetchall()]
    assert names == values
