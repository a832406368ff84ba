"""How the pipeline runs by itself: the daily schedule, daily partitions, the warehouse pool,
freshness policies, the extraction retry policy and the automation that refreshes analytics.

Only what is incremental is daily-partitioned: extraction (a partition is the raw tables as they stood
at the end of that day), the quarantine ledger between it and dbt, and the incremental dbt models
(`config.materialized:incremental`: the facts that reprocess a close-date window and the incremental
staging tables they read). Everything else (the other dbt models, analytics, publish) is built once
per run on all history.

DuckDB has one writer per file (docs/stack.md): every step that opens `$SALESALIGN_HOME` (landing,
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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import yaml

from salesalign.settings import Settings

WAREHOUSE_POOL = "salesalign_warehouse"
# Single-run backfills are what the dbt integration is built for; the "beta" label is noise here.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=dg.BetaWarning)


def days_from(first_day: str) -> dg.DailyPartitionsDefinition:
    """Daily partitions (UTC days) from `first_day` on."""
    return dg.DailyPartitionsDefinition(start_date=first_day, timezone="UTC")


# Business days: extraction (the day a batch is landed) and the incremental dbt facts (the close
# date of the deals a partition reprocesses). The stage modules declare their daily assets on these
# days from the default first day (the demo company's window starts on 2023-01-01), so tests can
# materialise them as they are; each stage's `definitions(settings)` moves them to the configured
# first day (SALESALIGN_PARTITIONS_START, for older real data) with `starting_on`.
daily_partitions = days_from(Settings.partitions_start)
backfill_policy = dg.BackfillPolicy.single_run()  # one run for any range of days


def starting_on(settings: Settings, assets: Sequence[dg.AssetsDefinition]) -> list[dg.AssetsDefinition]:
    """`assets`, those of their assets declared on `daily_partitions` moved to the first day `settings`
    name (one multi-asset may hold partitioned and unpartitioned assets: the dbt models)."""
    days = days_from(settings.partitions_start)
    if days == daily_partitions:
        return list(assets)

    def _moved(spec: dg.AssetSpec) -> dg.AssetSpec:
        daily = spec.partitions_def == daily_partitions
        return spec.replace_attributes(partitions_def=days) if daily else spec

    return [a.map_asset_specs(_moved) for a in assets]


# Sources and APIs fail transiently (a network blip, a file still being copied): retry with backoff.
# Data errors (a value outside the contract) fail at once: the asset raises Failure(allow_retries=False).
extraction_retry = dg.RetryPolicy(
    max_retries=3, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)

# The schedule runs daily; a day and a quarter of slack before an asset is late, a day and a half
# before it is failed (shown as freshness in the UI).
freshness = dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=36), warn_window=timedelta(hours=30))

# Analytics, decisions and publishing follow their inputs: when a mart changes (a backfill of some
# days, a dbt run from the UI), they re-materialise once nothing upstream is running. This is Dagster's
# `eager()` without its "no dependency missing" clause (as Dagster documents it, "eager_allow_missing"):
# they read all days of the daily-partitioned facts, most of which are never materialised as a
# partition of their own, so that clause would hold them back forever.
follow_upstream = (
    dg.AutomationCondition.eager()
    .without(~dg.AutomationCondition.any_deps_missing())
    .with_label("eager_allow_missing")
)

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


def with_automation(assets: Sequence[dg.AssetsDefinition]) -> list[dg.AssetsDefinition]:
    """Analytics, decision and publish assets re-materialise when their inputs change."""
    return [a.with_attributes(automation_condition=follow_upstream) for a in assets]


def partition_window(context: dg.AssetExecutionContext) -> tuple[date, date] | None:
    """The inclusive [first, last] day a partitioned run covers, or None for a full (unpartitioned) run."""
    if not (context.has_partition_key or context.has_partition_key_range):
        return None
    window = context.partition_time_window
    return window.start.date(), (window.end - timedelta(days=1)).date()


def extraction_through(context: dg.AssetExecutionContext) -> date | None:
    """The last day a partitioned extraction may take data from, or None for "everything so far".

    A run of the newest partition (the daily schedule, `salesalign run`, a sensor) extracts up to now:
    what changed since midnight lands with it, and the next day's run goes on from the watermarks.
    A backfill of older days stops at the end of its window: dated batches and records changed later
    wait for the runs of their own days, so a backfill replays history as it stood.
    """
    window = partition_window(context)
    if window is None or window[1] >= date.fromisoformat(latest_partition()):
        return None
    return window[1]


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
    with _instance_lock(dagster_home):
        if merged != config or not path.exists():
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_text(
                "# Written by salesalign (orchestration/operations.py): warehouse writers take turns.\n"
                + yaml.safe_dump(merged, sort_keys=False)
            )
            tmp.replace(path)
        with dg.DagsterInstance.from_config(str(dagster_home)):
            pass  # creates the run, event and schedule storage once
    return path


@contextmanager
def _instance_lock(dagster_home: Path) -> Iterator[None]:
    """Exclusive, across processes, for changes to the instance's setup and bookkeeping."""
    with (dagster_home / ".salesalign-instance.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _merge_missing(config: dict, defaults: dict) -> dict:
    out = dict(config)
    for key, value in defaults.items():
        if isinstance(value, dict):
            out[key] = _merge_missing(out.get(key) or {}, value)
        else:
            out.setdefault(key, value)
    return out


# --- runs killed mid-step ------------------------------------------------------------------------
# A `salesalign run` killed by SIGKILL (or the OOM killer, or a power cut) cannot record its own end: its
# run stays STARTED in the instance and keeps its warehouse slot, so every later run would wait for
# that slot forever. Each `salesalign run` therefore holds an exclusive lock on a file of its own for
# as long as its process lives (`run_lock`) and names that file in a run tag; the kernel drops the
# lock when the process dies, however it dies. A STARTED run whose lock nobody holds is abandoned.
# Runs launched from the UI or the daemon carry no such tag and are judged by their status only.

RUN_LOCK_TAG = "salesalign/run_lock"  # the lock file of the process executing the run
LAUNCHER_TAG = "salesalign/launcher"  # "cli" for `salesalign run`


@contextmanager
def run_lock(dagster_home: Path, run_id: str) -> Iterator[dict[str, str]]:
    """Hold the lock that says "the process running `run_id` is alive"; yields the run tags naming it."""
    folder = dagster_home / ".salesalign-runs"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{run_id}.lock"
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        try:
            yield {RUN_LOCK_TAG: str(path), LAUNCHER_TAG: "cli"}
        finally:
            path.unlink(missing_ok=True)


def _process_alive(lock_path: str) -> bool:
    """Whether the process that took the run lock at `lock_path` still holds it."""
    try:
        handle = open(lock_path)  # noqa: SIM115 (closed below: closing drops a lock we took)
    except FileNotFoundError:
        return False  # the run ended and removed its lock
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        return False


def is_abandoned(run: dg.DagsterRun | None) -> bool:
    """A run that will never finish by itself: unknown, or started by a `salesalign run` that died."""
    if run is None:
        return True
    if run.is_finished:
        return False
    lock = run.tags.get(RUN_LOCK_TAG)
    return lock is not None and not _process_alive(lock)


def free_abandoned_slots(instance: dg.DagsterInstance) -> list[str]:
    """Release the warehouse slots (claimed or waited for) of runs that are no longer running.

    A run that is finished, or whose `salesalign run` process is gone (killed mid-step: it could
    neither free its slot nor record its end), loses its slots; a killed run is also marked failed,
    so the UI and the next run's history do not show it running forever. Returns the run ids freed.
    """
    # one process at a time decides (two runs starting together would both mark a dead run failed)
    with _instance_lock(Path(instance.root_directory)):
        return _free_abandoned_slots(instance)


def _free_abandoned_slots(instance: dg.DagsterInstance) -> list[str]:
    freed = []
    for run in instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED],
                                               tags={LAUNCHER_TAG: "cli"})):
        if is_abandoned(run):
            instance.report_run_failed(
                run, "the salesalign run process ended without finishing the run (killed?)"
            )
            Path(run.tags[RUN_LOCK_TAG]).unlink(missing_ok=True)
            freed.append(run.run_id)
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return freed
    info = storage.get_concurrency_info(WAREHOUSE_POOL)
    holders = {s.run_id for s in info.claimed_slots} | {s.run_id for s in info.pending_steps}
    for run_id in sorted(holders):
        run = instance.get_run_by_id(run_id)
        if run_id in freed or is_abandoned(run) or run.is_finished:  # is_abandoned(None) is True
            storage.free_concurrency_slots_for_run(run_id)
            if run_id not in freed:
                freed.append(run_id)
    return freed




MAIN_JOB = "salesalign_main"

main_job = dg.define_asset_job(
    MAIN_JOB,
    selection=dg.AssetSelection.all(),
    description="Everything, end to end: extract -> quality -> dbt marts -> analytics -> publish.",
    executor_def=dg.in_process_executor,  # steps take turns on the DuckDB file (see the module doc)
)


def definitions(settings) -> dg.Definitions:
    """How it runs: the main job, its daily schedule, the automation sensor, the resources."""
    from orchestration.resources import build_resources

    return dg.Definitions(
        jobs=[main_job],
        schedules=[daily_schedule(main_job)],
        sensors=[automation_sensor()],
        resources=build_resources(settings),
    )


if __name__ == "__main__":  # `python -m orchestration.operations DAGSTER_HOME` (make dev)
    print(f"Dagster instance settings: {ensure_instance(Path(sys.argv[1]))}")
