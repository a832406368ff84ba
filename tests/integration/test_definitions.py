"""The code location loads, with the assets, groups, checks and job the product promises."""

from __future__ import annotations

import dagster as dg

from salesalign import contract


def _defs(monkeypatch, tmp_path):
    monkeypatch.setenv("SALESALIGN_HOME", str(tmp_path))
    import importlib

    import orchestration.definitions as module

    return importlib.reload(module).defs


def test_definitions_load_with_every_stage(monkeypatch, tmp_path):
    defs = _defs(monkeypatch, tmp_path)
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert "extract/source_snapshot" in keys
    assert {f"raw/{t}" for t in contract.TABLE_NAMES} <= keys
    assert {"marts/fct_deal_margin", "marts/dim_accounts"} <= keys
    groups = {graph.get(k).group_name for k in graph.get_all_asset_keys()}
    assert groups == {"extract", "quality", "dbt_staging", "dbt_intermediate", "dbt_marts", "analytics",
                      "publish"}
    # dbt sources resolve to the landing assets and the quarantine ledger: staging reads raw through it
    stg = graph.get(dg.AssetKey(["staging", "stg_crm__opportunities"]))
    ledger = dg.AssetKey(["quality", "quarantined_rows"])
    assert {dg.AssetKey(["raw", "opportunities"]), ledger} <= stg.parent_keys
    parents = {k.to_user_string() for k in graph.get(ledger).parent_keys}
    assert parents == {f"raw/{t}" for t in contract.TABLE_NAMES}
    # dbt tests surface as asset checks.
    assert len(list(graph.asset_check_keys)) > 20
    # every dbt model, daily-partitioned (the incremental ones) or not, is in one step of the main job:
    # a run builds the project in one `dbt build`
    job = defs.resolve_job_def("salesalign_main")
    assert [name for name in job.graph.node_dict if name.startswith("dbt")] == ["dbt_models"]
    dbt_keys = {k for k in graph.get_all_asset_keys() if k.path[0] in ("staging", "intermediate", "marts")}
    assert defs.resolve_assets_def(dg.AssetKey(["marts", "fct_deal_margin"])).keys == dbt_keys
    assert {k.to_user_string() for k in dbt_keys if graph.get(k).partitions_def} == {
        "staging/stg_crm__activities", "staging/stg_crm__opportunity_stage_history",
        "marts/fct_opportunities", "marts/fct_deal_margin",
    }


def test_resources_follow_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SALESALIGN_SOURCE", "files")
    monkeypatch.setenv("SALESALIGN_SOURCE_PATH", str(tmp_path / "drop"))
    defs = _defs(monkeypatch, tmp_path)
    warehouse = defs.resources["warehouse"]
    assert warehouse.path == tmp_path / "warehouse.duckdb"
    assert defs.resources["source"].kind == "files"
    assert defs.resources["source"].path == str(tmp_path / "drop")
    job = defs.resolve_job_def("salesalign_main")
    assert job is not None
