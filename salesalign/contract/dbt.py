"""The dbt files derived from the raw contract (written by `make generate`):

- one `__sources.yml` per domain (`crm`, `finance`): the raw tables as dbt sources, with column
  descriptions and types, `not_null` on the contract's NOT NULL columns, the Dagster asset key of
  the landing asset and the freshness dbt expects;
- `macros/generated/contract.sql`: the raw table list and the vocabularies as macros, so the SQL
  and the tests read them from the contract (`raw_tables()`, `practice_types()`, ...);
- the practice columns of `models/marts/fct_deal_margin.yml` (one block per practice), between
  markers in the hand-written file.
"""

from __future__ import annotations

import json
import re

from salesalign.contract import tables as decl
from salesalign.contract.spec import Column, Table

GENERATED = "Generated from salesalign/contract by `make generate`; do not edit by hand."
SOURCES = "dbt_project/models/staging/{domain}/__sources.yml"
MACROS = "dbt_project/macros/generated/contract.sql"
DEAL_MARGIN = "dbt_project/models/marts/fct_deal_margin.yml"
PRACTICES_BEGIN = "  # >>> practice columns: generated from salesalign/contract by `make generate`"
PRACTICES_END = "  # <<< practice columns"


def _q(text: str) -> str:
    """A double-quoted YAML scalar (JSON strings are valid YAML)."""
    return json.dumps(text, ensure_ascii=False)


def _column(c: Column, *, test: bool) -> list[str]:
    lines = [
        f"          - name: {c.name}",
        f"            description: {_q(('PII. ' if c.pii else '') + c.description)}",
        f"            data_type: {c.type.lower()}",
    ]
    if test and not c.nullable:
        lines += ["            data_tests:", "              - not_null"]
    return lines


def _table(t: Table) -> list[str]:
    description = f"{t.description} Primary key: {', '.join(t.primary_key)}."
    lines = [
        f"      - name: {t.name}",
        f"        description: {_q(description)}",
        "        meta:",
        "          dagster:",
        f'            asset_key: ["raw", "{t.name}"]',
        "        columns:",
    ]
    for c in t.columns:
        lines += _column(c, test=True)
    for c in decl.LOAD_METADATA:
        lines += _column(c, test=False)
    return lines


def sources_yaml(domain: str) -> str:
    """The dbt source of one domain's raw tables."""
    description = (
        f"{decl.DOMAINS[domain]} tables of the raw contract (salesalign/contract), landed append-only by the "
        "extract assets: the same record can appear in several loads."
    )
    lines = [
        f"# {GENERATED}",
        "version: 2",
        "",
        "sources:",
        f"  - name: {domain}",
        f"    description: {_q(description)}",
        "    schema: raw",
        "    config:",
        "      loaded_at_field: _loaded_at",
        "      freshness:",
        f"        warn_after: {{count: {decl.FRESHNESS_WARN_DAYS}, period: day}}",
        f"        error_after: {{count: {decl.FRESHNESS_ERROR_DAYS}, period: day}}",
        "    tables:",
    ]
    for t in decl.TABLES:
        if t.domain == domain:
            lines += _table(t)
    return "\n".join(lines) + "\n"


def _macro(name: str, doc: str, value) -> list[str]:
    return [
        f"{{#- {doc} -#}}",
        f"{{% macro {name}() -%}}",
        f"    {{{{ return({value!r}) }}}}",
        "{%- endmacro %}",
        "",
    ]


def macros_sql() -> str:
    """The contract's table list and vocabularies as dbt macros."""
    raw_tables = {d: [t.name for t in decl.TABLES if t.domain == d] for d in decl.DOMAINS}
    lines = [f"{{#- {GENERATED} -#}}", ""]
    lines += _macro("raw_tables", "The raw contract tables, by dbt source.", raw_tables)
    lines += _macro("practice_types", "The activity types that are sales practices.",
                    list(decl.PRACTICE_ACTIVITY_TYPES))
    lines += _macro("activity_types", "Every activity type of the contract (routine and practices).",
                    list(decl.ACTIVITY_TYPES))
    lines += _macro("stages", "The opportunity stages, in pipeline order.", list(decl.STAGES))
    lines += _macro("open_stages", "The stages of an open opportunity.", list(decl.OPEN_STAGES))
    lines += _macro("lead_sources", "Where a lead can come from.", list(decl.LEAD_SOURCES))
    return "\n".join(lines).rstrip("\n") + "\n"


def _practice_columns() -> list[str]:
    lines = [PRACTICES_BEGIN]
    for p in decl.PRACTICE_ACTIVITY_TYPES:
        what = p.replace("_", " ")
        for name, type_, text in (
            (f"has_{p}", "boolean", f"At least one {what} activity started before the close date"),
            (f"{p}_count", "bigint", f"Number of {what} activities started before the close date"),
            (f"{p}_hours", "double", f"Hours of {what} activities started before the close date"),
        ):
            lines += [
                f"  - name: {name}",
                f"    data_type: {type_}",
                f"    description: {text}; null when the source delivered no activities.",
                "    data_tests:",
                "    - not_null:",
                "        config:",
                '          where: "has_activity_data"',
            ]
    return lines + [PRACTICES_END]


def deal_margin_yaml(current: str) -> str:
    """fct_deal_margin.yml with its practice columns block regenerated (the rest is hand-written)."""
    block = re.compile(rf"^{re.escape(PRACTICES_BEGIN)}\n.*?^{re.escape(PRACTICES_END)}\n", re.S | re.M)
    if not block.search(current):
        raise ValueError(f"{DEAL_MARGIN}: the practice columns' markers are missing ({PRACTICES_BEGIN!r})")
    return block.sub(lambda _: "\n".join(_practice_columns()) + "\n", current, count=1)


def files() -> dict[str, str]:
    """Every dbt file derived from the contract: repository-relative path -> text."""
    from salesalign.settings import REPO

    out = {SOURCES.format(domain=d): sources_yaml(d) for d in decl.DOMAINS}
    out[MACROS] = macros_sql()
    out[DEAL_MARGIN] = deal_margin_yaml((REPO / DEAL_MARGIN).read_text(encoding="utf-8"))
    return out
