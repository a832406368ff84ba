"""Mapping profiles: validation, the shipped profiles on small exports, formats, errors, determinism."""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from salesalign.extract import profiles
from salesalign.extract.mapped import MappedFileSource
from salesalign.extract.sources import SourceError
from salesalign.extract.watermarks import Watermark

MAVEN = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "maven_crm"


def _profile(doc: dict) -> profiles.Profile:
    return profiles.parse_profile(doc, yaml.safe_dump(doc))


def _rows(path: Path, sql: str = "SELECT * FROM t") -> list[tuple]:
    con = duckdb.connect()
    con.execute(f"CREATE VIEW t AS SELECT * FROM read_parquet('{path}')")
    return con.execute(sql).fetchall()


@pytest.mark.parametrize("name", ["salesforce", "hubspot", "maven"])
def test_shipped_profiles_load(name):
    profile = profiles.load_profile(name)
    assert profile.name == name and profile.tables
    assert name in profiles.shipped_profiles()


@pytest.mark.parametrize(
    ("tables", "message"),
    [
        ({"deals": {"file": "x", "fields": {}}}, "'deals' is not a raw contract table"),
        (
            {"products": {"file": "x", "fields": {"product_id": "id", "price": "p", "updated_at": "u"}}},
            "'price' is not a column of products",
        ),
        (
            {"products": {"file": "x", "fields": {"product_id": "id"}}},
            "required contract column(s) not mapped: updated_at",
        ),
        (
            {
                "products": {
                    "file": "x",
                    "fields": {"product_id": {"column": "a", "value": 1}, "updated_at": "u"},
                }
            },
            "give exactly one of",
        ),
        (
            {"products": {"file": "x", "fields": {"product_id": {"colum": "a"}, "updated_at": "u"}}},
            "unknown key(s) ['colum']",
        ),
        (
            {
                "products": {
                    "file": "x",
                    "fields": {
                        "product_id": "id",
                        "updated_at": "u",
                        "list_price": {
                            "lookup": {"input": "nope", "key": "k", "match": "product_id", "value": "v"}
                        },
                    },
                }
            },
            "lookup input 'nope' is not declared",
        ),
        (
            {
                "products": {
                    "file": "x",
                    "csv": {"sep": ";"},
                    "fields": {"product_id": "id", "updated_at": "u"},
                }
            },
            "unknown csv option(s) ['sep']",
        ),
    ],
)
def test_profile_validation_names_the_problem(tables, message):
    with pytest.raises(profiles.ProfileError) as err:
        _profile({"name": "bad", "tables": tables})
    assert message in str(err.value)


def test_unknown_profile_name_lists_the_shipped_ones():
    with pytest.raises(profiles.ProfileError, match="neither a shipped profile .*maven.* nor a file"):
        profiles.load_profile("pipedrive")


def test_csv_delimiter_encoding_date_format_maps_and_derived_fields(tmp_path):
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "Produkte.csv").write_bytes(
        "Nr;Bezeichnung;Preis;Geändert\nP1;Bürostuhl;12,50;31.12.2024\n".encode("latin-1")
    )
    profile = _profile(
        {
            "name": "erp-de",
            "tables": {
                "products": {
                    "file": "Produkte",
                    "csv": {"delimiter": ";", "encoding": "latin-1"},
                    "fields": {
                        "product_id": "Nr",
                        "product_name": {"column": "Bezeichnung", "map": {"Bürostuhl": "Office chair"}},
                        "list_price": {"expr": "replace(Preis, ',', '.')", "columns": ["Preis"]},
                        "product_family": {"derived": "upper(left(product_id, 1))"},
                        "updated_at": {"column": "Geändert", "format": "%d.%m.%Y"},
                    },
                }
            },
        }
    )
    out = profiles.materialise(drop, profile, tmp_path / "out")["products"]
    assert _rows(out.path) == [("P1", "Office chair", "P", 12.5, datetime(2024, 12, 31))]


