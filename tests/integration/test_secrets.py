"""Secrets: canary credentials in every source, the whole pipeline run, everything it wrote searched.

The CRM comes from a local HTTP server in Salesforce's REST shape (fixtures/fake_crm.py)
that serves the tiny demo company and accepts only the canary bearer token;
the finance tables come from a real PostgreSQL database whose login password is a canary. Both
secrets reach the pipeline only through the environment (`SALESALIGN_API_TOKEN`,
`SALESALIGN_FINANCE_DB_URL`), as `salesalign run` is used in production. Four runs, each with its
own SALESALIGN_HOME and Dagster instance (the first two through the CLI, side by side; the database
failures, which stop at the first step, in this process with the resources built the same way):

- ok: both sources accepted; the whole pipeline (extract, checks, dbt, analytics, publish);
- the API rejects a revoked token (401); the finance database is unreachable; its password is
  wrong. The revoked token and the mistyped password are canaries too: a rejected secret is still
  a secret.

Then every output is searched for the canaries (fixtures/scan_outputs.py): the CLI's stdout and stderr,
every file under each SALESALIGN_HOME (warehouse and serving DuckDB files column by column,
Parquet and CSV exports, the brief, the docs sites, staged pages, the Dagster instance: its SQLite
run and event storage cell by cell, zlib snapshots decompressed, compute logs), the Dagster
instance queried (runs, every event with its metadata and errors, job and plan snapshots), and
the dbt logs and targets written during the test. Expected: 0 occurrences. A control test proves
the scan finds a canary in each of those formats.

PostgreSQL: a throwaway cluster with password (scram-sha-256) authentication when `initdb` is
installed (`.ci/run` installs it), else SALESALIGN_TEST_POSTGRES_URL; the cases needing it skip,
saying why, when neither is available.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
import urllib.parse
import zlib
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
import yaml
from fixtures.cli import SALESALIGN
from fixtures.fake_crm import FakeCrm, serving
from fixtures.network import free_port
from fixtures.postgres_cluster import initdb, throwaway_cluster
from fixtures.scan_outputs import scan

from salesalign import contract

REPO = Path(__file__).resolve().parents[2]
TOKEN = f"tok-canary-{secrets.token_hex(12)}"  # the API token
REVOKED_TOKEN = f"tok-revoked-canary-{secrets.token_hex(12)}"  # a token the API no longer accepts
# the finance database password and what a user mistyped; with characters a URL must percent-encode,
# so the scan also looks for the encoded forms
PASSWORD = f"pw-canary-{secrets.token_hex(12)}/@:%"
WRONG_PASSWORD = f"pw-wrong-canary-{secrets.token_hex(12)}+&#"
CANARIES = (TOKEN, REVOKED_TOKEN, PASSWORD, WRONG_PASSWORD)
NAME = f"salesalign_finance_{secrets.token_hex(4)}"  # the finance database and its user
CRM_TABLES = [t.name for t in contract.TABLES if t.domain == "crm"]
FINANCE_TABLES = [t.name for t in contract.TABLES if t.domain == "finance"]
STARTED = time.time()


# ------------------------------------------------------------------ PostgreSQL with a password


class Postgres:
    """A server where user NAME logs in with PASSWORD into database NAME (unique per session, so a
    shared server can host concurrent sessions)."""

    def __init__(self, admin_url: str, enforces_passwords: bool, stop=None):
        self.admin_url, self.enforces_passwords, self.stop = admin_url, enforces_passwords, stop
        url = sa.make_url(admin_url)
        self.host, self.port = url.host, url.port or 5432

    def url(self, password: str, port: int | None = None) -> str:
        secret = urllib.parse.quote(password, safe="")
        return f"postgresql+psycopg://{NAME}:{secret}@{self.host}:{port or self.port}/{NAME}"


@pytest.fixture(scope="module")
def postgres(tmp_path_factory):
    """Our own cluster with password authentication (a wrong password is rejected), else the server
    of SALESALIGN_TEST_POSTGRES_URL."""
    stack = ExitStack()
    if initdb() is not None:
        pg = Postgres(stack.enter_context(throwaway_cluster(secrets.token_hex(16))), True, stop=stack.close)
    else:
        url = os.environ.get("SALESALIGN_TEST_POSTGRES_URL")
        if not url:
            pytest.skip(
                "no PostgreSQL: neither initdb (/usr/lib/postgresql/*/bin) nor "
                "SALESALIGN_TEST_POSTGRES_URL (.ci/run provides both)"
            )
        pg = Postgres(url, enforces_passwords=False)
    admin = sa.create_engine(pg.admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as con:
        con.execute(sa.text(f"CREATE ROLE {NAME} LOGIN PASSWORD '{PASSWORD}'"))
        con.execute(sa.text(f"CREATE DATABASE {NAME} OWNER {NAME}"))
    if pg.stop is None:  # a shared server: does it check passwords at all (trust auth does not)?
        try:
            with sa.create_engine(pg.url(WRONG_PASSWORD)).connect():
                pass
        except sa.exc.OperationalError:
            pg.enforces_passwords = True
    yield pg
    with admin.connect() as con:
        con.execute(sa.text(f"DROP DATABASE IF EXISTS {NAME} WITH (FORCE)"))
        con.execute(sa.text(f"DROP ROLE IF EXISTS {NAME}"))
    admin.dispose()
    if pg.stop:
        pg.stop()


# ------------------------------------------------------------------ the sources, filled from the demo


def _rows(path: Path) -> list[dict]:
    return pq.read_table(path).to_pylist()


def _json_value(v):
    return v if v is None or isinstance(v, bool | int | float) else str(v)


def _identity_profile(name: str, tables: list[str]) -> dict:
    """Each contract table from a source object of the same name, every column as is."""
    return {
        "name": name,
        "tables": {t: {"file": t, "fields": {c: c for c in contract.table(t).column_names}} for t in tables},
    }


@pytest.fixture(scope="module")
def crm(tiny_drop):
    """The Salesforce-shaped server, serving the demo's CRM tables; only TOKEN is accepted."""
    state = FakeCrm(page_size=2000)
    state.token = TOKEN
    modstamp = "2024-03-01T09:00:00.000+0000"
    for table in CRM_TABLES:
        key = contract.table(table).primary_key[0]
        for row in _rows(tiny_drop / f"{table}.parquet"):
            record = {k: _json_value(v) for k, v in row.items()}
            state.put(table, {"Id": str(row[key]), "SystemModstamp": modstamp, **record})
    with serving(state):
        yield state


