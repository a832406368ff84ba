"""The `salesalign` command: generate the demo company, run the pipeline, prepare dbt, print the contract."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
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


def _cmd_run(args: argparse.Namespace) -> int:
    if args.source == "files" and not args.path:
        print("salesalign run --source files needs --path DIR", file=sys.stderr)
        return 2
    if args.profile and args.source in (None, "demo"):
        print("salesalign run --profile applies to --source files, salesforce or hubspot", file=sys.stderr)
        return 2
    _set_env(args)
    from orchestration.transform.project import ensure_manifest

    ensure_manifest()

    import uuid

    import dagster as dg

    from orchestration.automation import free_abandoned_slots, latest_partition
    from orchestration.definitions import MAIN_JOB, defs
    from orchestration.progress import QUIET_LOGGERS, RunProgress
    from orchestration.settings import Settings

    settings = Settings.from_env()
    started = time.monotonic()
    job = defs.resolve_job_def(MAIN_JOB)
    run_id = str(uuid.uuid4())
    partition = latest_partition()  # dbt is daily-partitioned: a run works on the last complete day
    with dg.DagsterInstance.get() as instance:
        for stale in free_abandoned_slots(instance):
            print(f"released the warehouse slot of run {stale}, which is no longer running")
        instance.add_event_listener(run_id, RunProgress(len(job.graph.node_dict)))
        print(f"salesalign run {run_id} (partition {partition}): {len(job.graph.node_dict)} steps; waits its "
              f"turn if another run is writing {settings.warehouse_path}")
        result = job.execute_in_process(
            instance=instance, run_id=run_id, run_config=QUIET_LOGGERS, partition_key=partition,
            raise_on_error=False,
        )
    elapsed = time.monotonic() - started
    _print_summary(settings, result, elapsed)
    return 0 if result.success else 1


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
