"""The `salesalign` command: generate the demo company, run the pipeline, prepare dbt, print the contract."""

from __future__ import annotations

import argparse
import errno
import json
import os
import signal
import sys
import threading
import time
from contextlib import contextmanager, suppress
from pathlib import Path


def _cmd_demo(args: argparse.Namespace) -> int:
    from orchestration import demo

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summary = demo.generate(args.scale, args.seed, out, fmt=args.format)
    print(json.dumps(summary, indent=2, default=str))
    print(f"demo company written to {out.resolve()} (truth in {out.resolve() / 'truth.json'})")
    return 0


def _cmd_prepare(_: argparse.Namespace) -> int:
    from orchestration.transform.project import prepare_manifest

    print(f"dbt manifest ready: {prepare_manifest()}")
    return 0


def _cmd_contract(_: argparse.Namespace) -> int:
    from orchestration import contract

    print(contract.to_markdown())
    return 0


def _set_env(args: argparse.Namespace) -> None:
    """`run` options become the environment the code location reads (one way to configure)."""
    home = Path(args.home or os.environ.get("SALESALIGN_HOME", "data")).resolve()
    os.environ["SALESALIGN_HOME"] = str(home)
    os.environ.setdefault("DAGSTER_HOME", str(home / "dagster"))
    for folder in dict.fromkeys((home, Path(os.environ["DAGSTER_HOME"]))):
        _probe_writable(folder)  # fail here, clearly, rather than halfway through the run
    from orchestration.automation import ensure_instance

    ensure_instance(Path(os.environ["DAGSTER_HOME"]))  # the warehouse pool limit: runs take turns
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    if args.source:
        os.environ["SALESALIGN_SOURCE"] = args.source
    if args.path:
        os.environ["SALESALIGN_SOURCE_PATH"] = str(Path(args.path).resolve())
    if args.profile:
        shipped = not Path(args.profile).suffix
        os.environ["SALESALIGN_PROFILE"] = args.profile if shipped else str(Path(args.profile).resolve())
    if args.scale:
        os.environ["SALESALIGN_DEMO_SCALE"] = args.scale
    if args.seed is not None:
        os.environ["SALESALIGN_DEMO_SEED"] = str(args.seed)


# --- storage that cannot be written: a read-only SALESALIGN_HOME, a full disk --------------------------
# Every layer reports these differently (an OSError, DuckDB's "Could not write file ...: No space left on
# device", SQLite's "disk I/O error" from the Dagster instance); `salesalign run` says it once, plainly.
STORAGE_ERRNOS = {
    errno.ENOSPC: "no space left on the device (the disk is full)",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EFBIG: "a file would exceed the file size limit",
    errno.EROFS: "it is on a read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
}
STORAGE_MARKERS = {os.strerror(code): code for code in STORAGE_ERRNOS} | {
    "database or disk is full": errno.ENOSPC,  # SQLite (the Dagster instance)
    "attempt to write a readonly database": errno.EROFS,
    "disk I/O error": None,  # SQLite's word for a failed write: the file system decides which
}


class StorageError(Exception):
    """SALESALIGN_HOME (or DAGSTER_HOME) cannot be written; `str()` is the message for the user."""


def _probe_writable(folder: Path) -> None:
    """Create, write, sync and remove a small file in `folder` (made if missing)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".salesalign-write-probe.{os.getpid()}"
        try:
            with probe.open("wb") as f:
                f.write(b"\0" * 65536)
                f.flush()
                os.fsync(f.fileno())
        finally:
            probe.unlink(missing_ok=True)
    except OSError as exc:
        if exc.errno in STORAGE_ERRNOS:
            raise StorageError(_storage_message(folder, exc.errno, before_start=True)) from exc
        raise


def _storage_errno(folder: Path, texts: list[str]) -> int | None:
    """The storage problem behind error messages `texts`, if any (looking at the folder's file system
    when the message alone does not say, as with SQLite's "disk I/O error")."""
    for text in texts:
        for marker, code in STORAGE_MARKERS.items():
            if marker in text:
                return code if code is not None else _file_system_errno(folder)
    return None


def _file_system_errno(folder: Path) -> int:
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    stat = os.statvfs(existing)
    if stat.f_flag & os.ST_RDONLY:
        return errno.EROFS
    if stat.f_bavail * stat.f_frsize < 16 << 20:  # under 16 MiB left
        return errno.ENOSPC
    return errno.EIO


def _storage_message(folder: Path, code: int, before_start: bool = False) -> str:
    reason = STORAGE_ERRNOS.get(code, os.strerror(code))
    if before_start:
        outcome = "Nothing was run and nothing was changed."
    else:
        outcome = ("The run stopped; the warehouse keeps everything committed so far, and the exports, "
                   "serving.duckdb and the brief keep the last complete run.")
    if code in (errno.EROFS, errno.EACCES, errno.EPERM):
        fix = "Point --home (or SALESALIGN_HOME) at a folder this user can write."
    else:
        fix = "Free some space (or use a --home on a bigger disk) and run again: it resumes safely."
    return f"salesalign run: cannot write to {folder}: {reason}. {outcome} {fix}"


def _error_texts(exc: BaseException) -> list[str]:
    texts, seen = [], set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in STORAGE_ERRNOS:
            texts.append(os.strerror(exc.errno))
        texts.append(str(exc))
        exc = exc.__cause__ or exc.__context__
    return texts


def _cmd_run(args: argparse.Namespace) -> int:
    if args.source == "files" and not args.path:
        print("salesalign run --source files needs --path DIR", file=sys.stderr)
        return 2
    if args.profile and args.source in (None, "demo"):
        print("salesalign run --profile applies to --source files, salesforce or hubspot", file=sys.stderr)
        return 2
    try:
        return _run(args)
    except StorageError as exc:
        print(exc, file=sys.stderr)
        return 1
    except Exception as exc:
        home = Path(os.environ.get("SALESALIGN_HOME", "data")).resolve()
        code = _storage_errno(home, _error_texts(exc))
        if code is None:
            raise
        print(f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}", file=sys.stderr)
        print(_storage_message(home, code), file=sys.stderr)
        return 1
    finally:
        _end_children()


def _end_children(grace_seconds: float = 10.0) -> None:
    """End the processes this one started that are still running (Linux: found in /proc).

    When the run stops on an exception (the Dagster instance's disk filled up mid-step), dagster-dbt
    leaves its `dbt build` subprocess running: it would keep writing the warehouse after we exit and
    hold its lock against the next run.
    """
    if not Path("/proc/self/stat").exists():
        return
    for sig, wait in ((signal.SIGTERM, grace_seconds), (signal.SIGKILL, 1.0)):
        pids = [pid for pid in _descendants() if not _is_resource_tracker(pid)]
        for pid in pids:
            with suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while pids and time.monotonic() < deadline:
            time.sleep(0.1)
            for pid in pids:
                with suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)  # reap those that were our own children
            pids = [pid for pid in pids if (_proc_stat(pid) or ("Z",))[0] != "Z"]
        if not pids:
            return


