"""How the pipeline runs by itself: the daily schedule, daily partitions, the warehouse pool,
freshness policies, the extraction retry policy and the automation that refreshes analytics.

DuckDB has one writer per file (stack-notes): every step that opens `$SALESALIGN_HOME` (landing,
GX checks that quarantine, dbt, analytics, publish) runs in the pool `salesalign_warehouse`, whose
limit is 1 in the Dagster instance (`dagster.yaml`, written by `ensure_instance`). Steps of two
overlapping runs, or of a run and a check launched from the UI, therefore take turns instead of
failing with "Could not set lock on file". Within a run the job uses the in-process executor, so
steps never overlap and no step pays for a subprocess.
"""

from __future__ import annotations

import fcntl
import os
import sys
import warnings
from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import yaml

WAREHOUSE_POOL = "salesalign_warehouse"
# Single-run backfills are what the dbt integration is built for; the "beta" label is noise here.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=dg.BetaWarning)

# Business days: extraction (the day a batch is landed) and the incremental dbt facts (the close
# date of the deals a partition reprocesses). The demo company's window starts on 2023-01-01;
# SALESALIGN_PARTITIONS_START moves the first partition for older real data.
PARTITIONS_START = os.environ.get("SALESALIGN_PARTITIONS_START", "2023-01-01")
daily_partitions = dg.DailyPartitionsDefinition(start_date=PARTITIONS_START, timezone="UTC")
backfill_policy = dg.BackfillPolicy.single_run()  # one run (one dbt invocation) for any range

# Sources and APIs fail transiently (a network blip, a file still being copied): retry with backoff.
# Data errors (a value outside the contract) fail at once: the asset raises Failure(allow_retries=False).
extraction_retry = dg.RetryPolicy(
    max_retries=3, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)

# The schedule runs daily; a day and a quarter of slack before an asset is late, a day and a half
# before it is failed (shown as freshness in the UI).
freshness = dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=36), warn_window=timedelta(hours=30))

