"""The GX suites in expectations/: one set per raw table (the marts' invariants are dbt tests), configured
in the files, and passed by clean demo data."""

from __future__ import annotations

import json
import shutil

import dagster as dg
import duckdb
import pytest

from orchestration.extract import landing_assets, raw_asset_key
from orchestration.operations import latest_partition
from orchestration.quality import CHECK_NAME
from orchestration.quality import raw_checks as checks
from orchestration.resources import SourceResource, WarehouseResource
from salesalign import contract
from salesalign.quality import frames
from salesalign.quality.gx_context import EXPECTATIONS_DIR
from salesalign.quality.quarantine import TABLE as QUARANTINE
from salesalign.quality.validate import validate_raw_batch

SUITES = sorted((EXPECTATIONS_DIR / "expectations").rglob("*.json"))
NATIVE_SEVERITY = {"blocking": "critical", "warning": "warning"}


def _suite(path):
    return json.loads(path.read_text())


def test_every_raw_table_and_only_raw_tables_have_suites_validation_definitions_and_checkpoints():
    names = {_suite(p)["name"] for p in SUITES}
    expected = {f"raw.{t}.{kind}" for t in contract.TABLE_NAMES for kind in ("schema", "rows", "batch")}
    assert names == expected | {"raw.invoices.reconciliation"}
    for folder in ("validation_definitions", "checkpoints"):
        assert {p.stem for p in (EXPECTATIONS_DIR / folder).glob("*.json")} == names, folder
    for name in names:
        checkpoint = json.loads((EXPECTATIONS_DIR / "checkpoints" / f"{name}.json").read_text())
        assert [v["name"] for v in checkpoint["validation_definitions"]] == [name]
    expectations = sum(len(_suite(p)["expectations"]) for p in SUITES)
    assert expectations >= 80


@pytest.mark.parametrize("path", SUITES, ids=[_suite(p)["name"] for p in SUITES])
def test_severity_and_quarantine_live_in_the_suite_files(path):
    suite = _suite(path)
    layer, table, kind = suite["name"].split(".")
    for e in suite["expectations"]:
        meta = e["meta"]
        assert meta["severity"] in ("blocking", "warning"), e
        assert meta["on_failure"] in ("fail_batch", "quarantine"), e
        assert meta["reason"], e
        assert e["severity"] == NATIVE_SEVERITY[meta["severity"]], e  # GX's own field agrees
        if meta["on_failure"] == "quarantine":
            assert (layer, kind) == ("raw", "rows"), "only row-level expectations on raw can quarantine rows"
        if (layer, kind) == ("raw", "rows"):  # every column a row expectation reads exists or is computed
            t = contract.table(table)
            known = set(t.column_names) | set(frames.derived_columns(table))
            assert set(frames.referenced_columns(e["kwargs"])) <= known, e


def test_checks_are_registered_on_every_landing_asset(monkeypatch, tmp_path):
    monkeypatch.setenv("SALESALIGN_HOME", str(tmp_path))
    import importlib

    import orchestration.definitions as module

    defs = importlib.reload(module).defs
    graph = defs.resolve_asset_graph()
    for t in contract.TABLE_NAMES:
        key = dg.AssetCheckKey(raw_asset_key(t), CHECK_NAME)
        assert key in graph.asset_check_keys, key
        assert graph.get_check_spec(key).blocking, key  # every raw suite holds a blocking expectation
    gx_checks = {k.asset_key.path[0] for k in graph.asset_check_keys if k.name == CHECK_NAME}
    assert gx_checks == {"raw"}  # the marts are checked by their dbt tests alone


def test_clean_small_demo_passes_every_suite(small_drop, tmp_path):
    home = tmp_path / "home"
    result = dg.materialize(
        [*landing_assets, *checks],
        resources={
            "source": SourceResource(kind="files", path=str(small_drop)),
            "warehouse": WarehouseResource(home=str(home)),
        },
        partition_key=latest_partition(),  # extraction is daily-partitioned
    )
    assert result.success
    evaluations = {e.asset_key.path[-1]: e for e in result.get_asset_check_evaluations()}
    assert set(evaluations) == set(contract.TABLE_NAMES)
    for table, e in evaluations.items():
        assert e.passed, e.description
        assert e.metadata["failed_expectations"].value == [], (table, e.description)
        assert e.metadata["rows_validated"].value > 0
        assert e.metadata["validation_seconds"].value > 0
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute(f"SELECT count(*) FROM {QUARANTINE}").fetchone()[0] == 0
    assert (home / "docs" / "quality" / "index.html").exists()  # GX Data Docs site


def test_chunks_see_the_whole_batch_and_revalidation_is_idempotent(small_home, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(small_home / "warehouse.duckdb", home / "warehouse.duckdb")
    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        [load_id] = [
            r[0]
            for r in con.execute("SELECT load_id FROM raw._loads WHERE table_name = 'activities'").fetchall()
        ]
        # Duplicate the first activity at the end of the batch (another chunk) and break two durations.
        con.execute(
            "INSERT INTO raw.activities SELECT * REPLACE (100000000 + _source_row AS _source_row) "
            "FROM raw.activities WHERE _source_row = 1"
        )
        con.execute("UPDATE raw.activities SET duration_minutes = -5 WHERE _source_row IN (10, 50000)")
        reports = [validate_raw_batch(con, "activities", [load_id], home, chunk_rows=8192) for _ in range(2)]
        quarantined = con.execute(
            f"SELECT source_row FROM {QUARANTINE} WHERE table_name = 'activities' ORDER BY 1"
        ).fetchall()
    for report in reports:
        assert report.chunks > 1
        names = {o.name: o for o in report.failures}
        assert names["expect_column_values_to_be_between(_key_occurrences_in_batch)"].unexpected_count == 2
        assert names["expect_column_values_to_be_between(duration_minutes)"].quarantined == 2
        assert not report.passed
    assert quarantined == [(10,), (50000,)]  # replaced, not duplicated, on re-validation
