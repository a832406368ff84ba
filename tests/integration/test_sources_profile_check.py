"""`salesalign profile check` on the worked flat export of docs/sources.md; a malformed profile fails
the extraction in one attempt; custom attributes land in raw.attributes and causal.yml reads them;
strategy.yml and causal.yml are the demo's only for the demo source."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import duckdb
import pytest
import yaml
from fixtures.cli import SALESALIGN, cli_env

from orchestration.extract import source_snapshot
from orchestration.operations import latest_partition
from orchestration.resources import SourceResource, WarehouseResource, analysis_resource
from salesalign.analytics import alignment
from salesalign.analytics.config import NOT_DECLARED, load_config, read_deals
from salesalign.extract import profiles
from salesalign.extract.attributes import land_source_attributes
from salesalign.extract.mapped import MappedFileSource
from salesalign.settings import REPO, Settings

FLAT = Path(__file__).resolve().parents[1] / "data" / "flat_export"


def _check(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(SALESALIGN), "profile", "check", *args],
        capture_output=True, text=True, env=cli_env(), timeout=120,
    )


def test_profile_check_prints_counts_unused_columns_assumptions_of_the_worked_example(tmp_path):
    started = time.monotonic()
    run = _check("--path", str(FLAT), "--profile", str(FLAT / "profile.yml"))
    assert run.returncode == 0, run.stdout + run.stderr
    assert time.monotonic() - started < 30
    out = run.stdout.splitlines()
    for line in (
        "  opportunities: 11 rows read, 1 filtered, 10 mapped (from opportunities.csv)",
        "  accounts: 11 rows read, 1 filtered, 5 mapped (derived; from opportunities.csv)",
        "  fx_rates: 365 rows read, 0 filtered, 365 mapped (static)",
        "  opportunities.csv: Notes",  # the only column no table reads
        "  opportunities: competitor_type, deal_size, days_in_stage",
        "  lookup default opportunities.lead_source = 'outbound': used on 1 of 10 rows",
        "  derived table accounts: one row per distinct account_id of opportunities.csv (10 rows -> 5)",
        "  default accounts.region = 'unknown': used on 1 of 10 rows",
        "  static table fx_rates: one row per day 2023-01-01 .. 2023-12-31 (365 rows)",
        "errors: none",
        "the profile maps the export",
    ):
        assert line in out, (line, run.stdout)
    # the export names no reps or products: nothing stands in for them
    assert not [line for line in out if line.startswith(("  reps:", "  products:"))], run.stdout
    # nothing is written: no warehouse, no staging next to the export or in the working directory
    assert sorted(p.name for p in FLAT.iterdir()) == ["opportunities.csv", "profile.yml"]


def test_profile_check_reports_errors_with_file_row_and_line_and_exits_1(tmp_path):
    drop = tmp_path / "drop"
    drop.mkdir()
    text = (FLAT / "opportunities.csv").read_text().replace("O-1004,Bolt,Pacific,Telesales,1,40,6000,Loss",
                                                            "O-1004,Bolt,Pacific,Telesales,1,40,6000,Maybe")
    (drop / "opportunities.csv").write_text(text.replace("2023-05-02", "02.05.2023"))
    doc = yaml.safe_load((FLAT / "profile.yml").read_text())
    doc["tables"]["opportunities"]["fields"]["stage"] = {
        "column": "Opportunity Result", "map": {"Won": "closed_won", "Loss": "closed_lost"},
        "map_default": "error",
    }
    doc["tables"]["fx_rates"]["fields"]["usd_per_unit"] = {"expr": "upper(nosuch)"}
    profile = tmp_path / "profile.yml"
    profile.write_text(yaml.safe_dump(doc, sort_keys=False))
    run = _check("--path", str(drop), "--profile", str(profile))
    assert run.returncode == 1
    assert "the profile does NOT map the export" in run.stdout
    out = run.stdout
    assert "opportunities.csv row 4 (header is row 0), column Opportunity Result: unmapped value Maybe" in out
    assert "opportunities.csv row 8 (header is row 0), column Created: value 02.05.2023 does not match" in out
    assert f"{profile}:" in run.stdout and "tables.fx_rates.fields.usd_per_unit: bad SQL" in run.stdout
    missing = _check("--path", str(tmp_path / "nowhere"), "--profile", str(profile))
    assert missing.returncode == 1 and "does not exist" in missing.stdout


def test_a_malformed_profile_fails_the_extraction_in_one_attempt(tmp_path):
    doc = yaml.safe_load((FLAT / "profile.yml").read_text())
    doc["tables"]["opportunities"]["fields"]["amount"] = {"expr": "nosuch(1)"}
    bad = tmp_path / "bad.yml"
    bad.write_text(yaml.safe_dump(doc, sort_keys=False))
    source = SourceResource(kind="files", path=str(FLAT), profile=str(bad), staging_dir=str(tmp_path / "s"))
    started = time.monotonic()
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            [source_snapshot],
            resources={"source": source, "warehouse": WarehouseResource(home=str(tmp_path / "home"))},
            partition_key=latest_partition(),
            instance=instance, raise_on_error=False,
        )
    assert not result.success
    kinds = [e.event_type for e in result.all_events]
    assert kinds.count(dg.DagsterEventType.STEP_UP_FOR_RETRY) == 0
    assert kinds.count(dg.DagsterEventType.STEP_FAILURE) == 1
    [failure] = [e for e in result.all_events if e.is_step_failure]
    assert "bad.yml:" in str(failure.step_failure_data.error) or "bad.yml:" in (
        failure.step_failure_data.user_failure_data.description or ""
    )
    assert time.monotonic() - started < 30  # the retry policy would wait 5 s, 10 s, 20 s


def test_mapped_source_logs_counts_and_lands_attributes_that_causal_yml_reads(tmp_path):
    source = MappedFileSource(FLAT, profiles.load_profile(FLAT / "profile.yml"), tmp_path / "staging")
    described = source.prepare()
    assert described["rows"]["accounts"] == {"read": 11, "filtered": 1, "mapped": 5}
    assert described["attributes"] == {"opportunities": ["competitor_type", "deal_size", "days_in_stage"]}
    again = MappedFileSource(FLAT, profiles.load_profile(FLAT / "profile.yml"), tmp_path / "staging")
    assert again.prepare()["rows"] == described["rows"]  # counts survive the staging cache
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    [landed] = land_source_attributes(con, source, "opportunities")
    assert (landed.rows, landed.skipped) == (30, False)
    assert land_source_attributes(con, again, "opportunities")[0].skipped  # same file: nothing added
    assert land_source_attributes(con, source, "accounts") == []
    con.execute("CREATE SCHEMA marts")
    [opps] = source.batches("opportunities")
    con.execute("""CREATE TABLE marts.fct_deal_margin AS SELECT opportunity_id, account_id,
                   'house' AS rep_id, is_won FROM read_parquet(?)""", [str(opps.path)])
    causal = yaml.safe_load((REPO / "causal.yml").read_text())
    causal["confounders"] = {
        "competitor_type": {"attribute": "opportunities.competitor_type", "kind": "categorical"},
        "days_in_stage": {"attribute": "opportunities.days_in_stage", "kind": "numeric"},
        "budget_owner": {"attribute": "opportunities.budget_owner", "kind": "categorical"},
    }
    causal["segment"] = {"attribute": "opportunities.deal_size"}
    for p in causal["practices"].values():
        p["confounders"] = list(causal["confounders"])
    path = tmp_path / "causal.yml"
    path.write_text(yaml.safe_dump(causal))
    frame, missing = read_deals(con, load_config(path))
    row = frame.set_index("opportunity_id").loc["O-1001"]
    assert (row.competitor_type, row.days_in_stage, row.segment_id) == ("Known", 76.0, "4")
    assert "budget_owner" not in frame and "budget_owner" in missing
    assert any("attribute opportunities.budget_owner is not in raw.attributes" in m
               and "opportunities.competitor_type" in m for m in missing)
    bad = {**causal, "confounders": {"x": {"attribute": "deals.x", "kind": "numeric"}}}
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(ValueError, match="attribute 'deals.x' must be <entity>.<name>"):
        load_config(path)


def test_strategy_and_causal_yml_default_to_the_demo_s_only_for_the_demo(tmp_path):
    demo = analysis_resource(Settings.defaults())
    assert (demo.causal_yml, demo.strategy_yml) == (str(REPO / "causal.yml"), str(REPO / "strategy.yml"))
    files = Settings.defaults().replace(source="files", source_path=str(tmp_path))
    assert (analysis_resource(files).causal_yml, analysis_resource(files).strategy_yml) == (None, None)
    own = tmp_path / "mine.yml"
    own.write_text((REPO / "strategy.yml").read_text())
    given = files.replace(strategy_yml=str(own))
    assert analysis_resource(given).strategy_yml == str(own)
    # no strategy: one status row per alignment table saying so; no causal.yml: effects say so
    tables = alignment.compute(SimpleNamespace(deals=None, strategy=alignment.load_strategy(None)))
    for name, frame in tables.items():
        assert frame.status.tolist() == [alignment.NOT_DECLARED], name
    assert "no strategy declared for this source" in alignment.NOT_DECLARED
    assert not load_config(None).declared and "no causal assumptions declared" in NOT_DECLARED