def test_parquet_and_jsonl_inputs_and_a_folder_of_files(tmp_path):
    drop = tmp_path / "drop"
    (drop / "items").mkdir(parents=True)
    pq.write_table(pa.table({"id": ["a"], "ts": ["2024-01-01T10:00:00Z"]}), drop / "items" / "1.parquet")
    (drop / "items" / "2.jsonl").write_text(json.dumps({"id": "b", "ts": "2024-01-02T10:00:00+02:00"}) + "\n")
    profile = _profile(
        {
            "tables": {
                "products": {
                    "file": "items",
                    "fields": {"product_id": "id", "updated_at": {"column": "ts", "format": "iso8601"}},
                }
            }
        }
    )
    out = profiles.materialise(drop, profile, tmp_path / "out")["products"]
    assert _rows(out.path, "SELECT product_id, updated_at FROM t") == [
        ("a", datetime(2024, 1, 1, 10)),
        ("b", datetime(2024, 1, 2, 8)),
    ]


def test_a_value_that_does_not_fit_names_file_row_and_column(tmp_path):
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "p.csv").write_text("id,price,ts\nA,1.5,2024-01-01\nB,cheap,2024-01-01\n")
    profile = _profile(
        {
            "tables": {
                "products": {
                    "file": "p",
                    "fields": {"product_id": "id", "list_price": "price", "updated_at": "ts"},
                }
            }
        }
    )
    with pytest.raises(
        profiles.ProfileError, match=r"p.csv row 2 \(header is row 0\): list_price=cheap does not fit DECIMAL"
    ):
        profiles.materialise(drop, profile, tmp_path / "out")


def test_missing_source_column_and_unmapped_stage_fail_clearly(tmp_path):
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "p.csv").write_text("id,ts\nA,2024-01-01\n")
    profile = _profile(
        {"tables": {"products": {"file": "p", "fields": {"product_id": "ident", "updated_at": "ts"}}}}
    )
    with pytest.raises(
        profiles.ProfileError, match=r"column 'ident' \(for products.product_id in profile .*\) not found"
    ):
        profiles.materialise(drop, profile, tmp_path / "out")
    (drop / "h.csv").write_text("id,oid,stage,ts\nH1,O1,Won,2024-01-01\nH2,O1,Limbo,2024-01-02\n")
    profile = _profile(
        {
            "tables": {
                "opportunity_stage_history": {
                    "file": "h",
                    "fields": {
                        "history_id": "id",
                        "opportunity_id": "oid",
                        "changed_at": "ts",
                        "stage": {"column": "stage", "map": {"Won": "closed_won"}, "map_default": "error"},
                    },
                }
            }
        }
    )
    with pytest.raises(profiles.ProfileError, match="unmapped value Limbo"):
        profiles.materialise(drop, profile, tmp_path / "out2")


def test_salesforce_export_maps_lookups_and_two_activity_objects(tmp_path):
    drop = tmp_path / "sf"
    drop.mkdir()
    ts = "2024-05-01T10:00:00.000+0000"
    (drop / "Opportunity.csv").write_text(
        "Id,AccountId,OwnerId,StageName,Amount,IsClosed,IsWon,CreatedDate,CloseDate,SystemModstamp,LeadSource\n"
        f"006A,001A,005A,Closed Won,900,true,true,{ts},2024-05-20,{ts},Web\n"
        f"006B,001A,005A,Negotiation/Review,,false,false,{ts},2024-06-30,{ts},Other\n"
    )
    (drop / "OpportunityLineItem.csv").write_text(
        "Id,OpportunityId,Product2Id,Quantity,Subtotal\n00kA,006A,01tA,2,600\n00kB,006A,01tB,1,400\n"
    )
    (drop / "Event.csv").write_text(
        "Id,WhatId,AccountId,OwnerId,Type,StartDateTime,DurationInMinutes\n"
        f"00UA,006A,001A,005A,Discovery Workshop,{ts},120\n00UB,001A,001A,005A,Meeting,{ts},30\n"
    )
    (drop / "Task.csv").write_text(
        "Id,WhatId,AccountId,OwnerId,Type,ActivityDate,CallDurationInSeconds\n00TA,006A,001A,005A,Call,2024-05-02,600\n"
    )
    source = MappedFileSource(drop, profiles.load_profile("salesforce"), tmp_path / "staging")
    described = source.prepare()
    assert "accounts" in described["tables_missing"] and "activities" not in described["tables_missing"]
    [opps] = source.batches("opportunities")
    assert _rows(
        opps.path,
        "SELECT opportunity_id, product_id, quantity, list_amount, amount, discount, "
        "stage, lead_source FROM t ORDER BY 1",
    ) == [
        ("006A", "01tA", 3, 1000, 900, pytest.approx(0.1), "closed_won", "inbound"),
        ("006B", None, None, None, None, None, "negotiation", None),
    ]
    activities = [
        r
        for b in source.batches("activities")
        for r in _rows(b.path, "SELECT activity_id, activity_type, duration_minutes FROM t")
    ]
    # the event on an account (001...) is not a deal activity: filtered out by the profile
    assert sorted(activities) == [("00TA", "call", 10), ("00UA", "discovery_workshop", 120)]


