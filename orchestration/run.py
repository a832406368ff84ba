"""Progress lines for `salesalign run`: one per step as it starts and ends, plus what long steps report.

Listens to the run's Dagster events (in the process that executes the run), so the terminal shows
`[ 7/41]  31.2s  raw/activities: 102,182 rows landed ...` instead of the debug event stream.
"""

from __future__ import annotations

import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

import dagster as dg

from salesalign.settings import Settings, quiet_third_party
from salesalign.storage import storage_errno, storage_message

QUIET_LOGGERS = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}  # warnings, errors still shown


class RunProgress:
    """An event listener: `instance.add_event_listener(run_id, RunProgress(total_steps))`."""

    def __init__(self, total_steps: int, out: TextIO = sys.stdout):
        self.total = total_steps
        self.done = 0
        self.out = out
        self.started = time.monotonic()
        self.dbt_models = 0

    def _print(self, text: str) -> None:
        elapsed = time.monotonic() - self.started
        print(
            f"[{self.done:>{len(str(self.total))}}/{self.total}] {elapsed:6.1f}s  {text}",
            file=self.out,
            flush=True,
        )

    def __call__(self, entry) -> None:
        event = entry.dagster_event
        if event is None:
            # messages the steps log at INFO: rows landed, models fitted, files written
            if entry.level >= 20 and entry.user_message and entry.step_key:
                self._print(f"  {entry.user_message.splitlines()[0][:160]}")
            return
        kind = event.event_type
        if kind == dg.DagsterEventType.STEP_START:
            self._print(f"{event.step_key} ...")
        elif kind in (
            dg.DagsterEventType.STEP_SUCCESS,
            dg.DagsterEventType.STEP_FAILURE,
            dg.DagsterEventType.STEP_SKIPPED,
        ):
            self.done += 1
            verb = {"STEP_SUCCESS": "done", "STEP_FAILURE": "FAILED", "STEP_SKIPPED": "skipped"}[kind.value]
            self._print(f"{event.step_key} {verb}")
        elif kind == dg.DagsterEventType.STEP_UP_FOR_RETRY:
            self._print(f"{event.step_key} will be retried: {event.message or ''}")
        elif kind == dg.DagsterEventType.ASSET_MATERIALIZATION and event.step_key == "dbt_models":
            self.dbt_models += 1
            if self.dbt_models % 10 == 0:
                self._print(
                    f"  dbt: {self.dbt_models} models built (last {event.asset_key.to_user_string()})"
                )


# --- `salesalign run`: the main job in-process --------------------------------------------------

def run_pipeline(settings: Settings) -> int:
    """Materialise the main job in this process for the latest partition; 0 on success."""
    from salesalign.transform.dbt import ensure_manifest

    ensure_manifest()

    from orchestration.definitions import build_definitions
    from orchestration.operations import MAIN_JOB, free_abandoned_slots, latest_partition, run_lock

    quiet_third_party()
    defs = build_definitions(settings)
    started = time.monotonic()
    job = defs.resolve_job_def(MAIN_JOB)
    run_id = str(uuid.uuid4())
    partition = latest_partition()  # extraction and the incremental models are daily: the last complete day
    dagster_home = settings.dagster_home
    with run_lock(dagster_home, run_id) as lock_tags, run_instance(settings) as instance:
        _report_freed(free_abandoned_slots(instance))
        instance.add_event_listener(run_id, RunProgress(len(job.graph.node_dict)))
        print(f"salesalign run {run_id} (partition {partition}): {len(job.graph.node_dict)} steps; waits its "
              f"turn if another run is writing {settings.warehouse_path}", flush=True)
        with _reaping_abandoned_runs(dagster_home):
            result = job.execute_in_process(
                instance=instance, run_id=run_id, run_config=QUIET_LOGGERS, partition_key=partition,
                raise_on_error=False, tags=lock_tags,
            )
    elapsed = time.monotonic() - started
    _print_summary(settings, result, elapsed)
    if not result.success:
        failures = [_root_cause(e.step_failure_data.error) for e in result.all_events if e.is_step_failure]
        code = storage_errno(settings.home, failures)
        if code is not None:
            print(storage_message(settings.home, code), file=sys.stderr)
    return 0 if result.success else 1