# Analytics, decisions and publishing follow their inputs: when a mart changes (a backfill of some
# partitions, a dbt run from the UI), they re-materialise once nothing upstream is running. This is
# `eager()` without its "no dependency missing" clause: the marts are daily-partitioned and most days
# are never materialised as a partition of their own, so that clause would hold analytics back forever.
follow_upstream = (
    dg.AutomationCondition.any_deps_updated().since_last_handled()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("re-materialise after an upstream change")

DAILY_CRON = "0 5 * * *"  # 05:00 UTC: after the nightly CRM and finance exports


def daily_schedule(job: dg.UnresolvedAssetJobDefinition) -> dg.ScheduleDefinition:
    """Everything, every day, for the day that just ended (its partition)."""

    @dg.schedule(
        job=job,
        cron_schedule=DAILY_CRON,
        execution_timezone="UTC",
        name="salesalign_daily",
        description="Full materialisation every day at 05:00 UTC for yesterday's partition: extract -> "
        "quality -> dbt (the incremental facts reprocess yesterday's deals) -> analytics -> publish.",
    )
    def _daily(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        day = (context.scheduled_execution_time - timedelta(days=1)).strftime("%Y-%m-%d")
        return dg.RunRequest(run_key=day, partition_key=day, tags={"salesalign/trigger": "schedule"})

    return _daily


def automation_sensor() -> dg.AutomationConditionSensorDefinition:
    """Evaluates `follow_upstream` on analytics, decisions and publish every 30 s (the daemon runs it)."""
    return dg.AutomationConditionSensorDefinition(
        "analytics_follow_marts",
        target=dg.AssetSelection.all(),
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Re-materialises analytics, decision tables and publish outputs after their marts "
        "change.",
    )


def latest_partition() -> str:
    """The partition a run without one of its own works on: yesterday (the last complete day)."""
    return daily_partitions.get_last_partition_key()


def with_partition(sensor: dg.SensorDefinition) -> dg.SensorDefinition:
    """The same sensor, its run requests given the latest partition when they name none.

    The dbt asset is partitioned, and Dagster cannot run it without a partition (its models' data
    versions are looked up per partition), so every run of the main job needs one.
    """

    @dg.sensor(
        name=sensor.name,
        job_name=sensor.job_name,
        minimum_interval_seconds=sensor.minimum_interval_seconds,
        description=sensor.description,
        default_status=sensor.default_status,
    )
    def _with_partition(context: dg.SensorEvaluationContext):
        data = sensor.evaluate_tick(context)
        requests = [
            r if r.partition_key else r.with_replaced_attrs(partition_key=latest_partition())
            for r in data.run_requests or []
        ]
        if not requests:
            return dg.SkipReason(data.skip_message or "nothing to launch")
        return dg.SensorResult(run_requests=requests, cursor=data.cursor)

    return _with_partition


def in_warehouse_pool(defs: Iterable[dg.AssetsDefinition | dg.AssetChecksDefinition]) -> list:
    """Put every step of `defs` in the warehouse pool.

    Assets owned by other modules declare no pool yet; Dagster has no public way to set the pool of a
    built definition, so this sets it on the op (same value a `pool=` argument stores). Definitions
    that already declare a pool keep it.
    """
    out = list(defs)
    for d in out:
        op = d.node_def
        if isinstance(op, dg.OpDefinition) and op.pool is None:
            op._pool = WAREHOUSE_POOL  # see the docstring
    return out


def with_automation(assets: Sequence[dg.AssetsDefinition]) -> list[dg.AssetsDefinition]:
    """Analytics, decision and publish assets re-materialise when their inputs change."""
    return [a.with_attributes(automation_condition=follow_upstream) for a in assets]


def with_freshness(assets: Sequence[dg.AssetsDefinition]) -> list[dg.AssetsDefinition]:
    """Landing tables and marts are expected to be refreshed daily (see `freshness`)."""
    return [dg.apply_freshness_policy(a, freshness) for a in assets]


def partition_window(context: dg.AssetExecutionContext) -> tuple[date, date] | None:
    """The inclusive [first, last] day a partitioned run covers, or None for a full (unpartitioned) run."""
    if not (context.has_partition_key or context.has_partition_key_range):
        return None
    window = context.partition_time_window
    return window.start.date(), (window.end - timedelta(days=1)).date()


# --- the Dagster instance ------------------------------------------------------------------------

INSTANCE_SETTINGS = {
    "concurrency": {"pools": {"default_limit": 1, "granularity": "op"}},
    "telemetry": {"enabled": False},
}


def ensure_instance(dagster_home: Path) -> Path:
    """Write (or complete) `$DAGSTER_HOME/dagster.yaml` so every pool, the warehouse's included, has limit 1.

    Settings someone wrote by hand are kept; only missing keys are added.
    """
    dagster_home.mkdir(parents=True, exist_ok=True)
    path = dagster_home / "dagster.yaml"
    config = (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}
    merged = _merge_missing(config, INSTANCE_SETTINGS)
    # Two runs starting at once on a new home would both write the config and both create the
    # instance's SQLite tables ("table runs already exists"): one at a time, under a file lock.
    with (dagster_home / ".salesalign-instance.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if merged != config or not path.exists():
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_text(
                "# Written by salesalign (orchestration/automation.py): warehouse writers take turns.\n"
                + yaml.safe_dump(merged, sort_keys=False)
            )
            tmp.replace(path)
        with dg.DagsterInstance.from_config(str(dagster_home)):
            pass  # creates the run, event and schedule storage once
    return path


def _merge_missing(config: dict, defaults: dict) -> dict:
    out = dict(config)
    for key, value in defaults.items():
        if isinstance(value, dict):
            out[key] = _merge_missing(out.get(key) or {}, value)
        else:
            out.setdefault(key, value)
    return out


def free_abandoned_slots(instance: dg.DagsterInstance) -> list[str]:
    """Release warehouse slots held by runs that are no longer running (a killed `salesalign run`).

    A process killed mid-step cannot free its slot; without this, the next run would wait forever.
    """
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return []
    info = storage.get_concurrency_info(WAREHOUSE_POOL)
    freed = []
    for slot in info.claimed_slots:
        run = instance.get_run_by_id(slot.run_id)
        if run is None or run.is_finished:
            storage.free_concurrency_slots_for_run(slot.run_id)
            freed.append(slot.run_id)
    return freed


if __name__ == "__main__":  # `python -m orchestration.automation DAGSTER_HOME` (make dev)
    print(f"Dagster instance settings: {ensure_instance(Path(sys.argv[1]))}")