@pytest.fixture(scope="module")
def finance_db(postgres, tiny_drop) -> Postgres:
    """The demo's finance tables in PostgreSQL (text columns; the profile casts to the contract)."""
    engine = sa.create_engine(postgres.url(PASSWORD))
    meta = sa.MetaData()
    with engine.begin() as con:
        for table in FINANCE_TABLES:
            t = sa.Table(table, meta, *(sa.Column(c, sa.Text) for c in contract.table(table).column_names))
            t.create(con)
            rows = [
                {k: None if v is None else str(v) for k, v in r.items()}
                for r in _rows(tiny_drop / f"{table}.parquet")
            ]
            if rows:
                con.execute(t.insert(), rows)
    engine.dispose()
    return postgres


# ------------------------------------------------------------------ the runs


def _start(home: Path, env: dict[str, str]) -> subprocess.Popen:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SALESALIGN_", "DAGSTER_"))}
    home.mkdir(parents=True)
    # the output goes to files under the home: searched with everything else there
    with (home / "cli-stdout.txt").open("w") as out, (home / "cli-stderr.txt").open("w") as err:
        return subprocess.Popen(
            [str(SALESALIGN), "run", "--home", str(home)],
            cwd=REPO,
            env={**base, "GX_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1", **env},
            stdout=out,
            stderr=err,
        )


