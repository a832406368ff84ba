"""Schedules, partitions, pools, retries, freshness and automation conditions evaluate as designed."""

from __future__ import annotations

import importlib
import json
from datetime import UTC, date, datetime

import dagster as dg
import pytest
import yaml

from orchestration import operations as automation
from orchestration import transform
from salesalign import contract


@pytest.fixture
def defs(monkeypatch, tmp_path):
    monkeypatch.setenv("SALESALIGN_HOME", str(tmp_path))
    import orchestration.definitions as module

    return importlib.reload(module).defs


def test_daily_schedule_runs_everything_for_yesterdays_partition(defs):
    schedule = defs.resolve_schedule_def("salesalign_daily")
    assert schedule.cron_schedule == automation.DAILY_CRON and schedule.job_name == "salesalign_main"
    context = dg.build_schedule_context(
        scheduled_execution_time=datetime(2025, 6, 2, 5, 0, tzinfo=UTC),
        repository_def=defs.get_repository_def(),
    )
    request = schedule.evaluate_tick(context).run_requests[0]
    assert request.partition_key == "2025-06-01" and request.run_key == "2025-06-01"
    job = defs.resolve_job_def("salesalign_main")
    assert request.partition_key in job.partitions_def.get_partition_keys(datetime(2025, 6, 2, tzinfo=UTC))


def test_every_step_of_the_main_job_is_in_the_warehouse_pool(defs):
    job = defs.resolve_job_def("salesalign_main")
    assert job.executor_def is dg.in_process_executor
    pools = {name: node.definition.pool for name, node in job.graph.node_dict.items()}
    assert set(pools.values()) == {automation.WAREHOUSE_POOL}, pools
    # the GX checks (quarantine writers) and the publish steps are steps of their own, pooled too
    assert any(name.endswith("great_expectations") for name in pools)
    assert {"publish__bi_outputs", "publish__alignment_brief", "publish__docs_site"} <= set(pools)


# Only what is incremental is daily-partitioned: extraction, the dbt models dbt builds incrementally
# (the facts that reprocess a close-date window, the incremental staging tables they read) and the
# quarantine ledger between them (a blocked batch then stops a backfill: see orchestration/quality.py).
# The other dbt models, analytics and publish are not.
PARTITIONED = {
    "extract/source_snapshot",
    *(f"raw/{t}" for t in contract.TABLE_NAMES),
    "quality/quarantined_rows",
    "staging/stg_crm__activities",
    "staging/stg_crm__opportunity_stage_history",
    "marts/fct_opportunities",
    "marts/fct_deal_margin",
}


def test_only_extraction_the_ledger_and_the_incremental_models_are_daily_partitioned(defs):
    graph = defs.resolve_asset_graph()
    nodes = {k.to_user_string(): graph.get(k) for k in graph.get_all_asset_keys()}
    partitioned = {key for key, node in nodes.items() if node.partitions_def is not None}
    assert partitioned == PARTITIONED
    for key in partitioned:  # one partition def and single-run backfills: a range is one run
        assert nodes[key].partitions_def == automation.daily_partitions, key
        assert nodes[key].backfill_policy == dg.BackfillPolicy.single_run(), key
    # the dbt models among them are exactly those the project materialises incrementally
    manifest = json.loads(transform.dbt_project.manifest_path.read_text())
    incremental = {
        f"{n['schema']}/{n['name']}"
        for n in manifest["nodes"].values()
        if n["resource_type"] == "model" and n["config"]["materialized"] == "incremental"
    }
    assert incremental == {k for k in PARTITIONED if k.split("/")[0] in ("staging", "marts")}
    landing = defs.resolve_assets_def(dg.AssetKey(["raw", "opportunities"]))
    assert landing.op.retry_policy == automation.extraction_retry
    for key in ("raw/opportunities", "marts/fct_deal_margin", "marts/dim_accounts"):
        assert nodes[key].freshness_policy == automation.freshness, key


def test_partitions_start_on_the_configured_first_day(monkeypatch, tmp_path):
    monkeypatch.setenv("SALESALIGN_HOME", str(tmp_path))
    monkeypatch.setenv("SALESALIGN_PARTITIONS_START", "2024-06-01")
    import orchestration.definitions as module

    defs = importlib.reload(module).defs
    graph = defs.resolve_asset_graph()
    days = {graph.get(k).partitions_def for k in graph.get_all_asset_keys()} - {None}
    assert days == {automation.days_from("2024-06-01")}  # every partitioned asset, the same days
    job = defs.resolve_job_def("salesalign_main")  # one partition def for the whole job
    assert job.partitions_def.get_first_partition_key() == "2024-06-01"
    # the modules' own assets (what tests materialise) keep the default first day
    fact = transform.dbt_models.specs_by_key[dg.AssetKey(["marts", "fct_deal_margin"])]
    assert fact.partitions_def.get_first_partition_key() == "2023-01-01"


