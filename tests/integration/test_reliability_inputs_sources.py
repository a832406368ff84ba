"""The bad-input corpus, CRM APIs and the finance database: defined outcomes, nothing lost.

APIs: the fake CRM of fixtures/fake_crm.py in HubSpot's shape. Finance database: SQLite always,
and a real PostgreSQL (the `postgres_url` fixture): `SALESALIGN_TEST_POSTGRES_URL` (`.ci/run`), a
server on 127.0.0.1:5432, or a throwaway cluster started with the local `initdb` (the PostgreSQL
cases skip, saying why, only when none of those is possible).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa
import yaml
from fixtures.fake_crm import FakeCrm, api_client, hubspot_company, hubspot_deal
from fixtures.warehouse import fetchall

from salesalign.extract import api
from salesalign.extract.finance_db import FinanceDbError, FinanceDbExtractor
from salesalign.extract.incremental import IncrementalSource
from salesalign.extract.landing import land_source
from salesalign.extract.profiles import load_profile, parse_profile
from salesalign.extract.sources import SourceError
from salesalign.extract.watermarks import WatermarkStore

HOSTILE = [
    '=HYPERLINK("http://evil.example/x","Click")',
    "'); DROP TABLE raw.accounts; --",
    "株式会社テスト 🦄 Labs",
    "شركة الاختبار",
]

# ------------------------------------------------------------------ CRM API (HubSpot shape)


def _hubspot(crm: FakeCrm, home: Path) -> IncrementalSource:
    return IncrementalSource(
        api.HubSpotApi(api_client(crm), page_size=2),
        load_profile("hubspot"),
        home / "staging_drops",
        WatermarkStore(home / "warehouse.duckdb"),
        "hubspot:test",
        now=lambda: datetime(2025, 1, 1, tzinfo=UTC),
    )


def _land(home: Path, source, tables=("accounts", "opportunities")) -> list:
    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        return land_source(con, source, tables)


def test_api_unknown_stage_names_page_row_and_column_and_stays_pending(crm, tmp_path):
    for i in range(3):
        crm.put("deals", hubspot_deal(i, "verbalcommit" if i == 1 else "closedwon"))
    source = _hubspot(crm, tmp_path)
    with pytest.raises(SourceError) as err:
        source.extract()
    message = str(err.value)
    assert "pages/deals/000001.jsonl" in message
    assert "deals.jsonl row 2 (header is row 0), column dealstage: unmapped value verbalcommit" in message
    assert not list((tmp_path / "staging_drops").rglob("*.parquet")), "nothing of the page is staged"
    # the page is kept and retried on the next run (not skipped past): nothing is lost
    with pytest.raises(SourceError, match="unmapped value verbalcommit"):
        _hubspot(crm, tmp_path).extract()
    page = tmp_path / "staging_drops" / "hubspot-test" / "pages" / "deals" / "000001.jsonl"
    assert len(page.read_text().splitlines()) == 2  # page size 2: deals 900 and 901


def test_api_wrong_type_names_row_and_column_and_lands_nothing(crm, tmp_path):
    for i in range(4):
        crm.put("companies", hubspot_company(i, employees="lots" if i == 2 else "50"))
    with pytest.raises(SourceError) as err:
        _hubspot(crm, tmp_path).extract()
    assert "pages/companies/000002.jsonl" in str(err.value)
    assert "row 1 (header is row 0): employee_count=lots does not fit INTEGER" in str(err.value)


def test_api_formula_sql_emoji_strings_land_verbatim(crm, tmp_path):
    for i, name in enumerate(HOSTILE):
        crm.put("companies", hubspot_company(i, name=name))
    source = _hubspot(crm, tmp_path)
    assert source.extract()["companies"] == len(HOSTILE)
    _land(tmp_path, source)
    assert [
        r[0] for r in fetchall(tmp_path, "SELECT account_name FROM raw.accounts ORDER BY account_id")
    ] == HOSTILE


def test_api_record_repeated_in_a_page_lands_once(crm, tmp_path):
    for i in range(3):
        crm.put("companies", hubspot_company(i, day=i + 1))
    real = crm.records["companies"]
    # a server that repeats a record within a page (seen with offset paging under concurrent writes)
    crm.records["companies"] = {
        "100": real["100"],
        "100 ": real["100"],
        "101": real["101"],
        "102": real["102"],
    }
    source = _hubspot(crm, tmp_path)
    assert source.extract()["companies"] == 3
    _land(tmp_path, source)
    assert fetchall(tmp_path, "SELECT account_id, count(*) FROM raw.accounts GROUP BY 1 ORDER BY 1") == [
        ("100", 1),
        ("101", 1),
        ("102", 1),
    ]


def test_api_record_deleted_in_the_crm_keeps_its_last_version(crm, tmp_path):
    for i in range(3):
        crm.put("companies", hubspot_company(i, day=i + 1))
    first = _hubspot(crm, tmp_path)
    first.extract()
    _land(tmp_path, first)
    del crm.records["companies"]["101"]  # deleted in the CRM: the search no longer returns it
    crm.records["companies"]["102"]["hs_lastmodifieddate"] = "2024-03-01T00:00:00.000Z"
    second = _hubspot(crm, tmp_path)
    assert second.extract()["companies"] == 1
    _land(tmp_path, second)
    assert fetchall(tmp_path, "SELECT account_id, count(*) FROM raw.accounts GROUP BY 1 ORDER BY 1") == [
        ("100", 1),
        ("101", 1),
        ("102", 2),
    ]


# ------------------------------------------------------------------ finance database

PROFILE = """
name: erp
incremental:
  ar_invoices: {changed_at: updated_at, id: invoice_no}