def _in_process(home: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """The failing first step (the source snapshot) of a run in this process, with the resources
    `salesalign run` builds from the environment and a Dagster instance under the home; its log
    output and the failure's error chain captured (saves a CLI start per failure path)."""
    import contextlib
    import io
    import logging

    import dagster as dg

    from orchestration.extract import assets as extract_assets
    from orchestration.operations import latest_partition
    from orchestration.resources import build_resources
    from salesalign.settings import Settings

    (home / "dagster").mkdir(parents=True)
    out, err = io.StringIO(), io.StringIO()
    handler = logging.StreamHandler(err)
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        for key, value in {**env, "SALESALIGN_HOME": str(home)}.items():
            mp.setenv(key, value)
        logging.getLogger().addHandler(handler)
        try:
            resources = build_resources(Settings.from_env())
            with dg.instance_for_test(temp_dir=str(home / "dagster")) as instance:
                result = dg.materialize(
                    extract_assets,
                    resources={k: resources[k] for k in ("source", "warehouse")},
                    instance=instance,
                    selection=["extract/source_snapshot"],
                    partition_key=latest_partition(),
                    raise_on_error=False,
                )
        finally:
            logging.getLogger().removeHandler(handler)
    for event in result.all_events:
        error = event.step_failure_data.error if event.is_step_failure else None
        while error is not None:  # what the CLI prints is the bottom of this chain
            err.write(f"failed step {event.step_key}: {error.message}{''.join(error.stack)}\n")
            error = error.cause
    (home / "cli-stdout.txt").write_text(out.getvalue())
    (home / "cli-stderr.txt").write_text(err.getvalue())
    return subprocess.CompletedProcess(
        ["in-process"], 0 if result.success else 1, out.getvalue(), err.getvalue()
    )


@pytest.fixture(scope="module")
def runs(crm, finance_db, tmp_path_factory):
    """The four runs: two CLI runs side by side, the database failures in this process meanwhile
    (separate homes and Dagster instances)."""
    root = tmp_path_factory.mktemp("secrets-runs")
    crm_profile, finance_profile = root / "crm.yml", root / "finance.yml"
    crm_profile.write_text(yaml.safe_dump(_identity_profile("crm-api", CRM_TABLES)))
    finance_profile.write_text(yaml.safe_dump(_identity_profile("erp", FINANCE_TABLES)))
    env = {
        "SALESALIGN_SOURCE": "salesforce",
        "SALESALIGN_API_URL": crm.url,
        "SALESALIGN_API_TOKEN": TOKEN,
        "SALESALIGN_PROFILE": str(crm_profile),
        "SALESALIGN_FINANCE_DB_URL": finance_db.url(PASSWORD),
        "SALESALIGN_FINANCE_DB_PROFILE": str(finance_profile),
    }
    unreachable = finance_db.url(PASSWORD, port=free_port())  # nothing listens there
    started = {
        "ok": _start(root / "ok", env),
        # a revoked token: the server answers 401
        "token_rejected": _start(root / "token_rejected", {**env, "SALESALIGN_API_TOKEN": REVOKED_TOKEN}),
    }
    try:
        done = {
            "db_unreachable": _in_process(
                root / "db_unreachable", {**env, "SALESALIGN_FINANCE_DB_URL": unreachable}
            ),
            "wrong_password": _in_process(
                root / "wrong_password", {**env, "SALESALIGN_FINANCE_DB_URL": finance_db.url(WRONG_PASSWORD)}
            ),
        }
        for name, proc in started.items():
            proc.wait(timeout=900)
            out, err = ((root / name / f"cli-{s}.txt").read_text() for s in ("stdout", "stderr"))
            done[name] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    finally:
        for proc in started.values():  # the CLI runs this fixture started, if it failed meanwhile
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return root, done


def _instance_texts(dagster_home: Path) -> dict[str, str]:
    """Everything the Dagster instance holds, queried through its API and serialized."""
    import dagster as dg

    texts = {}
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        for run in instance.get_runs():
            where = f"{dagster_home} run {run.run_id}"
            texts[f"{where} record"] = dg.serialize_value(run)
            texts[f"{where} events"] = "\n".join(dg.serialize_value(e) for e in instance.all_logs(run.run_id))
            if run.job_snapshot_id:
                snapshot = instance.get_job_snapshot(run.job_snapshot_id)
                texts[f"{where} job snapshot"] = dg.serialize_value(snapshot)
            if run.execution_plan_snapshot_id:
                texts[f"{where} plan snapshot"] = dg.serialize_value(
                    instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)
                )
    return texts


# ------------------------------------------------------------------ the tests