def test_dbt_gets_the_warehouse_currency_and_partition_window_as_vars(tmp_path):
    from orchestration.resources import WarehouseResource
    from orchestration.transform import dbt_build_args

    @dg.asset(partitions_def=automation.daily_partitions)
    def probe(context):
        return automation.partition_window(context)

    one = probe(dg.build_asset_context(partition_key="2024-03-05"))
    span = (date(2024, 3, 5), date(2024, 3, 7))  # a backfill range (run for real in test_automation_backfill)
    build = ["build", "--exclude-resource-type", "unit_test"]  # unit tests run in `make test`
    warehouse = WarehouseResource(home=str(tmp_path), reporting_currency="EUR")
    vars_of = {"warehouse_path": str(tmp_path / "warehouse.duckdb"), "reporting_currency": "EUR"}
    assert dbt_build_args(warehouse, None) == [*build, "--vars", json.dumps(vars_of)]  # the plain build
    one_day = {**vars_of, "min_date": "2024-03-05", "max_date": "2024-03-05"}
    assert dbt_build_args(warehouse, one) == [*build, "--vars", json.dumps(one_day)]
    three_days = {**vars_of, "min_date": "2024-03-05", "max_date": "2024-03-07"}
    assert dbt_build_args(warehouse, span) == [*build, "--vars", json.dumps(three_days)]


def test_a_backfill_of_past_days_extracts_up_to_its_last_day_the_newest_day_everything():
    @dg.asset(partitions_def=automation.daily_partitions)
    def probe(context):
        return automation.extraction_through(context)

    newest = automation.latest_partition()
    assert probe(dg.build_asset_context(partition_key=newest)) is None  # the daily run: up to now
    assert probe(dg.build_asset_context(partition_key="2024-03-05")) == date(2024, 3, 5)
    assert probe(dg.build_asset_context()) is None  # no partition: everything
    # a range (one backfill run) is run for real in test_automation_backfill


def _requested_after_a_backfilled_day(defs: dg.Definitions) -> set[str]:
    """What the automation requests once a backfill rebuilt one day of the facts, everything having
    been materialised once before (the partitioned assets for the latest day only, as the daily run
    leaves them)."""
    graph = defs.resolve_asset_graph()
    everything = list(graph.get_all_asset_keys())
    with dg.instance_for_test() as instance:
        for key in everything:
            partition = automation.latest_partition() if graph.get(key).partitions_def else None
            instance.report_runless_asset_event(dg.AssetMaterialization(key, partition=partition))
        first = dg.evaluate_automation_conditions(defs=defs, instance=instance)
        assert first.total_requested == 0  # nothing new, nothing missing that is wanted
        mart = dg.AssetMaterialization(dg.AssetKey(["marts", "fct_deal_margin"]), partition="2025-03-04")
        instance.report_runless_asset_event(mart)
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
        return {k.to_user_string() for k in everything if result.get_num_requested(k)}


def test_analytics_and_publish_follow_a_changed_mart(defs):
    requested = _requested_after_a_backfilled_day(defs)
    assert {"analytics/practice_effects", "analytics/roi_by_segment", "publish/bi_outputs"} <= requested
    assert not any(k.startswith(("raw/", "marts/", "extract/", "staging/")) for k in requested)


def test_dagsters_eager_alone_would_not_follow_a_backfilled_day(defs):
    """Why `follow_upstream` leaves out eager()'s "no dependency missing": analytics read every day of
    the facts, and the days never materialised as a partition count as missing."""
    def _eager(spec: dg.AssetSpec) -> dg.AssetSpec:
        if spec.automation_condition is None:
            return spec
        return spec.replace_attributes(automation_condition=dg.AutomationCondition.eager())

    eager = [a.map_asset_specs(_eager) for a in defs.assets]
    plain = dg.Definitions(assets=eager, asset_checks=defs.asset_checks, resources=defs.resources)
    assert _requested_after_a_backfilled_day(plain) == set()


def test_sensors_evaluate(monkeypatch, tmp_path):
    watch = tmp_path / "incoming"
    (watch / "2025-06-01").mkdir(parents=True)
    (watch / "2025-06-01" / "_SUCCESS").write_text("")
    monkeypatch.setenv("SALESALIGN_DROP_WATCH_DIR", str(watch))
    monkeypatch.setenv("SALESALIGN_HOME", str(tmp_path))
    import orchestration.definitions as module

    defs = importlib.reload(module).defs
    assert defs.resolve_sensor_def("analytics_follow_marts").default_status == dg.DefaultSensorStatus.RUNNING
    drop_sensor = defs.resolve_sensor_def("file_drop_sensor")
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, repository_def=defs.get_repository_def())
        result = drop_sensor.evaluate_tick(context)
    (request,) = result.run_requests
    # extraction is daily-partitioned: the sensor names the latest day (a drop lands all it holds)
    assert request.partition_key == automation.latest_partition()
    assert request.tags["salesalign/drop"] == "2025-06-01"


def test_instance_config_limits_every_pool_to_one_and_keeps_user_settings(tmp_path):
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: true\n")
    automation.ensure_instance(tmp_path)
    config = yaml.safe_load((tmp_path / "dagster.yaml").read_text())
    assert config["concurrency"]["pools"]["default_limit"] == 1
    assert config["telemetry"]["enabled"] is True  # a setting someone wrote is kept
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        info = instance.event_log_storage.get_concurrency_info(automation.WAREHOUSE_POOL)
        assert info.limit == 1


def test_slots_of_dead_runs_are_released(tmp_path):
    automation.ensure_instance(tmp_path)
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        storage = instance.event_log_storage
        storage.initialize_concurrency_limit_to_default(automation.WAREHOUSE_POOL)
        storage.claim_concurrency_slot(automation.WAREHOUSE_POOL, "gone-run", "raw__accounts")
        assert len(storage.get_concurrency_info(automation.WAREHOUSE_POOL).claimed_slots) == 1
        assert automation.free_abandoned_slots(instance) == ["gone-run"]
        assert storage.get_concurrency_info(automation.WAREHOUSE_POOL).claimed_slots == []
