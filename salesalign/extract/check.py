"""`salesalign profile check`: a dry run of a mapping profile on an export, in memory.

Every table of the profile is mapped in an in-memory DuckDB (nothing is written: no warehouse, no
staging), and the report says per table how many rows were read, filtered out and mapped, which
source columns the profile does not use, what it assumes (defaults it applied and on how many rows,
static and derived tables, the `assumption` notes) and every error with its file and row or profile
line. The same per-table counts are logged when a profile source lands.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from salesalign.extract import profiles


@dataclass
class CheckReport:
    """The outcome of checking a profile on an export."""

    profile: str
    drop: str
    tables: dict[str, profiles.TableReport] = field(default_factory=dict)
    absent: dict[str, str] = field(default_factory=dict)  # table key -> the file the export lacks
    errors: list[str] = field(default_factory=list)
    assumptions: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def check_profile(drop: Path, profile_ref: str | Path) -> CheckReport:
    """Map every table of the profile on the export in `drop`, in memory, and report (never raises
    for a profile or data problem: those are the report's errors)."""
    report = CheckReport(str(profile_ref), str(drop))
    try:
        profile = profiles.load_profile(profile_ref)
    except profiles.ProfileError as exc:
        report.errors.append(str(exc))
        return report
    report.profile = f"{profile.name} ({profile.file})"
    if not drop.is_dir():
        report.errors.append(f"{drop}: the export folder does not exist or is not a folder")
        return report
    if why := profiles.missing_core(drop, profile):
        report.errors.append(why)
    with duckdb.connect() as con:
        cache: dict = {}
        for key, spec in profile.tables.items():
            try:
                mapped = profiles.map_table(con, drop, profile, key, cache)
            except (profiles.ProfileError, duckdb.Error) as exc:
                report.errors.append(str(exc) if isinstance(exc, profiles.ProfileError)
                                     else f"profile {profile.name}, table {key}: {exc}")
                continue
            if mapped is None:
                report.absent[key] = str(spec.input.file)
                continue
            report.tables[key] = mapped
            report.assumptions += _assumptions(key, spec, mapped, profile.as_of)
        for name, spec in profile.inputs.items():
            if not spec.static and not profiles.input_files(drop, spec):
                report.assumptions.append(
                    f"lookup input {name}: no file {spec.file!r} in the export, so the fields looked up "
                    "in it are NULL (or their default)"
                )
    report.assumptions += [f"{k}: {why}" for k, why in profile.assumptions().items()]
    return report


def _assumptions(
    key: str, spec: profiles.TableSpec, mapped: profiles.TableReport, as_of: str | None
) -> list[str]:
    out = []
    if spec.input.date_range:
        dr = spec.input.date_range
        out.append(
            f"static table {key}: one row per day {dr['start']} .. {dr['end']} ({mapped.mapped:,} rows)"
        )
    elif spec.input.rows is not None:
        out.append(f"static table {key}: {mapped.mapped:,} row(s) written in the profile")
    if spec.group_by:
        out.append(
            f"derived table {key}: one row per distinct {', '.join(spec.group_by)} of "
            f"{', '.join(Path(f).name for f in mapped.files) or 'the static rows'} "
            f"({mapped.kept:,} rows -> {mapped.mapped:,})"
        )
    fields = {f.name: f for f in spec.fields}
    for name, used in mapped.defaults.items():
        f = fields[name]
        of = mapped.mapped if f.kind == "lookup" else mapped.kept
        what = "lookup default" if f.kind == "lookup" else "default"
        value = f.default_sql_value
        if isinstance(value, str) and as_of:
            value = value.replace("{as_of}", as_of)
        out.append(f"{what} {key}.{name} = {value!r}: used on {used:,} of {of:,} rows")
    return out


def unused_columns(report: CheckReport) -> dict[str, list[str]]:
    """Input file(s) -> their columns that no table of the profile reads (in file column order)."""
    by_files: dict[tuple[str, ...], list[profiles.TableReport]] = {}
    for t in report.tables.values():
        if t.files:
            by_files.setdefault(t.files, []).append(t)
    out = {}
    for files, tables in by_files.items():
        cols = [c for c in tables[0].unused_columns if all(c in t.unused_columns for t in tables)]
        if cols:
            out[", ".join(Path(f).name for f in files)] = cols
    return out


def format_report(report: CheckReport) -> str:
    """The report as printed by `salesalign profile check`."""
    lines = [f"profile {report.profile} on {report.drop}", "tables:"]
    for key, t in report.tables.items():
        origin = {"static": "static", "derived": "derived"}.get(t.kind, "")
        files = ", ".join(Path(f).name for f in t.files)
        detail = "; ".join(x for x in (origin, files and f"from {files}") if x)
        line = f"  {profiles.count_line(key, profiles.counts(t))}" + (f" ({detail})" if detail else "")
        lines.append(line)
    for key, file in report.absent.items():
        lines.append(f"  {key}: not in the export (no file {file!r}): the table stays empty")
    if not report.tables and not report.absent:
        lines.append("  none mapped")
    unused = unused_columns(report)
    lines.append("source columns the profile does not use:" + ("" if unused else " none"))
    lines += [f"  {files}: {', '.join(cols)}" for files, cols in unused.items()]
    kept = [(k, t.attributes) for k, t in report.tables.items() if t.attributes]
    if kept:
        lines.append("custom attributes kept (raw.attributes):")
        lines += [f"  {k}: {', '.join(names)}" for k, names in kept]
    lines.append("assumptions:" + ("" if report.assumptions else " none"))
    lines += [f"  {a}" for a in report.assumptions]
    lines.append("errors:" + ("" if report.errors else " none"))
    lines += [f"  {e}" for e in report.errors]
    lines.append("the profile maps the export" if report.ok else "the profile does NOT map the export")
    return "\n".join(lines)
