"""CRM API sources against local servers on 127.0.0.1 that answer in Salesforce and HubSpot shapes.

The servers page small result sets, can change records between pages, and inject faults
(429 with Retry-After, 5xx, bad JSON, 401). Pages are mapped by the shipped profiles and landed.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from salesalign.extract import api
from salesalign.extract.incremental import IncrementalSource
from salesalign.extract.landing import land_source
from salesalign.extract.profiles import load_profile
from salesalign.extract.watermarks import WatermarkStore

CANARY = "canary-7f3c9e1d-DO-NOT-LEAK"
T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


def sf_ts(minutes: int) -> str:
    return (T0 + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


class FakeCrm:
    """State shared by the handler: records per object, scripted faults, a hook between pages."""

    def __init__(self, page_size: int = 2):
        self.records: dict[str, dict[str, dict]] = {}
        self.page_size = page_size
        self.faults: list[tuple[str, int, dict, bytes]] = []  # (path regex, status, headers, body)
        self.between_pages = None  # callable(page_number) run before serving a continuation page
        self.requests: list[tuple[str, str, dict]] = []
        self.cursors: dict[str, list[str]] = {}
        self.token = CANARY

    def put(self, obj: str, record: dict) -> None:
        self.records.setdefault(obj, {})[record["Id"] if "Id" in record else record["id"]] = record


def _handler(crm: FakeCrm):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep pytest output clean
            pass

        def _send(self, status: int, body: bytes | dict, headers: dict | None = None):
            payload = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _fault(self) -> bool:
            for i, (pattern, status, headers, body) in enumerate(crm.faults):
                if re.search(pattern, self.path):
                    del crm.faults[i]
                    # a careless server echoes the Authorization header back: the client must mask it
                    body = body.replace(b"{auth}", self.headers.get("Authorization", "").encode())
                    self._send(status, body, headers)
                    return True
            return False

        def _authorised(self) -> bool:
            if self.headers.get("Authorization") != f"Bearer {crm.token}":
                self._send(401, {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"})
                return False
            return True

        def do_GET(self):
            crm.requests.append(("GET", self.path, {}))
            if self._fault() or not self._authorised():
                return
            url = urllib.parse.urlsplit(self.path)
            if url.path.endswith("/query"):
                soql = urllib.parse.parse_qs(url.query)["q"][0]
                obj = re.search(r"FROM (\w+)", soql).group(1)
                fields = [f.strip() for f in re.search(r"SELECT (.*) FROM", soql).group(1).split(",")]
                since = re.search(r"SystemModstamp >= (\S+)", soql)
                rows = sorted(crm.records.get(obj, {}).values(), key=lambda r: (r["SystemModstamp"], r["Id"]))
                ids = [r["Id"] for r in rows if not since or r["SystemModstamp"] >= since.group(1)]
                cursor = f"01g{len(crm.cursors):05d}"
                crm.cursors[cursor] = [obj, fields, ids]
                return self._send(200, self._sf_page(cursor, 0))
            m = re.match(r".*/query/(\w+)-(\d+)$", url.path)
            if m:
                if crm.between_pages:
                    crm.between_pages(int(m.group(2)) // crm.page_size)
                return self._send(200, self._sf_page(m.group(1), int(m.group(2))))
            self._send(404, [{"message": "not found"}])

        def _sf_page(self, cursor: str, offset: int) -> dict:
            obj, fields, ids = crm.cursors[cursor]
            chunk = ids[offset : offset + crm.page_size]
            # like Salesforce, a continuation returns the records' current values
            records = [
                {"attributes": {"type": obj}, **{f: crm.records[obj][i].get(f) for f in fields}}
                for i in chunk
            ]
            done = offset + crm.page_size >= len(ids)
            page = {"totalSize": len(ids), "done": done, "records": records}
            if not done:
                page["nextRecordsUrl"] = f"/services/data/v60.0/query/{cursor}-{offset + crm.page_size}"
            return page

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            crm.requests.append(("POST", self.path, body))
            if self._fault() or not self._authorised():
                return
            m = re.match(r"/crm/v3/objects/(\w+)/search$", self.path)
            if m:
                obj = m.group(1)
                after = int(body.get("after", 0))
                if after and crm.between_pages:
                    crm.between_pages(after // crm.page_size)
                since = None
                for group in body.get("filterGroups", []):
                    for f in group["filters"]:
                        since = datetime.fromtimestamp(int(f["value"]) / 1000, UTC)
                rows = sorted(
                    crm.records.get(obj, {}).values(), key=lambda r: (r["hs_lastmodifieddate"], r["id"])
                )
                rows = [
                    r
                    for r in rows
                    if since is None or datetime.fromisoformat(r["hs_lastmodifieddate"]) >= since
                ]
                chunk = rows[after : after + body["limit"]]
                results = [
                    {
                        "id": r["id"],
                        "properties": {p: r.get(p) for p in body["properties"]},
                        "createdAt": r.get("createdate"),
                        "updatedAt": r["hs_lastmodifieddate"],
                        "archived": False,
                    }
                    for r in chunk
                ]
                page = {"total": len(rows), "results": results}
                if after + body["limit"] < len(rows):
                    page["paging"] = {"next": {"after": str(after + body["limit"])}}
                return self._send(200, page)
            m = re.match(r"/crm/v3/associations/(\w+)/(\w+)/batch/read$", self.path)
            if m:
                links = crm.records.get(f"{m.group(1)}->{m.group(2)}", {})
                results = [
                    {
                        "from": {"id": i["id"]},
                        "to": [{"id": t, "type": "deal_to_company"} for t in links[i["id"]]["to"]],
                    }
                    for i in body["inputs"]
                    if i["id"] in links
                ]
                return self._send(200, {"status": "COMPLETE", "results": results})
            self._send(404, {"message": "not found"})

    return Handler


@contextmanager
def serving(state: FakeCrm) -> Iterator[FakeCrm]:
    """Serve `state` on a free loopback port (its `url` set) until the block ends."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def crm():
    with serving(FakeCrm()) as state:
        yield state


