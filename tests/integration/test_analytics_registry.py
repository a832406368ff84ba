"""The analytics registry is the one declaration of every analytics table: each table is declared
once, each analysis reads only what exists upstream of it, every table lands with exactly its declared
columns and types, and the dbt source, the exposures and the Dagster assets all carry the same tables.
"""

from __future__ import annotations

import dataclasses
import json
from functools import partial

import dagster as dg
import duckdb
import pandas as pd
import pytest
from fixtures.warehouse import assert_analytics_match_the_registry, query

from orchestration import analytics
from orchestration.transform import SalesalignTranslator
from salesalign.analytics import registry
from salesalign.analytics.runner import AnalysisInputs, run_analysis
from salesalign.analytics.warehouse import write_table
from salesalign.publish.brief import TABLES as BRIEF_TABLES
from salesalign.settings import REPO


def _two_tables(inputs: AnalysisInputs) -> dict[str, pd.DataFrame]:
    """An analysis function that returns a table its registry entry does not declare."""
    return {"rep_ramp": pd.DataFrame(), "not_declared": pd.DataFrame()}


def _connect(home):
    return partial(duckdb.connect, str(home / "warehouse.duckdb"))


def test_no_table_is_declared_twice():
    declared = [t.name for a in registry.ANALYSES for t in a.tables]
    assert len(declared) == len(set(declared)) == len(registry.TABLES) == 18
    assert len({a.name for a in registry.ANALYSES}) == len(registry.ANALYSES)
    twice = (*registry.ANALYSES, dataclasses.replace(registry.analysis("rep_ramp"), name="again"))
    with pytest.raises(ValueError, match="analytics.rep_ramp is declared twice"):
        registry._index(twice)
    for table in registry.TABLES.values():
        assert len(set(table.column_names)) == len(table.columns), table.name
        assert {c.type for c in table.columns} <= set(registry.SQL_TYPES), table.name
        assert all(c.description for c in table.columns) and table.description, table.name


def test_every_analysis_reads_what_exists_upstream_of_it(dbt_manifest):
    manifest = json.loads(dbt_manifest.read_text())
    marts = {n["name"] for n in manifest["nodes"].values() if n["resource_type"] == "model"
             and n["schema"] == "marts"}
    written: set[str] = set()
    for a in registry.ANALYSES:  # in dependency order: an analysis reads only what ran before it
        assert set(a.marts) <= marts, a.name
        assert set(a.reads) <= written, (a.name, set(a.reads) - written)
        module, _, name = a.function.partition(":")
        assert callable(getattr(__import__(module, fromlist=[name]), name)), a.function
        for t in a.tables:
            empty = pd.DataFrame(columns=t.column_names)
            assert set(t.preview) <= set(t.column_names) and (t.tally is None or t.tally in empty), t.name
            if t.preview_where:
                empty.query(t.preview_where)  # the preview's filter names declared columns
        written |= {t.name for t in a.tables}
    assert set(BRIEF_TABLES) <= written  # the brief reads registered tables only


def test_every_table_is_written_with_its_declared_columns_and_types(tmp_path):
    """Every analysis on a warehouse without marts: status rows, and exactly the declared schema."""
    for a in registry.ANALYSES:
        run = run_analysis(a, _connect(tmp_path), REPO / "causal.yml", REPO / "strategy.yml")
        assert run.missing and run.deals == 0 and run.period == (None, None), a.name
    assert_analytics_match_the_registry(tmp_path)
    status = query(tmp_path, "select status from analytics.rep_performance").status
    assert status.str.contains("marts.fct_deal_margin does not exist").all()


def test_reads_the_registry_does_not_declare_are_refused(tmp_path):
    inputs = AnalysisInputs(registry.analysis("rep_ramp"), _connect(tmp_path), "causal.yml", "strategy.yml")
    with pytest.raises(LookupError, match="reads analytics.rep_performance without declaring it"):
        inputs.table("rep_performance")
    no_marts = dataclasses.replace(registry.analysis("rep_ramp"), marts=())
    inputs = AnalysisInputs(no_marts, _connect(tmp_path), "causal.yml", "strategy.yml")
    with pytest.raises(LookupError, match="reads marts"):
        _ = inputs.deals


