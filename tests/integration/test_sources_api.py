"""CRM API sources against local servers on 127.0.0.1 that answer in Salesforce and HubSpot shapes.

The servers page small result sets, can change records between pages, and inject faults
(429 with Retry-After, 5xx, bad JSON, 401). Pages are mapped by the shipped profiles and landed.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from fixtures.fake_crm import CANARY, FakeCrm, api_client, hubspot_company, hubspot_deal

from salesalign.extract import api
from salesalign.extract.incremental import IncrementalSource
from salesalign.extract.landing import land_source
from salesalign.extract.profiles import load_profile
from salesalign.extract.watermarks import WatermarkStore

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


def sf_ts(minutes: int) -> str:
    return (T0 + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def _salesforce_accounts(crm: FakeCrm, n: int = 5) -> None:
    for i in range(n):
        crm.put(
            "Account",
            {
                "Id": f"001A{i:04d}",
                "Name": f"Account {i}",
                "Industry": "Technology",
                "NumberOfEmployees": 100 + i,
                "AnnualRevenue": 1e6 * (i + 1),
                "BillingCountry": "US",
                "CreatedDate": sf_ts(0),
                "SystemModstamp": sf_ts(i // 2),
            },
        )  # pairs share a timestamp


def _source(crm: FakeCrm, home: Path, extractor, profile: str) -> IncrementalSource:
    # `now` far after the records: every version is settled, except those the test stamps later
    return IncrementalSource(
        extractor,
        load_profile(profile),
        home / "staging_drops",
        WatermarkStore(home / "warehouse.duckdb"),
        f"{profile}:test",
        now=lambda: T0 + timedelta(days=1),
    )


def _land(home: Path, source) -> None:
    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        land_source(con, source, ("accounts", "opportunities", "contacts", "reps", "products"))


def _versions(home: Path, table: str, key: str) -> list[tuple]:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(f"SELECT {key}, updated_at FROM raw.{table} ORDER BY 1, 2").fetchall()


def test_salesforce_pages_resume_after_interruption_without_gaps_or_duplicates(crm, tmp_path):
    _salesforce_accounts(crm, 7)
    # page 3 fails for good (5xx beyond the retries): the extraction stops after two pages
    crm.faults = [(r"/query/.*-4$", 503, {}, b'{"message": "unavailable"}')] * 3
    source = _source(crm, tmp_path, api.SalesforceApi(api_client(crm, max_retries=2)), "salesforce")
    with pytest.raises(api.ApiError, match=r"HTTP 503 after 3 attempt\(s\)"):
        source.extract()
    assert WatermarkStore(tmp_path / "warehouse.duckdb").get(source.name, "Account").pages == 2

    # resumed: only what was not extracted yet, then landing of everything staged
    crm.faults = []
    resumed = _source(crm, tmp_path, api.SalesforceApi(api_client(crm)), "salesforce")
    assert resumed.extract()["Account"] == 3
    _land(tmp_path, resumed)
    ids = [r[0] for r in _versions(tmp_path, "accounts", "account_id")]
    assert ids == sorted(f"001A{i:04d}" for i in range(7))  # every record exactly once

    # a quiet run adds nothing; an updated record comes back once, as a new version
    assert _source(crm, tmp_path, api.SalesforceApi(api_client(crm)), "salesforce").extract()["Account"] == 0
    crm.records["Account"]["001A0001"].update(Name="Renamed", SystemModstamp=sf_ts(60))
    again = _source(crm, tmp_path, api.SalesforceApi(api_client(crm)), "salesforce")
    assert again.extract()["Account"] == 1
    _land(tmp_path, again)
    versions = _versions(tmp_path, "accounts", "account_id")
    assert len(versions) == 8 and len(set(versions)) == 8


def test_salesforce_record_updated_between_pages_is_neither_lost_nor_duplicated(crm, tmp_path):
    _salesforce_accounts(crm, 6)
    now = T0 + timedelta(days=1)

    def update_while_paging(page: int) -> None:
        if page == 1:  # after page 1 was served, records on page 1 and page 3 change "now"
            for rid in ("001A0000", "001A0005"):
                crm.records["Account"][rid]["SystemModstamp"] = now.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
                crm.records["Account"][rid]["Name"] = f"updated {rid}"

    crm.between_pages = update_while_paging
    # the extraction is interrupted right after page 2, then resumed
    crm.faults = [(r"/query/.*-4$", 500, {}, b"{}")] * 2
    first = _source(crm, tmp_path, api.SalesforceApi(api_client(crm, max_retries=1)), "salesforce")
    first.now = lambda: now
    with pytest.raises(api.ApiError):
        first.extract()
    crm.between_pages = None
    crm.faults = []
    second = _source(crm, tmp_path, api.SalesforceApi(api_client(crm)), "salesforce")
    second.now = lambda: now
    second.extract()
    _land(tmp_path, first)
    _land(tmp_path, second)
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute("SELECT account_id, account_name, updated_at FROM raw.accounts").fetchall()
    assert len(rows) == len(set(rows))  # no version twice
    latest = {}
    for rid, name, _ in sorted(rows, key=lambda r: r[2]):
        latest[rid] = name
    assert set(latest) == {f"001A{i:04d}" for i in range(6)}  # no gap
    assert latest["001A0000"] == "updated 001A0000" and latest["001A0005"] == "updated 001A0005"


def test_http_client_retries_429_and_5xx_and_fails_clearly(crm):
    _salesforce_accounts(crm, 1)
    sleeps: list[float] = []
    client = api_client(crm, sleeps)
    crm.faults = [
        (r"/query", 429, {"Retry-After": "7"}, b'{"message": "REQUEST_LIMIT_EXCEEDED"}'),
        (r"/query", 503, {}, b"{}"),
    ]
    page = client.request(
        "GET", "/services/data/v60.0/query", {"q": "SELECT Id, SystemModstamp FROM Account"}
    )
    assert page["totalSize"] == 1
    assert sleeps == [7.0, 2.0]  # Retry-After honoured; then exponential backoff (1 s x 2^1)

    crm.faults = [(r"/query", 200, {}, b'{"records": [')]
    with pytest.raises(api.ApiError, match="not valid JSON"):
        client.request("GET", "/services/data/v60.0/query", {"q": "x"})

    crm.faults = [(r"/query", 200, {}, b'{"unexpected": true}')]
    with pytest.raises(api.ApiError, match="malformed response"):
        next(api.SalesforceApi(client).pages("Account", [], api.Watermark()))

    crm.token = "rotated"  # our token has expired
    with pytest.raises(
        api.ApiAuthError, match="HTTP 401 .*token rejected or expired.*SALESALIGN_API_TOKEN"
    ) as err:
        client.request("GET", "/services/data/v60.0/query", {"q": "x"})
    assert CANARY not in str(err.value)


def test_hubspot_search_paging_associations_and_incremental(crm, tmp_path):
    for i in range(5):
        crm.put("companies", hubspot_company(i, day=i + 1))
    for i in range(3):
        crm.put("deals", hubspot_deal(i, "closedwon"))
    crm.records["deals->companies"] = {
        str(900 + i): {"id": str(900 + i), "to": [str(101 + i), "999"]} for i in range(3)
    }
    crm.faults = [(r"/objects/deals/search", 429, {"Retry-After": "1"}, b"{}")]
    sleeps: list[float] = []
    source = _source(crm, tmp_path, api.HubSpotApi(api_client(crm, sleeps), page_size=2), "hubspot")
    written = source.extract()
    assert written["companies"] == 5 and written["deals"] == 3 and sleeps == [1.0]
    _land(tmp_path, source)
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        deals = con.execute(
            "SELECT opportunity_id, account_id, stage, is_won, amount, currency "
            "FROM raw.opportunities ORDER BY 1"
        ).fetchall()
        industries = con.execute("SELECT DISTINCT industry FROM raw.accounts").fetchall()
    assert deals[0] == ("900", "101", "closed_won", True, 5000, "EUR")
    assert [d[1] for d in deals] == ["101", "102", "103"]  # the first associated company
    assert industries == [("computer software",)]
    searches = [b for m, p, b in crm.requests if p == "/crm/v3/objects/companies/search"]
    assert [s.get("after") for s in searches] == [None, "2", "4"]  # `after` cursor paging

    crm.records["companies"]["102"]["hs_lastmodifieddate"] = "2024-03-01T00:00:00.000Z"
    again = _source(crm, tmp_path, api.HubSpotApi(api_client(crm), page_size=2), "hubspot").extract()
    assert again == {"companies": 1, "contacts": 0, "owners": 0, "products": 0, "deals": 0, "engagements": 0}
    searches = [b for m, p, b in crm.requests if p == "/crm/v3/objects/companies/search"]
    assert searches[-1]["filterGroups"][0]["filters"][0]["operator"] == "GTE"


def test_canary_secret_never_reaches_logs_metadata_or_errors(crm, tmp_path, monkeypatch, caplog):
    """Through Dagster: the token comes from an EnvVar; a server that echoes it in an error is masked."""
    from orchestration.extract import assets as extract_assets
    from orchestration.operations import latest_partition
    from orchestration.resources import SourceResource, WarehouseResource

    _salesforce_accounts(crm, 3)
    crm.faults = [(r"/query", 500, {}, b'{"message": "internal error", "echo": "{auth}"}')]
    monkeypatch.setenv("SALESALIGN_API_TOKEN", CANARY)
    resources = {
        "source": SourceResource(
            kind="salesforce",
            api_url=crm.url,
            api_token=dg.EnvVar("SALESALIGN_API_TOKEN"),
            staging_dir=str(tmp_path / "staging_drops"),
            warehouse_path=str(tmp_path / "warehouse.duckdb"),
        ),
        "warehouse": WarehouseResource(home=str(tmp_path)),
    }
    caplog.set_level(logging.DEBUG)
    with dg.instance_for_test() as instance:
        ok = dg.materialize(
            extract_assets,
            resources=resources,
            instance=instance,
            selection=["extract/source_snapshot", "raw/accounts"],
            partition_key=latest_partition(),
        )
        assert ok.success
        crm.token = "rotated"  # expired: the run fails with a clear error
        bad = dg.materialize(
            extract_assets,
            resources=resources,
            instance=instance,
            selection=["extract/source_snapshot"],
            partition_key=latest_partition(),
            raise_on_error=False,
        )
        assert not bad.success
        records = instance.all_logs(ok.run_id) + instance.all_logs(bad.run_id)
        dumped = "\n".join(dg.serialize_value(r) for r in records)
        runs = "\n".join(dg.serialize_value(instance.get_run_by_id(r)) for r in (ok.run_id, bad.run_id))
    assert "HTTP 401" in dumped and "SALESALIGN_API_TOKEN" in dumped
    assert "HTTP 500" in caplog.text  # the retried 500 was logged, its echoed header masked
    for text in (dumped, runs, caplog.text):
        assert CANARY not in text
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM raw.accounts").fetchone()[0] == 3
        assert CANARY not in json.dumps(con.execute("SELECT * FROM raw._watermarks").fetchall(), default=str)
