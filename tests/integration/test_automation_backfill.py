"""A backfill of 3 daily partitions, run the way Dagster runs a single-run backfill (one run, one dbt
invocation over the range), reprocesses exactly those days and leaves the marts equal to a full run."""

from __future__ import annotations

import dagster as dg
import duckdb
import pytest
from integration.helpers_dbt import new_home

from orchestration.transform.assets import dbt_models
from orchestration.transform.project import dbt_resource

FIRST, LAST = "2025-12-29", "2025-12-31"  # the busiest closing days of the small demo
RANGE_TAGS = {"dagster/asset_partition_range_start": FIRST, "dagster/asset_partition_range_end": LAST}
VOLATILE = {"loaded_through"}  # when the rows were built, not what they say


def _marts(path) -> dict[str, list[tuple]]:
    with duckdb.connect(str(path), read_only=True) as con:
        tables = [
            t
            for (t,) in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'marts' ORDER BY 1"
            ).fetchall()
        ]
        out = {}
        for t in tables:
            cols = [
                c
                for (c,) in con.execute(
                    "SELECT column_name FROM duckdb_columns() WHERE schema_name = 'marts' AND table_name = ? "
                    "ORDER BY column_index",
                    [t],
                ).fetchall()
                if c not in VOLATILE
            ]
            out[t] = con.execute(f"SELECT {', '.join(cols)} FROM marts.{t} ORDER BY ALL").fetchall()
        return out


@pytest.fixture
def full_run_home(tmp_path, small_marts_home, monkeypatch):
    home = new_home(tmp_path / "home", small_marts_home)
    monkeypatch.setenv("SALESALIGN_HOME", str(home))  # dbt's profile reads it
    return home


def test_backfill_of_three_partitions_equals_the_full_run(full_run_home):
    expected = _marts(full_run_home / "warehouse.duckdb")
    with duckdb.connect(str(full_run_home / "warehouse.duckdb")) as con:
        # damage the three days: only a backfill that really reprocesses them repairs it
        damaged = con.execute(
            "UPDATE marts.fct_deal_margin SET contribution_margin = 0 "
            f"WHERE close_date BETWEEN '{FIRST}' AND '{LAST}'"
        ).fetchone()[0]
        con.execute(f"DELETE FROM marts.fct_opportunities WHERE close_date BETWEEN '{FIRST}' AND '{LAST}'")
    assert damaged > 30

    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [dbt_models], instance=instance, resources={"dbt": dbt_resource()}, tags=RANGE_TAGS
        )
        assert result.success
        partitions = {
            m.partition
            for m in result.asset_materializations_for_node("dbt_models")
            if m.asset_key == dg.AssetKey(["marts", "fct_deal_margin"])
        }
        messages = [r.user_message for r in instance.all_logs(result.run_id) if r.user_message]
    assert partitions == {"2025-12-29", "2025-12-30", "2025-12-31"}  # one run covered the three days
    assert any('"min_date": "2025-12-29", "max_date": "2025-12-31"' in m for m in messages)

    assert _marts(full_run_home / "warehouse.duckdb") == expected
