"""The `salesalign` command: write the demo company, run the pipeline, check a mapping profile, prepare
dbt, write generated files."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from salesalign.processes import end_children
from salesalign.settings import DEFAULT_HOME, SOURCE_KINDS, Settings, variables
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


# The options of `salesalign run` -> the settings field each one sets over the environment's.
RUN_OPTIONS = {
    "home": "home", "source": "source", "path": "source_path", "profile": "profile",
    "scale": "demo_scale", "seed": "demo_seed", "currency": "reporting_currency",
    "strategy": "strategy_yml", "causal": "causal_yml",
}


def run_settings(args: argparse.Namespace) -> Settings:
    """The settings of `salesalign run`: the environment's, then the command's options."""
    options = {name: getattr(args, option) for option, name in RUN_OPTIONS.items()}
    return Settings.from_env().replace(**options)


def _cmd_run(args: argparse.Namespace) -> int:
    try:
        settings = run_settings(args)
    except ValueError as exc:
        print(f"salesalign run: {exc}", file=sys.stderr)
        return 2
    if settings.source == "files" and settings.source_path is None:
        print("salesalign run --source files needs --path DIR (or SALESALIGN_SOURCE_PATH)", file=sys.stderr)
        return 2
    if settings.profile and settings.source == "demo":
        print("salesalign run --profile applies to --source files, salesforce or hubspot", file=sys.stderr)
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


def _cmd_profile_check(args: argparse.Namespace) -> int:
    from salesalign.extract.check import check_profile, format_report

    report = check_profile(Path(args.path).resolve(), args.profile)
    print(format_report(report))
    return 0 if report.ok else 1


def _env_default(name: str) -> str:
    """Help text naming where the default of the option that sets field `name` comes from."""
    default = f"./{DEFAULT_HOME}" if name == "home" else getattr(Settings, name, None)
    return f"(default: ${variables()[name]}" + (f", else {default})" if default is not None else ")")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="salesalign", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="write the demo company as a file drop (plus truth.json)")
    demo.add_argument("--scale", default="default", help="preset: tiny, small, default or large")
    demo.add_argument("--seed", type=int, default=42)
    demo.add_argument("--out", required=True, help="folder to write the drop into")
    demo.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    demo.set_defaults(func=_cmd_demo)

    run = sub.add_parser(
        "run", help="materialise every asset in-process; exit non-zero on failure",
        description="Materialise every asset in-process for the latest daily partition. Each option "
        "overrides its environment variable (all are listed in the README).",
    )
    run.add_argument(
        "--source", choices=SOURCE_KINDS, default=None,
        help=f"demo, files, or a CRM API: salesforce, hubspot; see docs/sources.md {_env_default('source')}",
    )
    run.add_argument("--path", help=f"the file drop folder for --source files {_env_default('source_path')}")
    run.add_argument(
        "--profile",
        help="mapping profile for a foreign export: salesforce, hubspot, maven or a YAML file; see "
        f"docs/sources.md {_env_default('profile')}",
    )
    run.add_argument("--scale", default=None, help=f"demo preset: tiny, small, default or large "
                     f"{_env_default('demo_scale')}")
    run.add_argument("--seed", type=int, default=None, help=f"demo seed {_env_default('demo_seed')}")
    run.add_argument("--home", default=None, help=f"where the run writes everything {_env_default('home')}")
    run.add_argument(
        "--currency", default=None,
        help="reporting currency (ISO 4217 code, e.g. EUR) of the marts, the exports and the brief "
        f"{_env_default('reporting_currency')}",
    )
    run.add_argument(
        "--strategy", default=None,
        help="the declared strategy (strategy.yml) of this source; the demo's by default for --source "
        "demo, none for other sources (strategy alignment then says so) (default: $SALESALIGN_STRATEGY_YML)",
    )
    run.add_argument(
        "--causal", default=None,
        help="the causal assumptions (causal.yml) of this source; the demo's by default for --source demo, "
        "none for other sources (practice effects then say so) (default: $SALESALIGN_CAUSAL_YML)",
    )
    run.set_defaults(func=_cmd_run)

    profile = sub.add_parser("profile", help="work with mapping profiles (see docs/sources.md)")
    profile_sub = profile.add_subparsers(dest="profile_command", required=True)
    check = profile_sub.add_parser(
        "check", help="dry-run a profile on an export: counts, unused columns, assumptions, errors",
        description="Map every table of the profile on the export in memory (nothing is written) and "
        "print per table the rows read, filtered and mapped, the source columns the profile does not use, "
        "its assumptions and its errors. Exit 0 when the profile maps the export, 1 otherwise.",
    )
    check.add_argument("--path", required=True, help="the export folder")
    check.add_argument("--profile", required=True, help="salesforce, hubspot, maven or a profile YAML file")
    check.set_defaults(func=_cmd_profile_check)

    prepare = sub.add_parser("prepare", help="parse the dbt project into target/manifest.json")
    prepare.set_defaults(func=_cmd_prepare)

    gen = sub.add_parser(
        "generate", help="write every file derived from a declaration (GX suites, dbt sources and macros, "
        "docs pages; salesalign/generate.py lists the generators)",
    )
    gen.add_argument("--check", action="store_true", help="only list stale files; exit 1 if any")
    gen.set_defaults(func=_cmd_generate)

    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
