"""Landing: idempotent, append-only, load metadata, and clear errors on bad files."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from salesalign import contract
from salesalign.extract.landing import LandingError, ensure_raw_tables, land_batch, row_count
from salesalign.extract.sources import Batch, FileDropSource

ACCOUNT_HEADER = ",".join(contract.table("accounts").column_names)


def _accounts_csv(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join([ACCOUNT_HEADER, *rows]) + "\n")
    return path


def _row(account_id: str, employees: str = "120", updated: str = "2024-01-02 10:00:00") -> str:
    return (
        f"{account_id},Acme {account_id},software,{employees},1000000.50,USD,na,US,"
        f"2023-01-01 00:00:00,{updated}"
    )


@pytest.fixture
def con(tmp_path):
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as c:
        ensure_raw_tables(c)
        yield c


def _land_drop(con, drop: Path, name: str = "demo") -> dict[str, int]:
    source = FileDropSource(drop, name)
    landed = {}
    for table in contract.TABLE_NAMES:
        for batch in source.batches(table):
            landed[table] = landed.get(table, 0) + land_batch(con, batch, name).rows
    return landed


def test_same_drop_twice_adds_nothing_and_new_drop_appends(con, small_drop, tmp_path):
    first = _land_drop(con, small_drop)
    counts = {t: row_count(con, t) for t in contract.TABLE_NAMES}
    assert all(counts[t] > 0 for t in contract.TABLE_NAMES), counts
    assert first == counts

    second = _land_drop(con, small_drop)
    assert sum(second.values()) == 0
    assert {t: row_count(con, t) for t in contract.TABLE_NAMES} == counts

    # A later drop (here: a changed copy of one account) appends a new version; history is kept.
    later = tmp_path / "later"
    later.mkdir()
    con.execute(
        f"COPY (SELECT * EXCLUDE (_load_id, _source, _source_file, _source_row, _loaded_at) "
        f"REPLACE (employee_count + 1 AS employee_count, updated_at + INTERVAL 1 DAY AS updated_at) "
        f"FROM raw.accounts LIMIT 3) TO '{later / 'accounts.parquet'}' (FORMAT parquet)"
    )
    assert _land_drop(con, later, "files") == {"accounts": 3}
    assert row_count(con, "accounts") == counts["accounts"] + 3
    assert con.execute("SELECT count(DISTINCT _load_id) FROM raw.accounts").fetchone()[0] == 2


def test_every_row_carries_load_metadata(con, small_drop):
    _land_drop(con, small_drop)
    for table in contract.TABLE_NAMES:
        nulls = con.execute(
            f"SELECT count(*) FROM raw.{table} WHERE _load_id IS NULL OR _source IS NULL "
            f"OR _source_file IS NULL OR _source_row IS NULL OR _loaded_at IS NULL"
        ).fetchone()[0]
        assert nulls == 0, table
    files, rows = con.execute("SELECT count(*), sum(rows) FROM raw._loads").fetchone()
    assert files == len(contract.TABLE_NAMES)
    assert rows == sum(row_count(con, t) for t in contract.TABLE_NAMES)
    # Row numbers are 1..n within each file.
    lo, hi, n = con.execute(
        "SELECT min(_source_row), max(_source_row), count(*) FROM raw.activities"
    ).fetchone()
    assert (lo, hi) == (1, n)


def test_landed_rows_equal_the_source_files(con, small_drop):
    _land_drop(con, small_drop)
    for table in ("opportunities", "invoices"):
        cols = ", ".join(contract.table(table).column_names)
        diff = con.execute(
            f"SELECT count(*) FROM (SELECT {cols} FROM read_parquet('{small_drop / (table + '.parquet')}') "
            f"EXCEPT ALL SELECT {cols} FROM raw.{table})"
        ).fetchone()[0]
        assert diff == 0, table


def test_csv_is_cast_to_the_contract(con, tmp_path):
    batch = Batch("accounts", _accounts_csv(tmp_path / "accounts.csv", [_row("A1"), _row("A2")]), "csv")
    result = land_batch(con, batch, "files")
    assert result.rows == 2 and not result.skipped
    types = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                             "WHERE table_schema = 'raw' AND table_name = 'accounts'").fetchall())
    assert types["employee_count"] == "INTEGER"
    assert types["annual_revenue"] == "DECIMAL(18,2)"
    assert con.execute(
        "SELECT sum(annual_revenue) FROM raw.accounts"
    ).fetchone()[0] == pytest.approx(2000001.0)


def test_value_that_does_not_fit_names_file_row_and_column(con, tmp_path):
    path = _accounts_csv(tmp_path / "accounts.csv", [_row("A1"), _row("A2", employees="lots")])
    with pytest.raises(LandingError) as err:
        land_batch(con, Batch("accounts", path, "csv"), "files")
    message = str(err.value)
    assert str(path) in message and "row 2" in message and "employee_count=lots" in message
    assert row_count(con, "accounts") == 0  # nothing half-landed


def test_missing_column_is_named(con, tmp_path):
    path = tmp_path / "accounts.csv"
    path.write_text(ACCOUNT_HEADER.replace(",country", "") + "\n")
    with pytest.raises(LandingError, match=r"missing column\(s\) country"):
        land_batch(con, Batch("accounts", path, "csv"), "files")


def test_empty_file_and_header_only(con, tmp_path):
    empty = tmp_path / "empty" / "accounts.csv"
    empty.parent.mkdir()
    empty.write_text("")
    with pytest.raises(LandingError, match="empty"):
        land_batch(con, Batch("accounts", empty, "csv"), "files")
    header_only = _accounts_csv(tmp_path / "accounts.csv", [])
    assert land_batch(con, Batch("accounts", header_only, "csv"), "files").rows == 0


def test_extra_columns_are_reported_not_landed(con, tmp_path):
    path = tmp_path / "accounts.csv"
    path.write_text(ACCOUNT_HEADER + ",favourite_colour\n" + _row("A1") + ",blue\n")
    result = land_batch(con, Batch("accounts", path, "csv"), "files")
    assert result.rows == 1 and result.extra_columns == ("favourite_colour",)


def test_file_drop_source_lists_sub_folder_batches_in_order(tmp_path):
    (tmp_path / "activities").mkdir()
    for name in ("2025-01-02.parquet", "2025-01-01.parquet"):
        (tmp_path / "activities" / name).write_bytes(b"")
    (tmp_path / "activities.parquet").write_bytes(b"")
    names = [b.path.name for b in FileDropSource(tmp_path).batches("activities")]
    assert names == ["activities.parquet", "2025-01-01.parquet", "2025-01-02.parquet"]
    with pytest.raises(KeyError, match="not a raw contract table"):
        FileDropSource(tmp_path).batches("deals")
