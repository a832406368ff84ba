"""The `salesalign` command: generate the demo company, run the pipeline, prepare dbt, print the contract."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from salesalign.processes import end_children
from salesalign.settings import SOURCE_KINDS, Settings
from salesalign.storage import StorageError, error_texts, probe_writable, storage_errno, storage_message


def _cmd_demo(args: argparse.Namespace) -> int:
    from salesalign import demo

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summary = demo.generate(args.scale, args.seed, out, fmt=args.format)
    print(json.dumps(summary, indent=2, default=str))
    print(f"demo company written to {out.resolve()} (truth in {out.resolve() / 'truth.json'})")
    return 0


def _cmd_prepare(_: argparse.Namespace) -> int:
    from salesalign.transform.dbt import prepare_manifest

    print(f"dbt manifest ready: {prepare_manifest()}")
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    from salesalign import generate

    if args.check:
        drift = generate.stale()
        for line in drift:
            print(f"stale: {line}", file=sys.stderr)
        if drift:
            print("generated files are stale: run `make generate` and commit the result", file=sys.stderr)
        return 1 if drift else 0
    changed = generate.write()
    print("\n".join(f"wrote {line}" for line in changed) or "every generated file is current")
    return 0


def run_settings(args: argparse.Namespace) -> Settings:
    """The settings of `salesalign run`: the environment's, then the command's options."""
    return Settings.from_env().replace(
        home=args.home, source=args.source, source_path=args.path, profile=args.profile,
        demo_scale=args.scale, demo_seed=args.seed, reporting_currency=args.currency,
    )


def _cmd_run(args: argparse.Namespace) -> int:
    if args.source == "files" and not args.path:
        print("salesalign run --source files needs --path DIR", file=sys.stderr)
        return 2
    if args.profile and args.source in (None, "demo"):
        print("salesalign run --profile applies to --source files, salesforce or hubspot", file=sys.stderr)
        return 2
    try:
        settings = run_settings(args)
    except ValueError as exc:
        print(f"salesalign run: {exc}", file=sys.stderr)
        return 2
    try:
        for folder in dict.fromkeys((settings.home, settings.dagster_home)):
            probe_writable(folder)  # fail here, clearly, rather than halfway through the run
        from orchestration.run import run_pipeline  # the Dagster job: the one hand-over to the wiring

        return run_pipeline(settings)
    except StorageError as exc:
        print(exc, file=sys.stderr)
        return 1
    except Exception as exc:
        code = storage_errno(settings.home, error_texts(exc))
        if code is None:
            raise
        print(f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}", file=sys.stderr)
        print(storage_message(settings.home, code), file=sys.stderr)
        return 1
    finally:
        end_children()


def build_parser() -> argparse.ArgumentParser:
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
    run.add_argument(
        "--currency", default=None,
        help="reporting currency of the marts and the brief (default: $SALESALIGN_REPORTING_CURRENCY or USD)",
    )
    run.set_defaults(func=_cmd_run)

    prepare = sub.add_parser("prepare", help="parse the dbt project into target/manifest.json")
    prepare.set_defaults(func=_cmd_prepare)

    gen = sub.add_parser(
        "generate", help="write the files derived from the contract, causal.yml and the analytics registry"
    )
    gen.add_argument("--check", action="store_true", help="only list stale files; exit 1 if any")
    gen.set_defaults(func=_cmd_generate)

    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