@pytest.fixture
def maven_drop(tmp_path) -> Path:
    if not MAVEN.is_dir():
        pytest.skip(f"the Maven CRM data set is not at {MAVEN} (../shared/data/maven_crm from the repo root)")
    return Path(shutil.copytree(MAVEN, tmp_path / "maven"))


def test_maven_quirks_are_handled_and_staging_is_deterministic(maven_drop, tmp_path):
    source = MappedFileSource(maven_drop, profiles.load_profile("maven"), tmp_path / "staging")
    described = source.prepare()
    assert described["rows_mapped"] == {
        "accounts": 85,
        "products": 7,
        "reps": 35,
        "opportunities": 8800,
        "fx_rates": 457,
    }
    assert set(described["tables_missing"]) == {
        "contacts",
        "opportunity_stage_history",
        "activities",
        "invoices",
        "credit_notes",
        "product_costs",
        "rep_costs",
        "commissions",
        "cost_to_serve",
    }
    assert "opportunities.quantity" in described["assumptions"]
    # nothing the export does not know is assumed: no hire dates, activity or account creation dates
    assert not {"reps.hire_date", "reps.is_active", "accounts.created_at"} & set(described["assumptions"])
    [opps] = source.batches("opportunities")
    by_stage = dict(
        (s, (n, won, blank))
        for s, n, won, blank in _rows(
            opps.path,
            "\n        SELECT stage, count(*), sum(amount), count(*) FILTER (account_id IS NULL)"
            " FROM t GROUP BY 1",
        )
    )
    assert by_stage == {
        "closed_won": (4238, 10005534, 0),
        "closed_lost": (2473, 0, 0),
        "qualification": (1589, None, 1088),
        "prospecting": (500, None, 337),
    }
    assert _rows(opps.path, "SELECT count(*) FROM t WHERE product_id = 'GTXPro'") == [(0,)]
    assert _rows(opps.path, "SELECT count(*), count(list_amount) FROM t WHERE product_id = 'GTX Pro'") == [
        (1480, 1480)
    ]
    [accounts] = source.batches("accounts")
    assert _rows(
        accounts.path, "SELECT count(*) FROM t WHERE industry = 'technolgy' OR country = 'Philipines'"
    ) == [(0,)]
    assert _rows(accounts.path, "SELECT annual_revenue FROM t WHERE account_id = 'Acme Corporation'") == [
        (1100040000,)
    ]

    # a second staging of the same export, elsewhere, is byte-identical: landing skips it by SHA-256
    other = MappedFileSource(maven_drop, profiles.load_profile("maven"), tmp_path / "staging2")
    sha = [
        hashlib.sha256(b.path.read_bytes()).hexdigest()
        for t in ("opportunities", "accounts")
        for b in (source.batches(t) + other.batches(t))
    ]
    assert sha[0] == sha[1] and sha[2] == sha[3]


def test_mapped_source_errors_name_the_folder(tmp_path):
    source = MappedFileSource(tmp_path / "nowhere", profiles.load_profile("maven"), tmp_path / "staging")
    with pytest.raises(SourceError, match="file drop .*nowhere does not exist"):
        source.prepare()


