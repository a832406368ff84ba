"""The finance database source against SQLite and a real PostgreSQL server on loopback.

PostgreSQL (the `postgres_url` fixture): `SALESALIGN_TEST_POSTGRES_URL` (set by `.ci/run`, which
installs and starts a server), else a server on 127.0.0.1:5432 as user postgres, else a throwaway
cluster started with the local `initdb`; the PostgreSQL cases skip, saying why, only when none of
those is possible.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa
from fixtures.warehouse import fetchall

from salesalign.extract.finance_db import FinanceDbError, FinanceDbExtractor
from salesalign.extract.incremental import IncrementalSource
from salesalign.extract.landing import land_source
from salesalign.extract.profiles import parse_profile
from salesalign.extract.watermarks import WatermarkStore

PROFILE = """
name: erp
incremental:
  ar_invoices: {changed_at: updated_at, id: invoice_no}
tables:
  invoices:
    file: ar_invoices
    fields:
      invoice_id: invoice_no
      opportunity_id: deal_ref
      account_id: customer_ref
      invoice_date: issued_on
      amount: total
      currency: {column: ccy, map: {EURO: EUR}}
  fx_rates:
    file: fx_daily
    fields:
      rate_date: day
      currency: ccy
      usd_per_unit: usd_rate
"""


def _create(url: str) -> tuple[sa.Engine, sa.MetaData]:
    engine = sa.create_engine(url)
    meta = sa.MetaData()
    sa.Table(
        "ar_invoices",
        meta,
        sa.Column("invoice_no", sa.String(20), primary_key=True),
        sa.Column("deal_ref", sa.String(20)),
        sa.Column("customer_ref", sa.String(40)),
        sa.Column("issued_on", sa.Date),
        sa.Column("total", sa.Numeric(18, 2)),
        sa.Column("ccy", sa.String(4)),
        sa.Column("updated_at", sa.DateTime),
    )
    sa.Table(
        "fx_daily",
        meta,
        sa.Column("day", sa.Date),
        sa.Column("ccy", sa.String(3)),
        sa.Column("usd_rate", sa.Float),
    )
    meta.create_all(engine)
    return engine, meta


def _invoice(no: str, minute: int, total: str = "100.10", ccy: str = "EUR") -> dict:
    return {
        "invoice_no": no,
        "deal_ref": f"opp-{no}",
        "customer_ref": "O'Brien & Co",  # a quote in the data
        "issued_on": datetime(2025, 1, 2).date(),
        "total": Decimal(total),
        "ccy": ccy,
        "updated_at": datetime(2025, 1, 3, 9, minute),
    }


def _source(url: str, home: Path, page_size: int = 2, until: datetime | None = None) -> IncrementalSource:
    profile = parse_profile(__import__("yaml").safe_load(PROFILE), PROFILE)
    return IncrementalSource(
        FinanceDbExtractor(url, profile.incremental, page_size=page_size),
        profile,
        home / "staging_drops",
        WatermarkStore(home / "warehouse.duckdb"),
        "finance_db+erp",
        until=until,
    )


def _land(home: Path, source: IncrementalSource) -> list:
    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        return land_source(con, source, ("invoices", "fx_rates"))


def test_finance_db_incremental_by_updated_at_with_keyset_pages(db_url, tmp_path):
    engine, meta = _create(db_url)
    invoices, fx = meta.tables["ar_invoices"], meta.tables["fx_daily"]
    with engine.begin() as con:
        # five invoices, three of them changed in the same minute: ties across page boundaries
        con.execute(
            invoices.insert(),
            [
                _invoice("INV-1", 0),
                _invoice("INV-2", 5),
                _invoice("INV-3", 5, "0.05", "EURO"),
                _invoice("INV-4", 5),
                _invoice("INV-5", 9, "12345678.91", "USD"),
            ],
        )
        con.execute(
            fx.insert(),
            [
                {"day": datetime(2025, 1, 2).date(), "ccy": "EUR", "usd_rate": 1.08},
                {"day": datetime(2025, 1, 2).date(), "ccy": "USD", "usd_rate": 1.0},
            ],
        )
    source = _source(db_url, tmp_path)
    assert source.extract() == {"ar_invoices": 5, "fx_daily": 2}
    _land(tmp_path, source)
    assert fetchall(
        tmp_path, "SELECT invoice_id, amount, currency, account_id FROM raw.invoices ORDER BY 1"
    ) == [
        ("INV-1", Decimal("100.10"), "EUR", "O'Brien & Co"),
        ("INV-2", Decimal("100.10"), "EUR", "O'Brien & Co"),
        ("INV-3", Decimal("0.05"), "EUR", "O'Brien & Co"),
        ("INV-4", Decimal("100.10"), "EUR", "O'Brien & Co"),
        ("INV-5", Decimal("12345678.91"), "USD", "O'Brien & Co"),
    ]
    assert fetchall(tmp_path, "SELECT count(*) FROM raw.fx_rates") == [(2,)]

    # nothing changed: nothing extracted, nothing landed
    again = _source(db_url, tmp_path)
    assert again.extract() == {"ar_invoices": 0, "fx_daily": 0}
    assert not [r for r in _land(tmp_path, again) if not r.skipped]

    # one new invoice, one correction at the watermark's minute: exactly those come back
    with engine.begin() as con:
        con.execute(invoices.insert(), [_invoice("INV-6", 9)])
        con.execute(
            invoices.update().where(invoices.c.invoice_no == "INV-2"),
            {"total": Decimal("99.99"), "updated_at": datetime(2025, 1, 4, 8, 0)},
        )
    third = _source(db_url, tmp_path)
    assert third.extract() == {"ar_invoices": 2, "fx_daily": 0}
    _land(tmp_path, third)
    assert fetchall(tmp_path, "SELECT count(*), count(DISTINCT invoice_id) FROM raw.invoices") == [(7, 6)]
    assert fetchall(
        tmp_path, "SELECT amount FROM raw.invoices WHERE invoice_id = 'INV-2' ORDER BY _loaded_at"
    ) == [(Decimal("100.10"),), (Decimal("99.99"),)]
    engine.dispose()


def test_a_backfilled_day_extracts_only_what_changed_before_its_end(db_url, tmp_path):
    """A partition's extraction stops at the end of its day; the next day's run goes on from there."""
    engine, meta = _create(db_url)
    invoices = meta.tables["ar_invoices"]
    changes = [("INV-1", datetime(2025, 1, 3, 9)), ("INV-2", datetime(2025, 1, 3, 23, 59)),
               ("INV-3", datetime(2025, 1, 4, 0, 0)), ("INV-4", datetime(2025, 1, 4, 7)),
               ("INV-5", datetime(2025, 1, 5, 1))]
    with engine.begin() as con:
        con.execute(invoices.insert(), [{**_invoice(no, 0), "updated_at": at} for no, at in changes])
    day_end = {day: datetime(2025, 1, day + 1, tzinfo=UTC) for day in (3, 4)}

    first = _source(db_url, tmp_path, until=day_end[3])  # the partition of 2025-01-03
    assert first.extract()["ar_invoices"] == 2
    _land(tmp_path, first)
    assert fetchall(tmp_path, "SELECT invoice_id FROM raw.invoices ORDER BY 1") == [("INV-1",), ("INV-2",)]

    second = _source(db_url, tmp_path, until=day_end[4])  # 2025-01-04: midnight belongs to it
    assert second.extract()["ar_invoices"] == 2
    rest = _source(db_url, tmp_path)  # the newest partition: up to now
    assert rest.extract()["ar_invoices"] == 1
    _land(tmp_path, second)
    _land(tmp_path, rest)
    assert fetchall(tmp_path, "SELECT count(*), count(DISTINCT invoice_id) FROM raw.invoices") == [(5, 5)]
    engine.dispose()


def test_finance_db_names_come_only_from_an_allowlist(db_url, tmp_path):
    _create(db_url)[0].dispose()
    extractor = FinanceDbExtractor(db_url, {})
    with pytest.raises(FinanceDbError, match="not an allowed table name"):
        extractor.table("ar_invoices; DROP TABLE fx_daily")
    with pytest.raises(FinanceDbError, match="does not exist"):
        extractor.table("no_such_table")
    with pytest.raises(
        FinanceDbError, match=r"column 'total\) FROM fx_daily --' of ar_invoices is not allowed"
    ):
        next(
            extractor.pages(
                "ar_invoices",
                ["total) FROM fx_daily --"],
                __import__("salesalign.extract.watermarks", fromlist=["Watermark"]).Watermark(),
            )
        )
    with sa.create_engine(db_url).connect() as con:  # nothing was dropped
        assert sa.inspect(con).has_table("fx_daily")


def test_finance_db_password_never_appears_in_errors():
    url = "postgresql+psycopg://salesalign:canary-pw-5f2e@127.0.0.1:1/finance"
    with pytest.raises(FinanceDbError) as err:
        FinanceDbExtractor(url, {}).table("ar_invoices")
    assert "canary-pw-5f2e" not in str(err.value) and "cannot read table 'ar_invoices'" in str(err.value)
