"""Idempotency: rerunning the whole pipeline, or any daily partition of the dbt models, on the same
inputs changes nothing: every raw, quarantine, marts and analytics table has the same checksum
afterwards (no column excluded), and so do the serving snapshot and the Parquet exports.

`table_checksums` and `exports_checksums` are the one place that says what "the same" means; the
fault tests (tests/e2e/test_faults.py) use them too, with `LOAD_METADATA` excluded when comparing
two homes that landed the same files at different times.
"""

from __future__ import annotations

import calendar
import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.faults]  # `make test-faults`: long reruns, run by .ci/run
BIN = Path(sys.executable).parent
CHECKED_SCHEMAS = ("raw", "raw_quarantine", "marts", "analytics")

# The only columns allowed to differ between two homes that landed the same files: when and under
# which id a file was landed (a new uuid and the clock at every landing), and what is derived from
# that alone. Within one home a rerun lands nothing, so there even these stay equal (checked).
LOAD_METADATA: dict[str, tuple[str, ...]] = {
    "raw.*": ("_load_id", "_loaded_at"),  # every contract table: load id and landing time of the row
    "raw._loads": ("load_id", "loaded_at"),  # the load log: the same two, per file
    "raw_quarantine.quarantined_rows": ("load_id", "quarantined_at"),  # the load a row came in, when
    "marts.fct_deal_margin": ("loaded_through",),  # max(_loaded_at) of the rows behind a deal
    "marts.fct_opportunities": ("loaded_through",),  # same
}


def _excluded(schema: str, table: str, exclude: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
    if table.startswith("_") or schema != "raw":
        return exclude.get(f"{schema}.{table}", ())
    return exclude.get(f"{schema}.{table}", exclude.get("raw.*", ()))


def table_checksums(
    db: Path, schemas=CHECKED_SCHEMAS, exclude: dict[str, tuple[str, ...]] | None = None
) -> dict[str, tuple[int, str]]:
    """`{"schema.table": (rows, checksum)}` for every table of `schemas` in the DuckDB file `db`.

    The checksum is the md5 of the sorted md5s of every row (all columns but the excluded ones, each
    row cast to text: doubles print their shortest exact form, so a 1-ulp change shows). Sorting
    makes it independent of row order; unlike a XOR of hashes it still counts duplicates.
    """
    exclude = exclude or {}
    with duckdb.connect(str(db), read_only=True) as con:
        tables = con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = current_database() "
            f"AND schema_name IN ({', '.join('?' for _ in schemas)}) ORDER BY 1, 2",
            list(schemas),
        ).fetchall()
        out = {}
        for schema, table in tables:
            drop = _excluded(schema, table, exclude)
            select = f"SELECT * EXCLUDE ({', '.join(drop)})" if drop else "SELECT *"
            out[f"{schema}.{table}"] = con.execute(
                f"SELECT count(*), coalesce(md5(string_agg(h, '' ORDER BY h)), '') "
                f'FROM (SELECT md5(CAST(r AS VARCHAR)) AS h FROM ({select} FROM "{schema}"."{table}") r)'
            ).fetchone()
        return out


def exports_checksums(
    home: Path, exclude: dict[str, tuple[str, ...]] | None = None
) -> dict[str, tuple[int, str]]:
    """The manifest's tables, each read back from its Parquet file: `{"schema.table": (rows, checksum)}`,
    computed as in `table_checksums`.

    Fails if a listed file is missing or unreadable, or holds another row count than the manifest says.
    """
    manifest = json.loads((home / "exports" / "manifest.json").read_text())
    out = {}
    with duckdb.connect() as con:
        for t in manifest["tables"]:
            path = str(home / t["file"]).replace("'", "''")
            drop = _excluded(t["schema"], t["table"], exclude or {})
            select = f"SELECT * EXCLUDE ({', '.join(drop)})" if drop else "SELECT *"
            rows, checksum = con.execute(
                f"SELECT count(*), coalesce(md5(string_agg(h, '' ORDER BY h)), '') "
                f"FROM (SELECT md5(CAST(r AS VARCHAR)) AS h FROM ({select} FROM read_parquet('{path}')) r)"
            ).fetchone()
            assert rows == t["rows"], f"{t['file']}: {rows} rows, the manifest says {t['rows']}"
            out[f"{t['schema']}.{t['table']}"] = (rows, checksum)
    return out