def _is_resource_tracker(pid: int) -> bool:
    """Python's multiprocessing resource tracker ignores SIGTERM and exits by itself once we do: ending
    it would cost the whole grace period on every run (it was 10 s of every run's teardown)."""
    try:
        return b"multiprocessing.resource_tracker" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process, from /proc; None if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], int(fields[1])


def _descendants() -> list[int]:
    stats = {int(p.name): _proc_stat(int(p.name)) for p in Path("/proc").glob("[0-9]*")}
    parents = {pid: stat[1] for pid, stat in stats.items() if stat}
    found, frontier = [], {os.getpid()}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier}
        found += sorted(frontier)
    return found


def _run(args: argparse.Namespace) -> int:
    _set_env(args)
    from orchestration.transform.project import ensure_manifest

    ensure_manifest()

    import uuid

    import dagster as dg

    from orchestration.automation import free_abandoned_slots, latest_partition, run_lock
    from orchestration.definitions import MAIN_JOB, defs
    from orchestration.progress import QUIET_LOGGERS, RunProgress
    from orchestration.settings import Settings

    settings = Settings.from_env()
    started = time.monotonic()
    job = defs.resolve_job_def(MAIN_JOB)
    run_id = str(uuid.uuid4())
    partition = latest_partition()  # extraction and dbt are daily-partitioned: the last complete day
    dagster_home = Path(os.environ["DAGSTER_HOME"])
    with run_lock(dagster_home, run_id) as lock_tags, dg.DagsterInstance.get() as instance:
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
        code = _storage_errno(settings.home, failures)
        if code is not None:
            print(_storage_message(settings.home, code), file=sys.stderr)
    return 0 if result.success else 1


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

    from orchestration.automation import free_abandoned_slots

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
    print(f"dagster runs (open with `make dev`): {os.environ['DAGSTER_HOME']}")


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


def build_parser() -> argparse.ArgumentParser:
    from orchestration.settings import SOURCE_KINDS

    parser = argparse.ArgumentParser(prog="salesalign", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="write the demo company as a file drop (plus truth.json)")
    demo.add_argument("--scale", default="default", help="preset: tiny, small, default or large")
    demo.add_argument("--seed", type=int, default=42)
    demo.add_argument("--out", required=True, help="folder to write the drop into")
    demo.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    demo.set_defaults(func=_cmd_demo)

    run = sub.add_parser("run", help="materialise every asset in-process; exit non-zero on failure")
    run.add_argument(
        "--source", choices=SOURCE_KINDS, default=None,
        help="demo (default), files, or a CRM API: salesforce, hubspot (docs/sources.md)",
    )
    run.add_argument("--path", help="the file drop folder for --source files")
    run.add_argument(
        "--profile",
        help="mapping profile for a foreign export: salesforce, hubspot, maven or a YAML file "
        "(docs/sources.md)",
    )
    run.add_argument("--scale", default=None, help="demo preset (default: default)")
    run.add_argument("--seed", type=int, default=None, help="demo seed (default: 42)")
    run.add_argument("--home", default=None, help="SALESALIGN_HOME (default: $SALESALIGN_HOME or ./data)")
    run.set_defaults(func=_cmd_run)

    prepare = sub.add_parser("prepare", help="parse the dbt project into target/manifest.json")
    prepare.set_defaults(func=_cmd_prepare)

    contract = sub.add_parser("contract", help="print the raw contract as Markdown")
    contract.set_defaults(func=_cmd_contract)

    from orchestration.bench import add_parser as add_bench_parser  # `salesalign bench` (issue 9)

    add_bench_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
