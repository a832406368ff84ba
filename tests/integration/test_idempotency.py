"""Idempotency: rerunning the whole pipeline, or any daily partition of the dbt models, on the same
inputs changes nothing: every raw, quarantine, marts and analytics table has the same checksum
afterwards (no column excluded), and so do the serving snapshot and the Parquet exports.

What "the same" means is said in one place, fixtures/checksums.py (`table_checksums`,
`exports_checksums`); the fault tests (tests/e2e/test_faults.py) use it too.
"""

from __future__ import annotations

import calendar
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from fixtures.checksums import published_state, table_checksums
from fixtures.cli import salesalign_run

pytestmark = [pytest.mark.slow, pytest.mark.faults]  # `make test-faults`: long reruns, run by .ci/run


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
