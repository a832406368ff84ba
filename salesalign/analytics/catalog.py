"""The files derived from the analytics registry (written by `make generate`):

- `docs/analytics-tables.md`: every table and column, with each analysis' explanation;
- `docs/analytics-preconditions.md`: what each analysis needs from the data, the thresholds and why;
- `dbt_project/models/analytics/__sources.yml`: `analytics.*` as the dbt source `analytics` (columns,
  types, descriptions and the Dagster asset key of each table, so dagster-dbt maps the source onto
  the Python assets instead of inventing external ones);
- `dbt_project/models/exposures.yml`: who reads what, so the dbt docs lineage runs from the marts
  through every analysis to the alignment brief and the BI exports.
"""

from __future__ import annotations

import json

from salesalign.analytics.registry import (
    ANALYSES,
    CLOSED_DEALS,
    OVERVIEW,
    SCHEMA,
    TABLES,
    Analysis,
    Table,
    writer,
)
from salesalign.settings import REPO

PAGE = "docs/analytics-tables.md"
PRECONDITIONS_PAGE = "docs/analytics-preconditions.md"
SOURCES_DIR = "dbt_project/models/analytics"
SOURCES = f"{SOURCES_DIR}/__sources.yml"
EXPOSURES = "dbt_project/models/exposures.yml"
MARTS_DIR = REPO / "dbt_project" / "models" / "marts"
GENERATED = "Generated from salesalign/analytics/registry.py by `make generate`; do not edit by hand."
ANALYTICS_OWNER = ("salesalign analytics", "analytics@salesalign.example")
DATA_OWNER = ("salesalign data engineering", "data@salesalign.example")


def files() -> dict[str, str]:
    """Every derived file, by repository-relative path."""
    return {
        PAGE: page(),
        PRECONDITIONS_PAGE: preconditions_page(),
        SOURCES: sources_yml(),
        EXPOSURES: exposures_yml(),
    }


# ---------------------------------------------------------------------------------------- the page
def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _table_section(t: Table) -> list[str]:
    lines = [f"### `{SCHEMA}.{t.name}`", "", t.description, ""]
    if t.guide:
        lines += [t.guide, ""]
    lines += ["| column | type | meaning |", "|---|---|---|"]
    lines += [f"| `{c.name}` | {c.type} | {_cell(c.description)} |" for c in t.columns]
    return [*lines, ""]


def _inputs(a: Analysis) -> str:
    read = [f"`marts.{m}`" for m in a.marts] + [f"`{SCHEMA}.{t}`" for t in a.reads]
    return (
        f"Analysis `{a.name}` (`{a.function}`) reads {', '.join(read)} and writes "
        f"{', '.join(f'`{SCHEMA}.{t.name}`' for t in a.tables)}."
    )


def page() -> str:
    """docs/analytics-tables.md."""
    lines = ["# Analytics tables in `analytics.*`: columns and how to read them", "", GENERATED, "", OVERVIEW]
    for a in ANALYSES:
        lines += ["---", "", f"## {a.title}", "", _inputs(a), ""]
        if a.guide:
            lines += [a.guide, ""]
        for t in a.tables:
            lines += _table_section(t)
    return "\n".join(lines).rstrip("\n") + "\n"


PRECONDITIONS_INTRO = """\
Before an analysis computes, the runner (`salesalign/analytics/runner.py`) checks the preconditions
its registry entry declares on the closed deals and reps of the marts (or, for an analysis whose
population is the opportunities, on every opportunity, open ones too). A table whose preconditions the
data does not meet holds status rows instead of numbers:

    not estimable: <what the data shows, with figures> (needs <the requirement>: <why>)

(every unmet precondition, joined by `; `), never `ok` and never a crash. Without the marts every
table says `not estimable: marts not available: ...`. An analysis that raises an error writes
`failed: <exception type>: <message>` in every table and its traceback in the run's log; its Dagster
asset still succeeds, so the other analyses and the publish stage run on what succeeded, and the
brief's coverage section lists which analyses ran and why the others could not.

The models also survive data that is estimable but awkward: strata of the deal mix in which every deal
was won or every deal lost are left out of the win models and a singular step is solved with a small
ridge penalty; the `notes` column of `rep_performance` and `rep_variance_summary` says so.
"""


