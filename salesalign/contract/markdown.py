"""docs/raw-contract.md: the raw contract and its landing checks as Markdown (written by `make generate`)."""

from __future__ import annotations

from salesalign.contract import tables as decl
from salesalign.contract.spec import QUARANTINE, WARNING, Check, Policy

RECIPE = """\
## Adding a raw table

1. Declare it in `salesalign/contract/tables.py`: columns (type, null, meaning), primary key,
   references, the `updated_at` column, and its checks: column checks on the `Column`, rules on
   computed facts in `rules`, each with what a failure does (`BLOCKS`, `WARNS`, `QUARANTINES`) and
   its reason. A rule on a new fact that spans rows or tables also needs that fact's SQL in
   `salesalign/quality/frames.py`.
2. Have the sources deliver it: the demo company (`salesalign/demo/generator.py`) and, for foreign
   exports, the mapping profiles (`salesalign/extract/profiles/*.yml`).
3. `make generate` writes the rest: the GX suites, validation definitions, checkpoints and data
   assets in `expectations/`, the table's dbt source (`dbt_project/models/staging/<domain>/__sources.yml`),
   the raw table list `raw_tables()` in `dbt_project/macros/generated/contract.sql`, and this page.
4. Read it downstream through a new staging model `stg_<domain>__<table>.sql` + `.yml` (`landed(...)`).

## Adding a sales practice

1. Add its activity type to `PRACTICE_ACTIVITY_TYPES` in `salesalign/contract/tables.py`.
2. Declare its treatment, outcomes and confounders under `practices:` in `causal.yml` (the tests
   fail until causal.yml names exactly the contract's practices).
3. Plant its effect in the demo company (`PRACTICE_*` and `PROPENSITY` in `salesalign/demo/model.py`).
4. `make generate`: the activity vocabulary of the raw suite, `practice_types()` and `activity_types()`
   in `dbt_project/macros/generated/contract.sql` (the dbt models derive their `has_<practice>`,
   `<practice>_count` and `<practice>_hours` columns from it) and those columns' declarations in
   `dbt_project/models/marts/fct_deal_margin.yml`. Exports whose activity labels differ map them in
   their profile's `activity_type` map.
"""


def _number(value: float) -> str:
    return f"{value:g}"


def describe(check: Check) -> str:
    """A short text of what the check expects, e.g. `>= 0`, `in [0, 1)`, `one of a, b`."""
    a = check.arguments
    if check.expectation == "expect_column_values_to_be_between":
        low, high = a.get("min_value"), a.get("max_value")
        if low is not None and high is not None:
            text = (
                f"in {'(' if a.get('strict_min') else '['}{_number(low)}, "
                f"{_number(high)}{')' if a.get('strict_max') else ']'}"
            )
        elif low is not None:
            text = f"{'>' if a.get('strict_min') else '>='} {_number(low)}"
        else:
            text = f"{'<' if a.get('strict_max') else '<='} {_number(high)}"
        if a.get("mostly") is not None:
            text += f" (on {a['mostly']:.0%} of rows)"
    elif check.expectation == "expect_column_values_to_be_in_set":
        values = a["value_set"]
        text = "true" if values == [True] else "one of " + ", ".join(f"`{v}`" for v in values)
    elif check.expectation == "expect_column_values_to_match_regex":
        text = f"matches `{a['regex']}`"
    elif check.expectation == "expect_column_pair_values_a_to_be_greater_than_b":
        text = f">= `{a['column_B']}`"
    else:
        text = check.expectation
    if check.when:
        column, value = check.when
        text += f" where `{column}` is {str(value).lower()}"
    return text


def _policy(policy: Policy) -> str:
    if policy.on_failure == QUARANTINE:
        return "quarantines the rows"
    return "warns" if policy.severity == WARNING else "blocks the batch"


def contract_page() -> str:
    """The whole page."""
    empty, volume = decl.BATCH_CHECKS
    low, high = decl.VOLUME_RATIO_RANGE
    lines = [
        "# The raw contract",
        "",
        "Generated from `salesalign/contract/tables.py` by `make generate`; do not edit by hand.",
        "Types are DuckDB SQL types; money is `DECIMAL(18,2)` in the currency on the same row.",
        "Every landed row also carries the load metadata columns "
        + ", ".join(f"`{c.name}`" for c in decl.LOAD_METADATA)
        + ".",
        "",
        "Vocabularies: stages " + ", ".join(f"`{s}`" for s in decl.STAGES)
        + "; activity types " + ", ".join(f"`{a}`" for a in decl.ACTIVITY_TYPES)
        + f" (the last {len(decl.PRACTICE_ACTIVITY_TYPES)} are the sales practices); lead sources "
        + ", ".join(f"`{s}`" for s in decl.LEAD_SOURCES) + ".",
        "",
        "## Landing checks",
        "",
        "Great Expectations validates every landed batch with the suites in `expectations/`, generated",
        "from the contract. Every table gets these from its structure:",
        "",
        f"- `raw.<table>` has exactly the contract columns and the load metadata, in order, with their "
        f"types: {_policy(decl.SCHEMA)};",
        f"- keys and NOT NULL columns are present: {_policy(decl.REQUIRED)};",
        f"- the key is unique in the batch: {_policy(decl.UNIQUE_IN_BATCH)};",
        f"- a key landed before comes back only as a newer version: {_policy(decl.REDELIVERED)};",
        f"- references name rows that exist: a required reference {_policy(decl.QUARANTINES)}, an optional "
        f"one {_policy(decl.WARNS)};",
        f"- currencies have FX rates: {_policy(decl.NO_FX_RATE)};",
        f"- the batch is not empty ({_policy(empty.policy)}) and holds {_number(low)} to {_number(high)} "
        f"times the rows of the previous loads ({_policy(volume.policy)}).",
        "",
        "The checks each table declares are listed under it. `_`-columns are facts computed per row",
        "(`salesalign/quality/frames.py`); a date is in the future when it lies more than "
        f"{decl.FUTURE_TOLERANCE_HOURS} h after the load.",
        "Quarantined rows stay in raw, are listed in `raw_quarantine.quarantined_rows` and never reach",
        "staging.",
        "",
        RECIPE,
    ]
    for t in decl.TABLES:
        lines += [f"## `{t.name}` ({t.domain})", "", t.description, ""]
        lines.append("Primary key: " + ", ".join(f"`{k}`" for k in t.primary_key) + ".")
        if t.foreign_keys:
            refs = ", ".join(f"`{c}` -> `{rt}.{rc}`" for c, (rt, rc) in t.foreign_keys.items())
            lines.append(f"References: {refs}.")
        lines += ["", "| column | type | null | description |", "|---|---|---|---|"]
        for c in t.columns:
            flags = "PII. " if c.pii else ""
            null = "yes" if c.nullable else "no"
            lines.append(f"| `{c.name}` | {c.type} | {null} | {flags}{c.description} |")
        checks = t.row_checks() + list(t.reconciliation)
        if checks:
            lines += ["", "| checked | expects | on failure | reason |", "|---|---|---|---|"]
            for check in checks:
                lines.append(
                    f"| `{check.column}` | {describe(check)} | {_policy(check.policy)} | {check.reason} |"
                )
        lines.append("")
    return "\n".join(lines)
