"""The Great Expectations artefacts derived from the raw contract: one suite per raw table and frame
kind, its validation definition, checkpoint and data asset (`expectations/`, written by `make generate`).

Every id is a uuid5 of the artefact's name, so regenerating changes nothing unless the contract did.
What a suite holds, per frame kind (frames: `salesalign/quality/frames.py`):
- `schema`: the raw table has exactly the contract columns and the load metadata, in order, with
  their types;
- `rows`: keys and NOT NULL columns present, the key unique in the batch, a key landed before only
  as a newer version, references that exist, currencies with FX rates, then the contract's column
  checks and table rules;
- `batch`: `BATCH_CHECKS` (not empty, volume against the previous loads);
- `reconciliation`: the table's `reconciliation` checks (invoices).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from importlib.metadata import version

from salesalign.contract import tables as decl
from salesalign.contract.spec import Check, Table, between, is_true, one_of

GENERATED_NOTE = "Generated from salesalign/contract by `make generate`; do not edit by hand."
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "salesalign:expectations")
LAYER = "raw"
FOLDERS = ("expectations/expectations", "expectations/validation_definitions", "expectations/checkpoints")
NATIVE_SEVERITY = {"blocking": "critical", "warning": "warning"}  # GX's own field, shown in Data Docs


def _id(*parts: str) -> str:
    return str(uuid.uuid5(NAMESPACE, "/".join(parts)))


def suite_kinds(t: Table) -> list[str]:
    """The frame kinds validated for a table (a reconciliation only where the table declares one)."""
    from salesalign.quality.gx_context import RAW_KINDS

    return [k for k in RAW_KINDS if k != "reconciliation" or t.reconciliation]


def structural_checks(t: Table) -> list[Check]:
    """The `rows` checks every table gets from its structure, with the policies the declaration sets."""
    key = ", ".join(t.primary_key)

    def not_null(column: str, reason: str) -> Check:
        return Check("expect_column_values_to_not_be_null", {}, decl.REQUIRED, reason, column=column)

    checks = [not_null(c, f"{c} is part of the key and must not be null") for c in t.primary_key]
    checks += [
        not_null(c.name, f"{c.name} is required by the raw contract and must not be null")
        for c in t.columns
        if not c.nullable and c.name not in t.primary_key
    ]
    newer = f" with a newer {t.updated_at}" if t.updated_at else ""
    checks += [
        between(1, 1, decl.UNIQUE_IN_BATCH, f"the key ({key}) must be unique within the batch")
        .on("_key_occurrences_in_batch"),
        is_true(
            decl.REDELIVERED,
            f"a key ({key}) already landed may only come back{newer} (an identical or older version is a "
            "re-delivery: recorded, latest version wins downstream)",
        ).on("_is_new_key_or_version"),
    ]
    checks += [
        is_true(
            decl.orphan_policy(t.column(column)), f"{column} must reference an existing {ref}.{ref_column}"
        ).on(f"_{column}_exists")
        for column, (ref, ref_column) in t.foreign_keys.items()
    ]
    if "currency" in t.column_names and t.name != "fx_rates":
        checks.append(
            is_true(
                decl.NO_FX_RATE,
                "currency must have FX rates in raw.fx_rates (amounts cannot be converted otherwise)",
            ).on("_currency_has_fx_rate")
        )
    return checks


def schema_checks(t: Table) -> list[Check]:
    """The `schema` frame: one row whose columns are raw.<table>'s and whose values are their types."""
    columns = list(t.columns) + list(decl.LOAD_METADATA)
    return [
        Check(
            "expect_table_columns_to_match_ordered_list",
            {"column_list": [c.name for c in columns]},
            decl.SCHEMA,
            f"raw.{t.name} must have exactly the contract columns and the load metadata, in order",
        ),
        *(
            one_of((c.type,), decl.SCHEMA, f"raw.{t.name}.{c.name} must be {c.type}").on(c.name)
            for c in columns
        ),
    ]


def suite_checks(t: Table, kind: str) -> list[Check]:
    if kind == "schema":
        return schema_checks(t)
    if kind == "rows":
        return structural_checks(t) + t.row_checks()
    if kind == "batch":
        return [replace(c, reason=c.reason.replace("{table}", t.name)) for c in decl.BATCH_CHECKS]
    if kind == "reconciliation":
        return list(t.reconciliation)
    raise ValueError(f"no frame kind {kind!r}")


def _kwargs(check: Check) -> dict:
    if check.expectation.startswith("expect_table_"):
        kwargs = dict(check.arguments)
    elif check.expectation.startswith("expect_column_pair_"):
        kwargs = {"column_A": check.column, **check.arguments}
    else:
        kwargs = {"column": check.column, **check.arguments}
    if check.when:
        column, value = check.when
        kwargs["row_condition"] = {
            "column": {"name": column}, "operator": "==", "parameter": value, "type": "comparison"
        }
    return kwargs


def _expectation(suite: str, check: Check) -> dict:
    kwargs = _kwargs(check)
    return {
        "id": _id("expectation", suite, check.expectation, json.dumps(kwargs, sort_keys=True)),
        "kwargs": kwargs,
        "meta": {
            "on_failure": check.policy.on_failure,
            "reason": check.reason,
            "severity": check.policy.severity,
        },
        "severity": NATIVE_SEVERITY[check.policy.severity],
        "type": check.expectation,
    }