@pytest.mark.slow  # a whole run of the pipeline
def test_the_canaries_were_really_used(runs, tiny_drop):
    """The ok run read both sources with the canaries; each failure failed for its own reason."""
    root, done = runs
    ok = done["ok"]
    assert ok.returncode == 0, ok.stdout[-3000:] + ok.stderr[-3000:]
    with duckdb.connect(str(root / "ok" / "warehouse.duckdb"), read_only=True) as con:
        for table in ("accounts", "opportunities", "activities", "invoices", "fx_rates"):
            landed = con.execute(f"SELECT count(*) FROM raw.{table}").fetchone()[0]
            assert landed == pq.read_metadata(tiny_drop / f"{table}.parquet").num_rows > 0, table
        assert con.execute("SELECT count(*) FROM marts.fct_deal_margin").fetchone()[0] > 0
    home = root / "ok"
    assert (home / "reports" / "alignment-brief.html").exists() and (home / "serving.duckdb").exists()
    assert (home / "exports" / "marts" / "fct_deal_margin.csv").exists()
    assert (home / "docs" / "dbt" / "index.html").exists()

    rejected = done["token_rejected"]
    assert rejected.returncode == 1
    assert "HTTP 401" in rejected.stderr and "SALESALIGN_API_TOKEN" in rejected.stderr
    unreachable = done["db_unreachable"]
    assert unreachable.returncode == 1 and "cannot read table" in unreachable.stderr
    assert "refused" in unreachable.stderr.lower() or "connect" in unreachable.stderr.lower()


@pytest.mark.slow  # a whole run of the pipeline
def test_a_wrong_database_password_fails_clearly(runs, finance_db):
    if not finance_db.enforces_passwords:
        pytest.skip("the shared PostgreSQL server uses trust authentication: any password is accepted")
    wrong = runs[1]["wrong_password"]
    assert wrong.returncode == 1 and "password authentication failed" in wrong.stderr