tables:
  invoices:
    file: ar_invoices
    fields: {invoice_id: invoice_no, opportunity_id: deal_ref, account_id: customer_ref,
             invoice_date: issued_on, amount: total, currency: ccy}
"""


def _erp(url: str) -> tuple[sa.Engine, sa.Table]:
    engine = sa.create_engine(url)
    meta = sa.MetaData()
    table = sa.Table(
        "ar_invoices",
        meta,
        sa.Column("invoice_no", sa.String(20)),  # no primary key: as in many ERP extracts
        sa.Column("deal_ref", sa.String(40)),
        sa.Column("customer_ref", sa.Text),
        sa.Column("issued_on", sa.Date),
        sa.Column("total", sa.Numeric(18, 2)),
        sa.Column("ccy", sa.String(4)),
        sa.Column("updated_at", sa.DateTime),
    )
    sa.Table("fx_daily", meta, sa.Column("day", sa.Date), sa.Column("ccy", sa.String(3)))
    meta.create_all(engine)
    return engine, table


def _inv(no: str, minute: int, customer: str = "ACC-1", total: str = "100.10", updated="default") -> dict:
    return {
        "invoice_no": no,
        "deal_ref": f"opp-{no}",
        "customer_ref": customer,
        "issued_on": datetime(2025, 1, 2).date(),
        "total": Decimal(total),
        "ccy": "EUR",
        "updated_at": datetime(2025, 1, 3, 9, minute) if updated == "default" else updated,
    }


def _finance(url: str, home: Path) -> IncrementalSource:
    profile = parse_profile(yaml.safe_load(PROFILE), PROFILE)
    return IncrementalSource(
        FinanceDbExtractor(url, profile.incremental, page_size=2),
        profile,
        home / "staging_drops",
        WatermarkStore(home / "warehouse.duckdb"),
        "finance_db+erp",
    )


def test_finance_db_sql_and_formula_strings_land_verbatim_and_run_nothing(db_url, tmp_path):
    engine, table = _erp(db_url)
    with engine.begin() as con:
        con.execute(table.insert(), [_inv(f"INV-{i}", i, customer=v) for i, v in enumerate(HOSTILE)])
    source = _finance(db_url, tmp_path)
    assert source.extract()["ar_invoices"] == len(HOSTILE)
    _land(tmp_path, source, ("invoices",))
    assert [
        r[0] for r in fetchall(tmp_path, "SELECT account_id FROM raw.invoices ORDER BY invoice_id")
    ] == HOSTILE
    assert sa.inspect(engine).has_table("fx_daily")
    engine.dispose()


@pytest.mark.parametrize("defect", ["duplicate_id_and_change_time", "null_change_time"])
def test_finance_db_rows_keyset_paging_would_lose_fail_before_any_page(defect, db_url, tmp_path):
    engine, table = _erp(db_url)
    rows = [_inv("INV-1", 0), _inv("INV-2", 5), _inv("INV-3", 5)]
    if defect == "duplicate_id_and_change_time":  # conflicting copies of INV-2 at the same instant
        rows.append(_inv("INV-2", 5, total="99.99"))
        expected = (
            r"\(updated_at, invoice_no\) is not unique "
            r"\(invoice_no=INV-2 at 2025-01-03[ T]09:05:00 x2\)"
        )
    else:
        rows.append(_inv("INV-4", 0, updated=None))
        expected = r"1 row\(s\) with a NULL updated_at or invoice_no"
    with engine.begin() as con:
        con.execute(table.insert(), rows)
    source = _finance(db_url, tmp_path)
    with pytest.raises(FinanceDbError, match=expected):
        source.extract()
    mark = WatermarkStore(tmp_path / "warehouse.duckdb").get(source.name, "ar_invoices")
    assert mark.changed_at is None and mark.pages == 0, "the watermark does not move"
    assert not list((tmp_path / "staging_drops").rglob("*.jsonl")), "nothing half-extracted"
    engine.dispose()


def test_finance_db_late_arriving_invoice_is_extracted_next_run(db_url, tmp_path):
    engine, table = _erp(db_url)
    with engine.begin() as con:
        con.execute(table.insert(), [_inv("INV-1", 0), _inv("INV-2", 5)])
    first = _finance(db_url, tmp_path)
    assert first.extract()["ar_invoices"] == 2
    _land(tmp_path, first, ("invoices",))
    with engine.begin() as con:  # an invoice for an old deal, issued months ago, entered today
        con.execute(table.insert(), [_inv("INV-0", 0, updated=datetime(2025, 2, 1, 8, 0))])
    second = _finance(db_url, tmp_path)
    assert second.extract()["ar_invoices"] == 1
    _land(tmp_path, second, ("invoices",))
    assert fetchall(tmp_path, "SELECT invoice_id, count(*) FROM raw.invoices GROUP BY 1 ORDER BY 1") == [
        ("INV-0", 1),
        ("INV-1", 1),
        ("INV-2", 1),
    ]
    engine.dispose()
