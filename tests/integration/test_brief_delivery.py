"""The brief says what the source delivered: per contract table the rows landed and quarantined or
"not delivered", the source's name, and every assumption its mapping profile declares."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import duckdb

from orchestration.extract import assets as extract_assets
from orchestration.operations import latest_partition
from orchestration.resources import SourceResource, WarehouseResource
from salesalign import contract
from salesalign.extract import profiles
from salesalign.extract.landing import SOURCES
from salesalign.publish.brief import write_brief
from salesalign.publish.delivery import read_delivery

FLAT = Path(__file__).resolve().parents[1] / "data" / "flat_export"


def test_the_brief_lists_what_a_flat_export_delivered_and_assumed(tmp_path):
    home = tmp_path / "home"
    source = SourceResource(
        kind="files", path=str(FLAT), profile=str(FLAT / "profile.yml"), staging_dir=str(tmp_path / "staged")
    )
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            extract_assets,
            resources={"source": source, "warehouse": WarehouseResource(home=str(home))},
            partition_key=latest_partition(),
            instance=instance,
        )
    assert result.success
    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        logged = con.execute(f"select source, description from {SOURCES}").fetchall()
        delivery = read_delivery(con)
        brief = write_brief(con, home, "delivery-test")
    # one entry per time the source was made ready, with what the source said about itself
    profile = profiles.load_profile(str(FLAT / "profile.yml"))
    assert len(logged) == 1 and json.loads(logged[0][1])["profile"] == profile.name
    expected = profile.assumptions()
    assert expected and delivery.assumptions == expected
    rows = {t.table: t.rows for t in delivery.tables}
    assert [t.name for t in contract.TABLES] == list(rows)
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        for table, n in rows.items():
            assert con.execute(f"select count(*) from raw.{table}").fetchone()[0] == n, table
    assert rows["opportunities"] > 0 and rows["activities"] == 0 and rows["invoices"] == 0
    html = brief.path.read_text()
    assert 'id="delivered"' in html and f"Source <code>{logged[0][0]}</code>" in html
    delivered = sum(1 for n in rows.values() if n)
    assert f"{delivered} of {len(rows)} tables of the raw contract were delivered" in html
    assert "<td>crm.activities</td><td>not delivered</td>" in html
    assert f"<td>crm.opportunities</td><td>{rows['opportunities']:,}</td>" in html
    for field, why in expected.items():
        assert f"<li><code>{field}</code>: {why}</li>" in html.replace("&#34;", '"').replace("&#39;", "'")


def test_a_demo_run_without_a_source_log_still_lists_the_tables(small_marts_home):
    """A warehouse landed without the extract stage (no `raw._sources`): the tables are listed, no source
    name or assumption is invented."""
    with duckdb.connect(str(small_marts_home / "warehouse.duckdb"), read_only=True) as con:
        delivery = read_delivery(con)
    assert delivery.source is None and delivery.assumptions == {}
    assert delivery.missing == [] and all(t.rows > 0 for t in delivery.tables)