def test_results_that_differ_from_the_declaration_are_refused(tmp_path):
    wrong = dataclasses.replace(registry.analysis("rep_ramp"), function=f"{__name__}:_two_tables")
    with pytest.raises(ValueError, match="returned tables"):
        wrong.compute(AnalysisInputs(wrong, _connect(tmp_path), "causal.yml", "strategy.yml"))
    table = registry.table("roi_by_channel")
    frame = pd.DataFrame([{"status": "ok"}], columns=table.column_names)
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        with pytest.raises(ValueError, match=r"not declared: \['extra'\]"):
            write_table(con, table, frame.assign(extra=1))
        with pytest.raises(ValueError, match=r"declared but missing: \['status'\]"):
            write_table(con, table, frame.drop(columns="status"))
        bad = pd.concat([frame, frame.assign(n_deals="many")], ignore_index=True)
        with pytest.raises(ValueError, match=r"roi_by_channel, column n_deals \(BIGINT\): row 1 holds 'many"):
            write_table(con, table, bad)
        assert write_table(con, table, frame) == 1


def test_dbt_source_exposures_and_assets_carry_the_registry(dbt_manifest, monkeypatch, tmp_path):
    manifest = json.loads(dbt_manifest.read_text())
    sources = {s["name"]: s for s in manifest["sources"].values() if s["source_name"] == registry.SCHEMA}
    assert set(sources) == set(registry.TABLES)
    translator = SalesalignTranslator()
    for name, table in registry.TABLES.items():
        columns = sources[name]["columns"]
        assert [(c, columns[c]["data_type"]) for c in columns] == [
            (c.name, c.type.lower()) for c in table.columns
        ], name
        # dagster-dbt keys the source as the Python asset, not as an external asset of its own
        assert translator.get_asset_key(sources[name]) == dg.AssetKey(list(table.key))

    def depends_on(exposure: str) -> set[str]:
        return {n.split(".", 2)[2] for n in manifest["exposures"][f"exposure.salesalign.{exposure}"]
                ["depends_on"]["nodes"]}

    for a in registry.ANALYSES:
        assert depends_on(f"analysis_{a.name}") == {*a.marts, *(f"analytics.{t}" for t in a.reads)}
    assert depends_on("alignment_brief") == {f"analytics.{t}" for t in BRIEF_TABLES}
    assert {f"analytics.{t}" for t in registry.TABLES} <= depends_on("bi_exports")

    monkeypatch.setenv("SALESALIGN_HOME", str(tmp_path))
    from orchestration.definitions import build_definitions
    from salesalign.settings import Settings

    graph = build_definitions(Settings.from_env()).resolve_asset_graph()
    keys = {k for k in graph.get_all_asset_keys() if k.path[0] == registry.SCHEMA}
    assert keys == {dg.AssetKey(list(t.key)) for t in registry.TABLES.values()}
    assert all(graph.get(k).is_materializable for k in keys)
    for name, asset in analytics.ASSETS.items():
        a = registry.analysis(name)
        assert set(asset.keys) == {dg.AssetKey(list(t.key)) for t in a.tables}
        for key in asset.keys:
            assert graph.get(key).group_name == "analytics"
            assert graph.get(key).parent_keys == {
                *(dg.AssetKey(["marts", m]) for m in a.marts),
                *(dg.AssetKey(["analytics", t]) for t in a.reads),
            }


def test_assets_report_rows_period_missing_inputs_and_previews(tmp_path):
    """Every analysis through Dagster on a warehouse without marts: the metadata the UI shows."""
    from fixtures.warehouse import analytics_resources

    result = dg.materialize(analytics.assets, resources=analytics_resources(tmp_path))
    assert result.success
    meta = {
        m.asset_key.path[1]: m.metadata
        for e in result.get_asset_materialization_events()
        for m in [e.event_specific_data.materialization]
    }
    assert set(meta) == set(registry.TABLES)
    for name, table in registry.TABLES.items():
        md = meta[name]
        rows = query(tmp_path, f"select count(*) as n from analytics.{name}").n[0]
        assert md["dagster/row_count"].value == rows and md["period"].value == "None .. None", name
        assert any("marts" in m for m in md["missing_inputs"].value), name
        assert ("preview" in md) == bool(table.preview), name
    # the engine's preview shows the headline rows only: AIPW ATE, one per practice x outcome
    effects_preview = meta["practice_effects"]["preview"].value
    assert effects_preview.count("\n") - 1 == 4 * 3 and "marts not available" not in effects_preview
    assert meta["roi_by_practice"]["verdict_counts"].value == {"not estimable": 4}