def published_state(home: Path, exclude: dict[str, tuple[str, ...]] | None = None) -> dict:
    """What BI readers see: the exports (manifest + every file read back) and the serving snapshot."""
    manifest = json.loads((home / "exports" / "manifest.json").read_text())
    return {
        "run_id": manifest["run_id"],
        "exports": exports_checksums(home, exclude),
        "serving": table_checksums(home / "serving.duckdb", ("marts", "analytics"), exclude),
    }


def salesalign_run(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SALESALIGN_", "DAGSTER_HOME"))}
    return subprocess.run(
        [str(BIN / "salesalign"), "run", "--home", str(home), *args],
        capture_output=True, text=True, env=env, timeout=900,
    )


@pytest.fixture(scope="module")
def built_home(tmp_path_factory) -> Path:
    """One complete `salesalign run` of the tiny demo."""
    home = tmp_path_factory.mktemp("idempotent") / "home"
    first = salesalign_run(home, "--scale", "tiny")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    return home


def test_rerunning_the_whole_pipeline_changes_nothing(built_home):
    warehouse = table_checksums(built_home / "warehouse.duckdb")  # nothing excluded
    published = published_state(built_home)
    assert warehouse["raw.activities"][0] > 1000 and warehouse["marts.fct_deal_margin"][0] > 100
    assert sum(t.startswith("analytics.") for t in warehouse) >= 10

    again = salesalign_run(built_home, "--scale", "tiny")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]

    assert table_checksums(built_home / "warehouse.duckdb") == warehouse
    republished = published_state(built_home)
    assert republished["run_id"] != published["run_id"]  # published again, by the second run ...
    assert republished["exports"] == published["exports"]  # ... with the same contents
    assert republished["serving"] == published["serving"]
    assert republished["serving"] == {k: v for k, v in warehouse.items() if k.split(".")[0] in
                                      ("marts", "analytics")}


def _busiest_close_day(home: Path) -> date:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(
            "SELECT close_date FROM marts.fct_deal_margin GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1"
        ).fetchone()[0]


def test_rerunning_any_partition_changes_nothing(built_home, monkeypatch):
    """The busiest closing day, and its month as one backfill run: each `dbt build --vars {min_date,
    max_date}` leaves every table as it was. (The latest day, the partition `salesalign run` builds,
    is rerun by the whole-pipeline test above.)"""
    from orchestration.resources import WarehouseResource
    from orchestration.transform import dbt_models, dbt_resource

    before = table_checksums(built_home / "warehouse.duckdb")
    busiest = _busiest_close_day(built_home)
    month_start = busiest.replace(day=1)
    month_end = busiest.replace(day=calendar.monthrange(busiest.year, busiest.month)[1])
    runs = {
        "busiest day": {"partition_key": busiest.isoformat()},
        "month backfill": {"tags": {
            "dagster/asset_partition_range_start": month_start.isoformat(),
            "dagster/asset_partition_range_end": month_end.isoformat(),
        }},
    }
    with duckdb.connect(str(built_home / "warehouse.duckdb"), read_only=True) as con:
        in_month = con.execute(
            "SELECT count(*) FROM marts.fct_deal_margin WHERE close_date BETWEEN ? AND ?",
            [month_start, month_end],
        ).fetchone()[0]
    assert in_month > 5  # the backfill really has deals to reprocess

    with dg.instance_for_test() as instance:
        for name, how in runs.items():
            result = dg.materialize([dbt_models], instance=instance, resources={
                "dbt": dbt_resource(), "warehouse": WarehouseResource(home=str(built_home))},
                                    raise_on_error=False, **how)
            assert result.success, name
            after = table_checksums(built_home / "warehouse.duckdb")
            changed = sorted(t for t in before if after.get(t) != before[t])
            assert changed == [] and after.keys() == before.keys(), f"rerun of {name} changed {changed}"