@contextmanager
def run_instance(settings: Settings) -> Iterator[dg.DagsterInstance]:
    """The Dagster instance in `settings.dagster_home`, set up first if needed with the warehouse pool
    limit (runs take turns on the warehouse)."""
    from orchestration.operations import ensure_instance

    ensure_instance(settings.dagster_home)
    with dg.DagsterInstance.from_config(str(settings.dagster_home)) as instance:
        yield instance


def _report_freed(run_ids: list[str]) -> None:
    for run_id in run_ids:
        print(f"released the warehouse slot of run {run_id}, which is no longer running", flush=True)


@contextmanager
def _reaping_abandoned_runs(dagster_home: Path, every_seconds: float = 5.0):
    """While the run executes, release every few seconds the slots of runs whose process died.

    A run waiting for the warehouse behind an overlapping `salesalign run` that gets killed would
    otherwise wait for ever (the start of a run only releases slots abandoned before it started).
    """
    import dagster as dg

    from orchestration.operations import free_abandoned_slots

    stop = threading.Event()

    def _reap() -> None:
        with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
            while not stop.wait(every_seconds):
                try:
                    stale_runs = free_abandoned_slots(instance)
                except Exception as exc:  # noqa: BLE001 (a housekeeping hiccup must not end the run)
                    print(f"could not check for abandoned runs: {exc}", file=sys.stderr, flush=True)
                    continue
                _report_freed(stale_runs)

    reaper = threading.Thread(target=_reap, name="salesalign-reaper", daemon=True)
    reaper.start()
    try:
        yield
    finally:
        stop.set()
        reaper.join(timeout=30)


def _print_summary(settings, result, elapsed: float) -> None:
    import dagster as dg

    print()
    print(f"salesalign run {result.run_id}: {'SUCCESS' if result.success else 'FAILED'} in {elapsed:.1f} s")
    checks_passed = 0
    for event in result.all_events:
        if event.is_step_failure:
            cause = _root_cause(event.step_failure_data.error)
            print(f"  failed step {event.step_key}: {cause}", file=sys.stderr)
        elif event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.event_specific_data
            if evaluation.passed:
                checks_passed += 1
                continue
            description = evaluation.description or evaluation.metadata.get("message") or ""
            print(
                f"  check failed ({evaluation.severity.value.lower()}): "
                f"{evaluation.asset_key.to_user_string()}"
                f" / {evaluation.check_name}: {getattr(description, 'value', description)}",
                file=sys.stderr,
            )
    skipped = [e.step_key for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_SKIPPED]
    if skipped:
        print(f"  skipped because something upstream failed: {', '.join(skipped)}", file=sys.stderr)
    print(f"asset checks passed: {checks_passed}")
    tables = _warehouse_tables(settings.warehouse_path) if settings.warehouse_path.exists() else None
    if tables is not None:
        print(f"warehouse: {settings.warehouse_path}")
        for schema, name, rows in tables:
            print(f"  {schema}.{name}: {rows:,} rows")
    elif settings.warehouse_path.exists():
        print(f"warehouse: {settings.warehouse_path} (another run is writing it: table counts skipped)")
    for label, path in (
        ("alignment brief (HTML, for leaders)", settings.home / "reports" / "alignment-brief.html"),
        ("BI exports (Parquet + manifest)", settings.home / "exports" / "manifest.json"),
        ("BI serving snapshot (open read-only)", settings.home / "serving.duckdb"),
        ("docs (dbt docs, data docs, index)", settings.home / "docs" / "index.html"),
    ):
        if path.exists():
            print(f"{label}: {path}")
    if settings.source == "demo":
        print(f"demo drop and truth: {settings.demo_dir}")
    print(f"dagster runs (open with `make dev`): {settings.dagster_home}")


def _warehouse_tables(path: Path, wait_seconds: float = 30.0):
    """Row counts of every table; None if another run holds the file for writing the whole time."""
    import duckdb

    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            with duckdb.connect(str(path), read_only=True) as con:
                return con.execute(
                    "SELECT schema_name, table_name, estimated_size FROM duckdb_tables() "
                    "WHERE NOT starts_with(table_name, '_') ORDER BY 1, 2"
                ).fetchall()
        except duckdb.IOException:
            if time.monotonic() > deadline:
                return None
            time.sleep(1.0)


def _root_cause(error) -> str:
    """The user-facing message at the bottom of Dagster's wrapped error chain."""
    if error is None:
        return ""
    while error.cause is not None:
        error = error.cause
    return error.message.strip()


