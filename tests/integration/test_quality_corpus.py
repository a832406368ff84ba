"""The broken-drop corpus: each drop, derived from the small demo, trips the expectation it should.

Each case copies the small drop, breaks one table with a DuckDB COPY, and materialises that table's
landing asset, its GX check and a downstream asset on a warehouse holding the clean small demo
(minus the table under test, so the broken file lands as its first batch). Blocking failures must
stop the downstream asset; quarantine cases must quarantine exactly the broken rows.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from orchestration.extract import landing_assets, raw_asset_key
from orchestration.operations import latest_partition
from orchestration.quality import QUARANTINE_LEDGER, quarantined_rows
from orchestration.quality import raw_checks as checks
from orchestration.resources import SourceResource, WarehouseResource
from salesalign.quality.quarantine import TABLE as QUARANTINE

DOWNSTREAM = QUARANTINE_LEDGER  # the quality stage's asset: what dbt staging reads raw through


@dataclass(frozen=True)
class Case:
    name: str
    table: str
    select: str  # SELECT over `src` (the clean file) giving the broken file; `{bad}` marks broken rows
    outcome: str  # blocking | quarantined | warning | landing_error
    expectation: str  # expectation name (or landing error text) the failure must name
    bad_rows: int = 0
    key: str = ""
    keep_clean_batch: bool = False  # land the broken file on top of the clean table (volume cases)


def _bad(key: str, n: int) -> str:
    return f"{key} IN (SELECT {key} FROM src ORDER BY {key} LIMIT {n})"


CASES = [
    Case(
        "duplicate_opportunity_ids",
        "opportunities",
        "SELECT * FROM src UNION ALL (SELECT * FROM src ORDER BY opportunity_id LIMIT 3)",
        "blocking",
        "expect_column_values_to_be_between(_key_occurrences_in_batch)",
    ),
    Case(
        "orphan_account_ids",
        "opportunities",
        "SELECT * REPLACE (CASE WHEN {bad} THEN 'ACC-MISSING-' || opportunity_id ELSE account_id END "
        "AS account_id) "
        "FROM src",
        "warning",  # the account is optional: the deal keeps its row with the unknown account
        "expect_column_values_to_be_in_set(_account_id_exists)",
        4,
        "opportunity_id",
    ),
    Case(
        "negative_amounts",
        "opportunities",
        "SELECT * REPLACE (CASE WHEN {bad} THEN -amount ELSE amount END AS amount) FROM src",
        "quarantined",
        "expect_column_values_to_be_between(amount)",
        3,
        "opportunity_id",
    ),
    Case(
        "unknown_currency",
        "invoices",
        "SELECT * REPLACE (CASE WHEN {bad} THEN 'XTS' ELSE currency END AS currency) FROM src",
        "blocking",
        "expect_column_values_to_be_in_set(_currency_has_fx_rate)",
        2,
        "invoice_id",
    ),
    Case(
        "close_before_create",
        "opportunities",
        "SELECT * REPLACE (CASE WHEN {bad} THEN CAST(created_at AS DATE) - 10 ELSE close_date END "
        "AS close_date) "
        "FROM src",
        "quarantined",
        "expect_column_values_to_be_between(_days_created_to_close)",
        5,
        "opportunity_id",
    ),
    Case(
        "stage_not_in_vocabulary",
        "opportunities",
        "SELECT * REPLACE (CASE WHEN {bad} THEN 'won' ELSE stage END AS stage) FROM src",
        "blocking",
        "expect_column_values_to_be_in_set(stage)",
        2,
        "opportunity_id",
    ),
    Case(
        "missing_column",
        "opportunities",
        "SELECT * EXCLUDE (discount) FROM src",
        "landing_error",
        "missing column(s) discount",
    ),
    Case(
        "wrong_type",
        "opportunities",
        "SELECT * REPLACE (CASE WHEN {bad} THEN 'many' ELSE CAST(quantity AS VARCHAR) END AS quantity) "
        "FROM src",
        "landing_error",
        "quantity=many does not fit INTEGER",
        1,
        "opportunity_id",
    ),
    Case(
        "empty_table",
        "accounts",
        "SELECT * FROM src LIMIT 0",
        "blocking",
        "expect_column_values_to_be_between(row_count)",
    ),
    Case(
        "volume_jump_100x",
        "accounts",
        "SELECT * REPLACE (account_id || '-' || CAST(i AS VARCHAR) AS account_id) FROM src, range(100) t(i)",
        "warning",
        "expect_column_values_to_be_between(volume_ratio_vs_previous)",
        keep_clean_batch=True,
    ),
    Case(
        "future_dates",
        "activities",
        "SELECT * REPLACE (CASE WHEN {bad} THEN CAST(current_timestamp AS TIMESTAMP) + INTERVAL 30 DAY "
        "ELSE started_at END AS started_at) FROM src",
        "blocking",
        "expect_column_values_to_be_between(_hours_after_load__started_at)",
        2,
        "activity_id",
    ),
    Case(
        "invoices_for_unknown_deals",
        "invoices",
        "SELECT * REPLACE (CASE WHEN {bad} THEN 'OPP-MISSING' ELSE opportunity_id END AS opportunity_id) "
        "FROM src",
        "quarantined",
        "expect_column_values_to_be_in_set(_opportunity_id_exists)",
        3,
        "invoice_id",
    ),
    Case(
        "discount_of_one_or_more",
        "opportunities",
        "SELECT * REPLACE (CASE WHEN {bad} THEN 1.0 ELSE discount END AS discount) FROM src",
        "quarantined",
        "expect_column_values_to_be_between(discount)",
        2,
        "opportunity_id",
    ),
]


def _break(drop: Path, case: Case) -> Path:
    path = drop / f"{case.table}.parquet"
    clean = drop / f".{case.table}.clean.parquet"
    path.rename(clean)
    select = case.select.format(bad=_bad(case.key, case.bad_rows) if case.key else "")
    with duckdb.connect() as con:
        con.execute(f"CREATE VIEW src AS SELECT * FROM read_parquet('{clean}')")
        con.execute(f"COPY ({select}) TO '{path}' (FORMAT parquet)")
    clean.unlink()
    return path


def _home(small_home: Path, tmp_path: Path, case: Case) -> Path:
    """The clean small warehouse; without the table under test unless the case lands on top of it."""
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(small_home / "warehouse.duckdb", home / "warehouse.duckdb")
    if not case.keep_clean_batch:
        with duckdb.connect(str(home / "warehouse.duckdb")) as con:
            con.execute(f"DELETE FROM raw.{case.table}")
            con.execute("DELETE FROM raw._loads WHERE table_name = ?", [case.table])
    return home


def _expected_bad_keys(small_drop: Path, case: Case) -> set[str]:
    with duckdb.connect() as con:
        con.execute(
            f"CREATE VIEW src AS SELECT * FROM read_parquet('{small_drop / (case.table + '.parquet')}')"
        )
        rows = con.execute(f"SELECT {case.key} FROM src WHERE {_bad(case.key, case.bad_rows)}").fetchall()
    return {r[0] for r in rows}


def _materialize(home: Path, drop: Path, table: str) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [*landing_assets, *checks, quarantined_rows],
        selection=dg.AssetSelection.assets(raw_asset_key(table), DOWNSTREAM),
        resources={
            "source": SourceResource(kind="files", path=str(drop)),
            "warehouse": WarehouseResource(home=str(home)),
        },
        partition_key=latest_partition(),  # extraction is daily-partitioned
        raise_on_error=False,
    )


def _root_error(result: dg.ExecuteInProcessResult) -> str:
    messages = []
    for event in result.get_step_failure_events():
        error = event.step_failure_data.error
        while error.cause is not None:
            error = error.cause
        messages.append(error.message)
    return "\n".join(messages)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_broken_drop(case: Case, small_drop, small_home, copy_of, tmp_path):
    drop = copy_of(small_drop, "drop")
    _break(drop, case)
    home = _home(small_home, tmp_path, case)

    result = _materialize(home, drop, case.table)
    downstream_ran = any(e.asset_key == DOWNSTREAM for e in result.get_asset_materialization_events())

    if case.outcome == "landing_error":
        assert not result.success
        assert case.expectation in _root_error(result)
        assert not downstream_ran
        return

    [evaluation] = [
        e for e in result.get_asset_check_evaluations() if e.asset_key == raw_asset_key(case.table)
    ]
    failed = {f["expectation"]: f for f in evaluation.metadata["failed_expectations"].value}
    assert case.expectation in failed, failed.keys()
    assert case.expectation in evaluation.description
    finding = failed[case.expectation]
    assert finding["outcome"] == case.outcome
    assert finding["reason"] and finding["reason"] in evaluation.description

    if case.outcome == "blocking":
        assert not evaluation.passed
        assert not downstream_ran, "a blocking failure must stop what depends on the table"
        if case.key:  # the message names offending rows by key
            assert finding["unexpected_count"] == case.bad_rows
            assert all(case.key in row for row in finding["sample"])
    else:
        assert evaluation.passed
        assert downstream_ran, "warnings and quarantines do not block"

    if case.outcome == "quarantined":
        assert finding["quarantined"] == case.bad_rows
        [ledger] = [e for e in result.get_asset_materialization_events() if e.asset_key == DOWNSTREAM]
        ledger_meta = ledger.materialization.metadata
        assert ledger_meta["by_table"].value == {case.table: case.bad_rows}
        assert case.expectation in ledger_meta["ledger"].value
        with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
            quarantined = con.execute(
                f"SELECT DISTINCT q.key_value, r.{case.key} FROM {QUARANTINE} q "
                f"JOIN raw.{case.table} r ON r._load_id = q.load_id AND r._source_row = q.source_row "
                f"WHERE q.table_name = ?",
                [case.table],
            ).fetchall()
            raw_rows = con.execute(f"SELECT count(*) FROM raw.{case.table}").fetchone()[0]
        assert {k for k, _ in quarantined} == _expected_bad_keys(small_drop, case)
        assert all(k == raw_key for k, raw_key in quarantined)  # (load id, source row) point at the raw row
        source_rows = duckdb.sql(f"SELECT count(*) FROM '{drop / (case.table + '.parquet')}'").fetchall()[0][
            0
        ]
        assert raw_rows == source_rows, "quarantined rows stay in raw: nothing is lost"
    else:
        assert evaluation.metadata["quarantined_rows"].value == 0