def _client(crm: FakeCrm, sleeps: list | None = None, **kw) -> api.HttpClient:
    sleeps = sleeps if sleeps is not None else []
    return api.HttpClient(
        crm.url, CANARY, token_env="SALESALIGN_API_TOKEN", timeout=5, sleep=sleeps.append, **kw
    )


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
    source = _source(crm, tmp_path, api.SalesforceApi(_client(crm, max_retries=2)), "salesforce")
    with pytest.raises(api.ApiError, match=r"HTTP 503 after 3 attempt\(s\)"):
        source.extract()
    assert WatermarkStore(tmp_path / "warehouse.duckdb").get(source.name, "Account").pages == 2

    # resumed: only what was not extracted yet, then landing of everything staged
    crm.faults = []
    resumed = _source(crm, tmp_path, api.SalesforceApi(_client(crm)), "salesforce")
    assert resumed.extract()["Account"] == 3
    _land(tmp_path, resumed)
    ids = [r[0] for r in _versions(tmp_path, "accounts", "account_id")]
    assert ids == sorted(f"001A{i:04d}" for i in range(7))  # every record exactly once

    # a quiet run adds nothing; an updated record comes back once, as a new version
    assert _source(crm, tmp_path, api.SalesforceApi(_client(crm)), "salesforce").extract()["Account"] == 0
    crm.records["Account"]["001A0001"].update(Name="Renamed", SystemModstamp=sf_ts(60))
    again = _source(crm, tmp_path, api.SalesforceApi(_client(crm)), "salesforce")
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
    first = _source(crm, tmp_path, api.SalesforceApi(_client(crm, max_retries=1)), "salesforce")
    first.now = lambda: now
    with pytest.raises(api.ApiError):
        first.extract()
    crm.between_pages = None
    crm.faults = []
    second = _source(crm, tmp_path, api.SalesforceApi(_client(crm)), "salesforce")
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
    client = _client(crm, sleeps)
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
        crm.put(
            "companies",
            {
                "id": str(100 + i),
                "name": f"Co {i}",
                "industry": "COMPUTER_SOFTWARE",
                "numberofemployees": "50",
                "annualrevenue": "1000000",
                "country": "Germany",
                "createdate": "2024-01-01T00:00:00.000Z",
                "hs_lastmodifieddate": f"2024-02-0{i + 1}T00:00:00.000Z",
            },
        )
    for i in range(3):
        crm.put(
            "deals",
            {
                "id": str(900 + i),
                "dealname": f"Deal {i}",
                "dealstage": "closedwon",
                "amount": "5000",
                "closedate": "2024-02-10T00:00:00.000Z",
                "createdate": "2024-01-05T00:00:00.000Z",
                "hubspot_owner_id": "7",
                "product_id": "p1",
                "deal_currency_code": "EUR",
                "hs_lastmodifieddate": f"2024-02-1{i}T00:00:00.000Z",
            },
        )
    crm.records["deals->companies"] = {
        str(900 + i): {"id": str(900 + i), "to": [str(101 + i), "999"]} for i in range(3)
    }
    crm.faults = [(r"/objects/deals/search", 429, {"Retry-After": "1"}, b"{}")]
    sleeps: list[float] = []
    source = _source(crm, tmp_path, api.HubSpotApi(_client(crm, sleeps), page_size=2), "hubspot")
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
    again = _source(crm, tmp_path, api.HubSpotApi(_client(crm), page_size=2), "hubspot").extract()
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
