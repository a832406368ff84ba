"""Backfills of daily partitions, run the way Dagster runs a single-run backfill (one run, one dbt
invocation over the range): they reprocess exactly those days, extraction lands a day's dated batches
only from that day on, and the marts end up equal to one full run."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from integration.helpers_dbt import new_home

from bench.pipeline import write_day_batch
from orchestration.extract import assets as extract_assets
from orchestration.operations import latest_partition
from orchestration.resources import SourceResource, WarehouseResource
from orchestration.transform import dbt_models, dbt_resource

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
def full_run_home(tmp_path, small_marts_home):
    return new_home(tmp_path / "home", small_marts_home)


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
            [dbt_models], instance=instance, tags=RANGE_TAGS,
            resources={"dbt": dbt_resource(), "warehouse": WarehouseResource(home=str(full_run_home))},
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


DAYS = ["2025-12-29", "2025-12-30", "2025-12-31"]


def _drop_with_dated_batches(small_drop: Path, drop: Path) -> dict[str, list[str]]:
    """The small demo plus one dated batch per day in `DAYS` (`opportunities/<day>.parquet` and
    `activities/<day>.parquet`): copies of the deals closed that day, with new ids, and their activities.
    Returns the new opportunity ids per day."""
    shutil.copytree(small_drop, drop)
    return {
        day: write_day_batch(drop, day, name=day, id_prefix=f"8{n}")["opportunity_ids"]
        for n, day in enumerate(DAYS, start=1)
    }


def _extract_and_build(home: Path, drop: Path, monkeypatch, **run) -> dg.ExecuteInProcessResult:
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [*extract_assets, dbt_models],
            instance=instance,
            resources={
                "source": SourceResource(kind="files", path=str(drop)),
                "warehouse": WarehouseResource(home=str(home)),
                "dbt": dbt_resource(),
            },
            **run,
        )
        assert result.success
        return result


def _landed_ids(home: Path) -> set[str]:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        return {i for (i,) in con.execute("SELECT opportunity_id FROM raw.opportunities").fetchall()}


def test_partitioned_extraction_backfilled_day_by_day_equals_one_full_run(small_drop, tmp_path, monkeypatch):
    drop = tmp_path / "drop"
    new_ids = _drop_with_dated_batches(small_drop, drop)
    assert all(len(ids) > 10 for ids in new_ids.values())

    # a backfill of the first two days, as one run: their batches land, the third day's waits
    home = tmp_path / "backfilled"
    first = _extract_and_build(home, drop, monkeypatch, tags={
        "dagster/asset_partition_range_start": DAYS[0], "dagster/asset_partition_range_end": DAYS[1]})
    landed = _landed_ids(home)
    assert set(new_ids[DAYS[0]]) | set(new_ids[DAYS[1]]) <= landed
    assert not set(new_ids[DAYS[2]]) & landed
    landing = [m for m in first.asset_materializations_for_node("raw__opportunities")]
    assert {m.partition for m in landing} == set(DAYS[:2])
    assert {m.metadata["extracted_through"].value for m in landing} == {DAYS[1]}

    # the third day's partition lands its batch and nothing twice
    _extract_and_build(home, drop, monkeypatch, partition_key=DAYS[2])
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        rows, distinct = con.execute(
            "SELECT count(*), count(DISTINCT opportunity_id) FROM raw.opportunities").fetchone()
    assert rows == distinct == 5000 + sum(len(ids) for ids in new_ids.values())

    # one full run (the newest partition extracts everything) on a fresh home builds the same marts
    full = tmp_path / "full"
    _extract_and_build(full, drop, monkeypatch, partition_key=latest_partition())
    assert _landed_ids(full) == _landed_ids(home)
    assert _marts(home / "warehouse.duckdb") == _marts(full / "warehouse.duckdb")
