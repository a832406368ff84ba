"""A blocked run leaves the marts exactly as they were; the marts' dbt tests pass on clean data."""

from __future__ import annotations

import dagster as dg
import duckdb
import pytest

from orchestration.extract import assets as extract_assets
from orchestration.extract import raw_asset_key
from orchestration.operations import latest_partition
from orchestration.quality import CHECK_NAME, raw_checks
from orchestration.resources import SourceResource, WarehouseResource
from orchestration.transform import assets as dbt_assets
from orchestration.transform import dbt_resource

MART_KEY = dg.AssetKey(["marts", "fct_deal_margin"])


def _run(home, drop) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [*extract_assets, *raw_checks, *dbt_assets],
        resources={
            "source": SourceResource(kind="files", path=str(drop)),
            "warehouse": WarehouseResource(home=str(home)),
            "dbt": dbt_resource(),
        },
        partition_key=latest_partition(),  # extraction and incremental models are daily (`salesalign run`)
        raise_on_error=False,
    )


def _marts(home) -> dict[str, list[tuple]]:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        tables = [
            r[0]
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'marts' ORDER BY 1"
            ).fetchall()
        ]
        return {t: con.execute(f"SELECT * FROM marts.{t} ORDER BY ALL").fetchall() for t in tables}


@pytest.mark.slow
def test_blocked_run_leaves_marts_untouched(small_drop, copy_of, tmp_path, monkeypatch):
    home = tmp_path / "home"
    first = _run(home, small_drop)
    assert first.success
    # The mart's invariants are its dbt tests, surfaced as its asset checks; no GX check on marts.
    mart_checks = {e.check_name: e for e in first.get_asset_check_evaluations() if e.asset_key == MART_KEY}
    assert CHECK_NAME not in mart_checks
    expected = {"fct_deal_margin_has_every_closed_deal_once", "assert_deal_margin_waterfall_adds_up"}
    assert expected <= set(mart_checks)
    assert all(e.passed for e in mart_checks.values()), [n for n, e in mart_checks.items() if not e.passed]
    before = _marts(home)
    assert before["fct_deal_margin"]

    # A later drop re-delivers opportunities with three duplicated ids: a blocking failure.
    drop = copy_of(small_drop, "broken")
    src = drop / ".opportunities.parquet"
    (drop / "opportunities.parquet").rename(src)
    duckdb.execute(
        f"COPY (SELECT * REPLACE (updated_at + INTERVAL 1 DAY AS updated_at) FROM read_parquet('{src}') "
        f"UNION ALL (SELECT * FROM read_parquet('{src}') ORDER BY opportunity_id LIMIT 3)) "
        f"TO '{drop / 'opportunities.parquet'}' (FORMAT parquet)"
    )
    src.unlink()
    second = _run(home, drop)
    assert not second.success
    [raw_check] = [
        e
        for e in second.get_asset_check_evaluations()
        if e.asset_key == raw_asset_key("opportunities") and e.check_name == CHECK_NAME
    ]
    assert not raw_check.passed
    assert "expect_column_values_to_be_between(_key_occurrences_in_batch)" in raw_check.description
    materialized = {e.asset_key for e in second.get_asset_materialization_events()}
    assert MART_KEY not in materialized, "dbt must not run after a blocking failure"
    assert _marts(home) == before  # the published marts are exactly as they were
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(DISTINCT _load_id) FROM raw.opportunities").fetchone()[0] == 2