def suite(t: Table, kind: str) -> dict:
    """The suite `raw.<table>.<kind>` as GX stores it."""
    name = f"{LAYER}.{t.name}.{kind}"
    expectations = [_expectation(name, c) for c in suite_checks(t, kind)]
    ids = [e["id"] for e in expectations]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{name}: two checks are the same expectation with the same arguments")
    return {
        "expectations": expectations,
        "id": _id("suite", name),
        "meta": {
            "frame": kind,
            "great_expectations_version": version("great_expectations"),
            "layer": LAYER,
            "table": t.name,
        },
        "name": name,
        "notes": GENERATED_NOTE,
    }


def _validation_definition(name: str) -> dict:
    from salesalign.quality.gx_context import BATCH_DEFINITION, DATASOURCE

    return {
        "data": {
            "asset": {"id": _id("asset", name), "name": name},
            "batch_definition": {"id": _id("batch_definition", name), "name": BATCH_DEFINITION},
            "datasource": {"id": _id("datasource", DATASOURCE), "name": DATASOURCE},
        },
        "id": _id("validation_definition", name),
        "name": name,
        "suite": {"id": _id("suite", name), "name": name},
    }


def _checkpoint(t: Table, kind: str, name: str) -> dict:
    from salesalign.quality.frames import ROW_ID

    result_format: dict = {"result_format": "SUMMARY"}
    if kind == "rows":  # the rows that fail are named by their landed row and key (quarantine, samples)
        index = list(dict.fromkeys([*ROW_ID, *t.primary_key]))
        result_format = {"result_format": "COMPLETE", "unexpected_index_column_names": index}
    return {
        "actions": [],
        "id": _id("checkpoint", name),
        "name": name,
        "result_format": result_format,
        "validation_definitions": [{"id": _id("validation_definition", name), "name": name}],
    }


def _check_columns(t: Table) -> None:
    """Every column a rows check reads is a contract column or a fact the quality frames compute."""
    from salesalign.quality.frames import derived_columns, referenced_columns

    known = set(t.column_names) | set(derived_columns(t.name))
    for check in structural_checks(t) + t.row_checks():
        unknown = set(referenced_columns(_kwargs(check))) - known
        if unknown:
            raise ValueError(
                f"salesalign/contract/tables.py: {t.name}: a check reads {', '.join(sorted(unknown))}, "
                f"which is neither a column of {t.name} nor a fact computed in salesalign/quality/frames.py"
            )


def _json(data: dict) -> str:
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


_CONTEXT_HEAD = f"""\
# {GENERATED_NOTE}
# The Great Expectations (GX Core 1.x) file context of the raw suites; see README.md beside it.
# ${{SALESALIGN_HOME}} is substituted at run time (salesalign/quality/gx_context.py).
config_version: 4.0
config_variables_file_path: uncommitted/config_variables.yml
plugins_directory: plugins/
stores:
  expectations_store:
    class_name: ExpectationsStore
    store_backend:
      class_name: TupleFilesystemStoreBackend
      base_directory: expectations/
  validation_results_store:
    class_name: ValidationResultsStore
    store_backend:
      class_name: TupleFilesystemStoreBackend
      base_directory: ${{SALESALIGN_HOME}}/quality/validations/
  checkpoint_store:
    class_name: CheckpointStore
    store_backend:
      class_name: TupleFilesystemStoreBackend
      suppress_store_backend_id: true
      base_directory: checkpoints/
  validation_definition_store:
    class_name: ValidationDefinitionStore
    store_backend:
      class_name: TupleFilesystemStoreBackend
      base_directory: validation_definitions/
expectations_store_name: expectations_store
validation_results_store_name: validation_results_store
checkpoint_store_name: checkpoint_store
data_docs_sites:
  quality_site:
    class_name: SiteBuilder
    show_how_to_buttons: false
    store_backend:
      class_name: TupleFilesystemStoreBackend
      base_directory: ${{SALESALIGN_HOME}}/docs/quality/
    site_index_builder:
      class_name: DefaultSiteIndexBuilder
"""


def _context_config(names: list[str]) -> str:
    from salesalign.quality.gx_context import BATCH_DEFINITION, DATASOURCE

    lines = [
        "fluent_datasources:",
        f"  {DATASOURCE}:",
        "    type: pandas",
        f"    id: {_id('datasource', DATASOURCE)}",
        "    assets:",
    ]
    for name in names:
        lines += [
            f"      {name}:",
            "        type: dataframe",
            f"        id: {_id('asset', name)}",
            "        batch_metadata: {}",
            "        batch_definitions:",
            f"          {BATCH_DEFINITION}:",
            f"            id: {_id('batch_definition', name)}",
            "            partitioner:",
        ]
    lines += [
        "progress_bars:",
        "  globally: false",
        "  metric_calculations: false",
        "analytics_enabled:",
        f"data_context_id: {_id('data_context')}",
    ]
    return _CONTEXT_HEAD + "\n".join(lines) + "\n"


def files() -> dict[str, str]:
    """Every GX file derived from the contract: repository-relative path -> text."""
    out: dict[str, str] = {}
    names: list[str] = []
    for t in decl.TABLES:
        _check_columns(t)
        for kind in suite_kinds(t):
            name = f"{LAYER}.{t.name}.{kind}"
            names.append(name)
            out[f"expectations/expectations/{LAYER}/{t.name}/{kind}.json"] = _json(suite(t, kind))
            out[f"expectations/validation_definitions/{name}.json"] = _json(_validation_definition(name))
            out[f"expectations/checkpoints/{name}.json"] = _json(_checkpoint(t, kind, name))
    # GX keeps the id of the expectations store beside the suites and writes one if it is missing.
    out["expectations/expectations/.ge_store_backend_id"] = f"store_backend_id = {_id('data_context')}\n"
    out["expectations/great_expectations.yml"] = _context_config(names)
    return out