@pytest.mark.slow  # a whole run of the pipeline
def test_no_canary_anywhere(runs):
    root, done = runs
    texts = {f"{name} stdout": p.stdout for name, p in done.items()}
    texts |= {f"{name} stderr": p.stderr for name, p in done.items()}
    for name in done:
        texts |= _instance_texts(root / name / "dagster")
    dbt_written = [
        p
        for d in (REPO / "dbt_project" / "logs", REPO / "dbt_project" / "target")
        if d.is_dir()
        for p in d.rglob("*")
        if p.is_file() and p.stat().st_mtime >= STARTED
    ]
    result = scan(CANARIES, [root, *dbt_written], texts)
    figures = {
        "canaries": len(CANARIES),
        "runs": {n: p.returncode for n, p in done.items()},
        "files": result.files,
        "duckdb_columns": result.duckdb_columns,
        "parquet_columns": result.parquet_columns,
        "sqlite_cells": result.sqlite_cells,
        "texts": result.texts,
        "dbt_files_written_during_the_test": len(dbt_written),
        "hits": result.hits,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    (REPO / "test-artifacts").mkdir(exist_ok=True)
    (REPO / "test-artifacts" / "secrets-scan.json").write_text(json.dumps(figures, indent=2))
    # the scan really covered everything: events of 4 runs, the warehouse, every export
    assert result.duckdb_columns > 500 and result.parquet_columns > 300 and result.sqlite_cells > 1000
    assert len(texts) >= 8 + 4 * 3
    assert result.hits == []


def test_the_scan_finds_a_canary_in_every_format(tmp_path):
    """Control: the canary planted where raw bytes would not show it is found in each format."""
    import sqlite3

    needle = f"planted-{secrets.token_hex(8)}"
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:  # compressed columnar storage
        con.execute("CREATE SCHEMA marts")
        con.execute("CREATE TABLE marts.t AS SELECT i, 'row ' || (i % 7) AS note FROM range(200000) r(i)")
        con.execute("UPDATE marts.t SET note = ? WHERE i = 123456", [f"x {needle} y"])
        con.execute("CHECKPOINT")
        con.execute(f"COPY marts.t TO '{tmp_path / 'e.parquet'}' (FORMAT parquet, COMPRESSION zstd)")
    db = sqlite3.connect(tmp_path / "runs.db")  # Dagster's zlib-compressed snapshot blobs
    db.execute("CREATE TABLE snapshots (body BLOB)")
    db.execute("INSERT INTO snapshots VALUES (?)", [zlib.compress(json.dumps({"secret": needle}).encode())])
    db.commit()
    db.close()
    import base64

    svg = f"<svg><text>{needle}</text></svg>".encode()
    (tmp_path / "meta.md").write_text(f"![chart](data:image/svg+xml;base64,{base64.b64encode(svg).decode()})")
    planted = [("w.duckdb", "duckdb"), ("e.parquet", "parquet"), ("runs.db", "zlib"), ("meta.md", "base64")]
    for path, kind in planted:
        found = scan([needle], [tmp_path / path])
        assert found.hits and all(needle in h for h in found.hits), (kind, found.hits)
        if kind in ("zlib", "base64"):  # where a plain grep of the bytes would have missed it
            assert needle.encode() not in (tmp_path / path).read_bytes(), kind
    hits = scan([needle], [tmp_path / "w.duckdb"]).hits  # found through the table, not only the bytes
    assert any("marts.t.note (1 rows)" in h for h in hits), hits
    assert scan([needle], texts={"stderr": f"error: {needle}"}).hits == [f"stderr: {needle}"]
    assert scan(["absent-" + needle], [tmp_path]).hits == []


def _resources_with_canaries(monkeypatch, tmp_path):
    from orchestration.resources import build_resources
    from salesalign.settings import Settings

    monkeypatch.setenv("SALESALIGN_API_TOKEN", TOKEN)
    secret = urllib.parse.quote(PASSWORD, safe="")
    monkeypatch.setenv("SALESALIGN_FINANCE_DB_URL", f"postgresql+psycopg://u:{secret}@127.0.0.1:1/f")
    monkeypatch.setenv("SALESALIGN_HOME", str(tmp_path))
    settings = Settings.from_env(
        {
            "SALESALIGN_HOME": str(tmp_path),
            "SALESALIGN_SOURCE": "hubspot",
            "SALESALIGN_API_URL": "http://x",
            "SALESALIGN_FINANCE_DB_PROFILE": "erp.yml",
        }
    )
    assert not any(c in repr(settings) for c in CANARIES)  # Settings holds no credential at all
    return build_resources(settings)["source"]


def test_resources_hold_env_references_and_resolve_them_only_at_run_time(monkeypatch, tmp_path):
    import dagster as dg

    source = _resources_with_canaries(monkeypatch, tmp_path)
    assert isinstance(source.api_token, dg.EnvVar) and source.api_token.env_var_name == "SALESALIGN_API_TOKEN"
    assert source.finance_db_url.env_var_name == "SALESALIGN_FINANCE_DB_URL"
    assert not any(c in repr(source) for c in CANARIES)
    resolved = source.process_config_and_initialize()  # what a run does when it initialises it
    assert resolved.api_token == TOKEN  # control: resolved at run time
    assert urllib.parse.quote(PASSWORD, safe="") in resolved.finance_db_url


def test_sensor_run_config_names_the_variables_not_the_values(monkeypatch, tmp_path):
    """The file-drop sensor's run config is stored with every run: it must name the variables."""
    import dagster as dg

    from orchestration.extract import source_run_config

    source = _resources_with_canaries(monkeypatch, tmp_path)
    config = source_run_config(source, kind="files", path=str(tmp_path))
    text = json.dumps(config) + dg.serialize_value(dg.RunRequest(run_config=config))
    assert config["resources"]["source"]["config"]["api_token"] == {"env": "SALESALIGN_API_TOKEN"}
    assert config["resources"]["source"]["config"]["finance_db_url"] == {"env": "SALESALIGN_FINANCE_DB_URL"}
    assert not any(c in text for c in CANARIES)


def test_finance_db_errors_mask_the_password_in_every_form():
    """The password can show up as typed, percent-encoded (as in the URL) or form-encoded."""
    import urllib.parse

    from salesalign.extract.finance_db import FinanceDbExtractor

    password = "p/@:%s+&#w"
    url = f"postgresql://u:{urllib.parse.quote(password, safe='')}@db:5432/finance"
    extractor = FinanceDbExtractor(url=url)
    forms = [password, urllib.parse.quote(password, safe=""), urllib.parse.quote_plus(password), url]
    masked = extractor._mask(" | ".join(f"failed: {f}" for f in forms))
    assert not any(f in masked for f in forms), masked
    assert masked.count("***") == len(forms)