def test_watermark_never_passes_records_changed_during_the_extraction():
    cutoff = datetime(2024, 1, 1, 12, tzinfo=UTC)
    mark = Watermark().advance([("a", "2024-01-01T10:00:00Z"), ("b", "2024-01-01T10:00:00Z")], cutoff)
    assert mark.changed_at == "2024-01-01T10:00:00Z" and mark.already_seen("b", "2024-01-01T10:00:00Z")
    # c changed after the cutoff (while paging): remembered as seen, but the watermark stays
    mark = mark.advance([("c", "2024-01-01T12:30:00Z"), ("d", "2024-01-01T11:00:00Z")], cutoff)
    assert mark.changed_at == "2024-01-01T11:00:00Z"
    assert mark.already_seen("c", "2024-01-01T12:30:00Z") and not mark.already_seen(
        "a", "2024-01-01T10:00:00Z"
    )
    assert mark.pages == 2


# ------------------------------------------------------------------ the language for flat exports

FLAT = Path(__file__).resolve().parents[1] / "data" / "flat_export"


def _flat(tmp_path) -> dict[str, profiles.MappedTable]:
    return profiles.materialise(FLAT, profiles.load_profile(FLAT / "profile.yml"), tmp_path / "out")


def test_group_by_derives_accounts_from_a_flat_file_with_per_column_aggregation(tmp_path):
    accounts = _flat(tmp_path)["accounts"]
    assert accounts.rows == 5 and accounts.report.kind == "derived"
    assert (accounts.report.read, accounts.report.kept) == (11, 10)  # the test record is filtered out
    assert _rows(
        accounts.path,
        "SELECT account_id, account_name, region, employee_count, created_at, updated_at FROM t ORDER BY 1",
    ) == [
        # Acme: size code 3 on two deals, 4 on the latest (max -> 5000); first created, last closed
        ("Acme", "Acme", "northwest", 5000, datetime(2023, 1, 5), datetime(2023, 8, 15)),
        ("Bolt", "Bolt", "pacific", 50, datetime(2023, 2, 10), datetime(2023, 4, 15)),
        ("Cobalt", "Cobalt", "mid-atlantic", 20000, datetime(2023, 3, 15), datetime(2023, 7, 1)),
        ("Delta", "Delta", "southwest", 500, datetime(2023, 4, 10), datetime(2023, 5, 30)),
        ("Echo", "Echo", "unknown", None, datetime(2023, 6, 15), datetime(2023, 7, 10)),  # the default
    ]
    assert accounts.report.defaults == {"region": 1}


def test_scratch_fields_feed_later_fields_and_are_not_landed(tmp_path):
    opps = _flat(tmp_path)["opportunities"]
    names = [f.name for f in pq.read_schema(opps.path)]
    assert "won" not in names and "route" not in names
    assert names == [c.name for c in profiles.contract.table("opportunities").columns]
    assert _rows(opps.path, "SELECT stage, is_won, count(*) FROM t GROUP BY ALL ORDER BY 1") == [
        ("closed_lost", False, 5),
        ("closed_won", True, 5),
    ]


def test_lookup_default_static_tables_and_their_counts(tmp_path):
    mapped = _flat(tmp_path)
    opps = mapped["opportunities"]
    # routes is a static table in the profile; `Other` is not in it: the lookup default is used once
    assert _rows(opps.path, "SELECT opportunity_id, lead_source FROM t WHERE opportunity_id IN "
                 "('O-1002', 'O-1005', 'O-1008') ORDER BY 1") == [
        ("O-1002", "partner"), ("O-1005", "outbound"), ("O-1008", "inbound")
    ]
    assert opps.report.defaults == {"lead_source": 1}
    assert mapped["fx_rates"].rows == 365 and mapped["fx_rates"].report.kind == "static"
    # the export names no rep and no product: none is invented, the deals carry NULL (the unknown member)
    assert "reps" not in mapped and "products" not in mapped
    assert _rows(opps.path, "SELECT count(*), count(owner_rep_id), count(product_id) FROM t") == [(10, 0, 0)]


def test_attributes_are_kept_in_the_contract_side_table_shape(tmp_path):
    opps = _flat(tmp_path)["opportunities"]
    assert [f.name for f in pq.read_schema(opps.attributes)] == [
        c.name for c in profiles.ATTRIBUTES.columns
    ]
    rows = _rows(opps.attributes, "SELECT * FROM t")
    assert len(rows) == 30 and rows[:3] == [
        ("opportunities", "O-1001", "competitor_type", "Known"),
        ("opportunities", "O-1001", "deal_size", "4"),
        ("opportunities", "O-1001", "days_in_stage", "76"),
    ]
    assert not any(r[1].startswith("T-") for r in rows)  # filtered rows keep no attributes


