"""Backfills of daily partitions, run the way Dagster runs a single-run backfill (one run, one dbt
invocation over the range): they reprocess exactly those days, extraction lands a day's dated batches
only from that day on, and the marts end up equal to one full run. A backfill launched from the UI
runs each stretch of equally partitioned assets as a run of its own; the run of the incremental
models alone runs their tests and no other."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from fixtures.drops import write_day_batch
from fixtures.warehouse import land_drop, new_home

from orchestration.extract import assets as extract_assets
from orchestration.operations import latest_partition
from orchestration.resources import SourceResource, WarehouseResource
from orchestration.transform import dbt_models, dbt_resource

FIRST, LAST = "2025-12-29", "2025-12-31"  # the busiest closing days of the small demo
DAYS = ["2025-12-29", "2025-12-30", "2025-12-31"]
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
        partitions: dict[str, set[str | None]] = {}
        for m in result.asset_materializations_for_node("dbt_models"):
            partitions.setdefault(m.asset_key.to_user_string(), set()).add(m.partition)
        messages = [r.user_message for r in instance.all_logs(result.run_id) if r.user_message]
    # one run, one dbt build: the incremental models for each of the three days, the others once
    assert partitions["marts/fct_deal_margin"] == partitions["staging/stg_crm__activities"] == set(DAYS)
    assert partitions["marts/dim_accounts"] == partitions["marts/mart_rep_performance"] == {None}
    assert sum(m.startswith("dbt build ") for m in messages) == 1
    assert any('"min_date": "2025-12-29", "max_date": "2025-12-31"' in m for m in messages)

    assert _marts(full_run_home / "warehouse.duckdb") == expected



def test_a_run_of_the_incremental_models_alone_runs_only_their_tests(full_run_home, small_drop, tmp_path):
    """New deals of a day landed, then a run of the incremental models for that day (the facts' run
    of a backfill launched from the UI). The tests of the dimensions and aggregates that read the
    facts wait for their own run: run now, they would compare new facts with the aggregates of before
    (dbt's default selection runs every test that reads a selected model)."""
    drop = tmp_path / "drop"
    shutil.copytree(small_drop, drop)
    new_ids = write_day_batch(drop, LAST, name=LAST, id_prefix="81")["opportunity_ids"]
    land_drop(full_run_home, drop)
    incremental = {k for k in dbt_models.keys if dbt_models.specs_by_key[k].partitions_def is not None}
    assert {k.to_user_string() for k in incremental} == {
        "staging/stg_crm__activities", "staging/stg_crm__opportunity_stage_history",
        "marts/fct_opportunities", "marts/fct_deal_margin",
    }
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [dbt_models], instance=instance, selection=list(incremental), partition_key=LAST,
            resources={"dbt": dbt_resource(), "warehouse": WarehouseResource(home=str(full_run_home))},
            raise_on_error=False,
        )
        assert result.success, [e.message for e in result.all_events if e.is_step_failure]
        evaluated = {e.asset_check_key for e in result.get_asset_check_evaluations()}
        observed = [e for e in result.all_events if e.event_type == dg.DagsterEventType.ASSET_OBSERVATION]
    assert evaluated == {k for k in dbt_models.check_keys if k.asset_key in incremental}
    assert all(e.passed for e in result.get_asset_check_evaluations())
    assert observed == []  # dagster-dbt records a test outside the run's checks as an observation
    with duckdb.connect(str(full_run_home / "warehouse.duckdb"), read_only=True) as con:
        in_facts = {i for (i,) in con.execute("SELECT opportunity_id FROM marts.fct_deal_margin").fetchall()}
        in_aggregate = con.execute("SELECT sum(deals_closed) FROM marts.mart_rep_performance").fetchone()[0]
    assert len(new_ids) > 10 and set(new_ids) <= in_facts
    assert in_aggregate == len(in_facts) - len(new_ids)  # the aggregates wait for their own run


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