def preconditions_page() -> str:
    """docs/analytics-preconditions.md."""
    from salesalign.analytics.preconditions import THRESHOLDS

    lines = ["# What each analysis needs from the data", "", GENERATED, "", PRECONDITIONS_INTRO]
    lines += ["## Thresholds", "", "| threshold | value | why |", "|---|---|---|"]
    lines += [f"| `{name}` | {t.value:g} | {_cell(t.why)} |" for name, t in THRESHOLDS.items()]
    lines.append("")
    for a in ANALYSES:
        checked = (
            "" if a.population == CLOSED_DEALS else f" Its preconditions are checked on the {a.population}."
        )
        lines += [f"## {a.title}", "", f"Analysis `{a.name}`.{checked}", ""]
        if not a.preconditions:
            lines += ["No preconditions beyond the marts (it follows the tables it reads).", ""]
            continue
        lines += ["| needs | gates |", "|---|---|"]
        for p in a.preconditions:
            gates = ", ".join(f"`{SCHEMA}.{t}`" for t in (p.tables or [t.name for t in a.tables]))
            lines.append(f"| {_cell(p.requirement)} | {gates} |")
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


# ---------------------------------------------------------------------------------------- dbt
def _q(text: str) -> str:
    """A double-quoted YAML scalar (JSON strings are valid YAML)."""
    return json.dumps(text, ensure_ascii=False)


def sources_yml() -> str:
    """The dbt source `analytics`: every registered table with its columns."""
    lines = [
        f"# {GENERATED}",
        "version: 2",
        "",
        "sources:",
        f"  - name: {SCHEMA}",
        "    description: "
        + _q(
            "Tables the Python analyses write after the marts (Dagster assets analytics/<table>, declared "
            "in salesalign/analytics/registry.py). No dbt model reads them: the exposures show who does."
        ),
        f"    schema: {SCHEMA}",
        "    tables:",
    ]
    for t in TABLES.values():
        lines += [
            f"      - name: {t.name}",
            f"        description: {_q(f'{t.description} Written by the analysis {writer(t.name).name}.')}",
            "        meta:",
            "          dagster:",
            f"            asset_key: {json.dumps(list(t.key))}",
            "        columns:",
        ]
        for c in t.columns:
            lines += [
                f"          - name: {c.name}",
                f"            description: {_q(c.description)}",
                f"            data_type: {c.type.lower()}",
            ]
    return "\n".join(lines) + "\n"


def _exposure(
    name: str, label: str, type_: str, description: str, depends_on: list[str], owner: tuple[str, str]
) -> list[str]:
    return [
        f"  - name: {name}",
        f"    label: {_q(label)}",
        f"    type: {type_}",
        "    maturity: medium",
        f"    description: {_q(description)}",
        "    depends_on:",
        *(f"      - {d}" for d in depends_on),
        "    owner:",
        f"      name: {owner[0]}",
        f"      email: {owner[1]}",
    ]


def _source(table: str) -> str:
    if table not in TABLES:
        raise ValueError(f"{SCHEMA}.{table} is read downstream but not declared in the registry")
    return f"source('{SCHEMA}', '{table}')"


def _published(schema: str) -> list[str]:
    """What the BI exports publish from one schema, as dbt references."""
    if schema == "marts":
        return [f"ref('{p.stem}')" for p in sorted(MARTS_DIR.glob("*.sql"))]
    if schema == SCHEMA:
        return [_source(t) for t in TABLES]
    raise ValueError(f"the BI exports publish schema {schema!r}, whose dbt lineage is not known here")


def exposures_yml() -> str:
    """Exposures: each analysis (marts and upstream tables in), the brief and the BI exports."""
    from salesalign.publish.brief import TABLES as BRIEF_TABLES
    from salesalign.publish.exports import PUBLISHED_SCHEMAS

    lines = [f"# {GENERATED}", "version: 2", "", "exposures:"]
    for a in ANALYSES:
        writes = ", ".join(f"{SCHEMA}.{t.name}" for t in a.tables)
        lines += _exposure(
            f"analysis_{a.name}",
            a.title,
            "ml",
            f"{a.description} Writes {writes} (Dagster multi-asset {a.name}).",
            [f"ref('{m}')" for m in a.marts] + [_source(t) for t in a.reads],
            ANALYTICS_OWNER,
        )
        lines.append("")
    lines += _exposure(
        "bi_exports",
        "Parquet exports for BI tools",
        "dashboard",
        "Stable Parquet and CSV copies of every marts.* and analytics.* table and the read-only serving "
        "snapshot, for Metabase, Superset, Evidence, Power BI and Excel, which read them while the "
        "pipeline writes the warehouse.",
        [d for schema in PUBLISHED_SCHEMAS for d in _published(schema)],
        DATA_OWNER,
    )
    lines.append("")
    lines += _exposure(
        "alignment_brief",
        "Strategy alignment brief (HTML)",
        "analysis",
        "The self-contained HTML brief for sales and strategy leaders: practice effects with intervals, "
        "the ICP and its validation, returns by segment and practice, rep performance, the strategy "
        "alignment gap and the effort reallocations.",
        [_source(t) for t in BRIEF_TABLES],
        ANALYTICS_OWNER,
    )
    return "\n".join(lines) + "\n"