def test_union_of_files_by_glob_with_hidden_file_and_row_columns(tmp_path):
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "deals-2023.csv").write_text("id,ts\nA,2024-01-01\n")
    (drop / "deals-2024.csv").write_text("ts,id,extra\n2024-02-01,B,x\n2024-02-02,C,y\n")
    profile = _profile({"tables": {"products": {
        "file": "deals-*.csv",
        "fields": {"product_id": "id", "product_name": {"expr": "_file || ':' || _row"}, "updated_at": "ts"},
    }}})
    out = profiles.materialise(drop, profile, tmp_path / "out")["products"]
    assert _rows(out.path, "SELECT product_id, product_name FROM t") == [
        ("A", "deals-2023.csv:1"), ("B", "deals-2024.csv:1"), ("C", "deals-2024.csv:2")
    ]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        # an unknown key, with the profile's line
        (lambda d: d["tables"]["opportunities"]["fields"].update(amount={"colum": "x"}),
         r"profile\.yml:\d+: tables\.opportunities\.fields\.amount: unknown key\(s\) \['colum'\]"),
        # SQL that does not bind: the field and its line, DuckDB's reason
        (lambda d: d["tables"]["opportunities"]["fields"].update(amount={"expr": "nosuch(1)"}),
         r"profile\.yml:\d+: tables\.opportunities\.fields\.amount: bad SQL: .*nosuch"),
        (lambda d: d["tables"]["opportunities"].update(filter="Regio = 'x'"),
         r"tables\.opportunities\.filter: bad SQL: .*Regio"),
        # a required contract column not mapped
        (lambda d: d["tables"]["accounts"]["fields"].pop("updated_at"),
         r"profile\.yml:\d+: tables\.accounts: required contract column\(s\) not mapped: updated_at"),
        # the file of the required core is missing
        (lambda d: d["tables"]["opportunities"].update(file="deals"),
         r"tables\.opportunities: the export in .* has no file for opportunities \(looked for 'deals'"),
        # a grouped table's field without an aggregation
        (lambda d: d["tables"]["accounts"]["fields"]["region"].pop("agg"),
         r"tables\.accounts\.fields\.region: in a group_by table every column or expr field"),
    ],
)
def test_malformed_profiles_fail_at_once_naming_file_and_line(tmp_path, edit, message):
    doc = yaml.safe_load((FLAT / "profile.yml").read_text())
    edit(doc)
    path = tmp_path / "profile.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    with pytest.raises(profiles.ProfileError, match=message) as err:
        profiles.materialise(FLAT, profiles.load_profile(path), tmp_path / "out", require_core=True)
    assert isinstance(err.value, SourceError)  # not transient: the landing does not retry it


def test_a_value_that_does_not_match_its_format_names_file_row_and_column(tmp_path):
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "p.csv").write_text("id,ts\nA,2024-01-01\nB,31/12/2024\n")
    profile = _profile({"tables": {"products": {
        "file": "p", "fields": {"product_id": "id", "updated_at": {"column": "ts", "format": "%Y-%m-%d"}},
    }}})
    with pytest.raises(profiles.ProfileError,
                       match=r"p.csv row 2 \(header is row 0\), column ts: value 31/12/2024 does not match"):
        profiles.materialise(drop, profile, tmp_path / "out")


def test_a_scratch_window_function_and_filter_keep_the_latest_version_instead_of_qualify(tmp_path):
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "p.csv").write_text("id,name,ts\nA,old,2024-01-01\nA,new,2024-02-01\nB,only,2024-01-05\n")
    profile = _profile({"tables": {"products": {
        "file": "p",
        "scratch": {"latest": {"expr": "row_number() OVER (PARTITION BY id ORDER BY ts DESC) = 1"}},
        "filter": "latest",
        "fields": {"product_id": "id", "product_name": "name", "updated_at": "ts"},
    }}})
    out = profiles.materialise(drop, profile, tmp_path / "out")["products"]
    assert (out.report.read, out.report.filtered, out.rows) == (3, 1, 2)
    assert _rows(out.path, "SELECT product_id, product_name FROM t") == [("A", "new"), ("B", "only")]
