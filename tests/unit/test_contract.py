"""The raw contract as the one declaration: what is derived from it agrees with it, the practices
causal.yml reasons about are the contract's, and the quarantine ledger has one declaration too."""

from __future__ import annotations

import ast
import dataclasses
import json
import re
import uuid

import duckdb
import pytest
import yaml

from salesalign import contract
from salesalign.contract import dbt, gx
from salesalign.contract.spec import WARNS, at_least
from salesalign.quality import quarantine
from salesalign.settings import REPO


def test_causal_yml_reasons_about_exactly_the_contracts_practices():
    causal = yaml.safe_load((REPO / "causal.yml").read_text())
    assert tuple(causal["practices"]) == contract.PRACTICE_ACTIVITY_TYPES
    for practice, spec in causal["practices"].items():
        assert spec["treatment"] == f"d.has_{practice}", practice  # the column dbt derives per practice


def test_the_dbt_vocabulary_macros_hold_the_contracts_lists():
    macros = dbt.macros_sql()
    found = dict(re.findall(r"macro (\w+)\(\) -%}\n    \{\{ return\((.*)\) \}\}", macros))
    assert ast.literal_eval(found["practice_types"]) == list(contract.PRACTICE_ACTIVITY_TYPES)
    assert ast.literal_eval(found["activity_types"]) == list(contract.ACTIVITY_TYPES)
    assert ast.literal_eval(found["raw_tables"]) == {
        "crm": [t.name for t in contract.TABLES if t.domain == "crm"],
        "finance": [t.name for t in contract.TABLES if t.domain == "finance"],
    }


def test_every_contract_table_gets_its_suites_from_the_declaration():
    files = gx.files()
    assert files == gx.files()  # ids are uuid5 of names: regeneration is stable
    for t in contract.TABLES:
        rows = json.loads(files[f"expectations/expectations/raw/{t.name}/rows.json"])
        declared = {(c.column, c.reason) for c in t.row_checks()}
        generated = {(e["kwargs"].get("column") or e["kwargs"].get("column_A"), e["meta"]["reason"])
                     for e in rows["expectations"]}
        assert declared <= generated, t.name
        assert all(uuid.UUID(e["id"]).version == 5 for e in rows["expectations"])
        schema = json.loads(files[f"expectations/expectations/raw/{t.name}/schema.json"])
        [ordered] = [
            e for e in schema["expectations"] if e["type"] == "expect_table_columns_to_match_ordered_list"
        ]
        assert ordered["kwargs"]["column_list"] == t.column_names + [c.name for c in contract.LOAD_METADATA]


def test_a_rule_on_a_column_nobody_computes_is_refused_with_the_table_and_column():
    t = contract.table("products")
    broken = dataclasses.replace(t, rules=(at_least(0, WARNS, "nonsense").on("_not_a_fact"),))
    with pytest.raises(ValueError, match=r"products: a check reads _not_a_fact"):
        gx._check_columns(broken)


def test_the_quarantine_ledger_has_one_declaration():
    names = [c.name for c in quarantine.LEDGER_COLUMNS]
    row_fields = [f.name for f in dataclasses.fields(quarantine.QuarantinedRow)]
    assert ["table_name", *row_fields, "quarantined_at"] == names  # what a check writes, plus the ledger's
    with duckdb.connect() as con:
        quarantine.ensure_quarantine_table(con)
        table = con.execute(
            "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
            "WHERE table_schema = ? ORDER BY ordinal_position",
            [quarantine.SCHEMA],
        ).fetchall()
    assert table == [(c.name, c.type, "YES" if c.nullable else "NO") for c in quarantine.LEDGER_COLUMNS]
    files = quarantine.generated_files()
    for statement in quarantine.ledger_ddl():  # dbt's on-run-start runs the same DDL
        assert statement in files[quarantine.DBT_MACRO]
    source = yaml.safe_load(files[quarantine.DBT_SOURCE])["sources"][0]["tables"][0]
    assert [(c["name"], c["data_type"]) for c in source["columns"]] == [
        (c.name, c.type.lower()) for c in quarantine.LEDGER_COLUMNS
    ]
