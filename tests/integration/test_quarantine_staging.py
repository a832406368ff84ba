"""Quarantined raw rows never reach staging (and so the marts); the record falls back to its \
last good version."""

from __future__ import annotations

import shutil
from datetime import datetime

import duckdb
from fixtures.warehouse import query, run_dbt

from salesalign.quality.quarantine import QuarantinedRow, replace_quarantine


def test_staging_skips_quarantined_rows(tmp_path, small_marts_home):
    shutil.copy(small_marts_home / "warehouse.duckdb", tmp_path / "warehouse.duckdb")
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        # Two invoices and the only version of one opportunity are quarantined.
        invoices = con.execute(
            "SELECT _load_id, _source_row, invoice_id, amount FROM raw.invoices ORDER BY invoice_id LIMIT 2"
        ).fetchall()
        opportunity = con.execute(
            "SELECT _load_id, _source_row, opportunity_id FROM raw.opportunities "
            "WHERE NOT is_closed ORDER BY opportunity_id LIMIT 1"
        ).fetchone()
        now = datetime(2026, 1, 1)
        replace_quarantine(con, "invoices", [invoices[0][0]], [
            QuarantinedRow(load, row, key, "expect_test", "amount", str(amount), "test")
            for load, row, key, amount in invoices
        ], now)
        replace_quarantine(con, "opportunities", [opportunity[0]], [
            QuarantinedRow(opportunity[0], opportunity[1], opportunity[2], "expect_test", None, None, "test")
        ], now)
        raw_invoices = con.execute("SELECT count(*) FROM raw.invoices").fetchone()[0]

    # Quarantining rows that were already built is a restatement: rebuild the facts in full (in a
    # run, landing -> checks -> dbt, new quarantine rows only ever concern the new loads).
    run_dbt(
        tmp_path, "build", "--full-refresh", "--select", "stg_finance__invoices+", "stg_crm__opportunities+"
    )
    staged = query(tmp_path, "SELECT invoice_id FROM staging.stg_finance__invoices")["invoice_id"]
    assert len(staged) == raw_invoices - 2
    assert not set(staged) & {key for _, _, key, _ in invoices}
    opportunities = query(tmp_path, "SELECT opportunity_id FROM staging.stg_crm__opportunities")[
        "opportunity_id"
    ]
    assert opportunity[2] not in set(opportunities)
    # Nothing is lost: the raw rows are still there.
    assert query(tmp_path, "SELECT count(*) AS n FROM raw.invoices")["n"][0] == raw_invoices
