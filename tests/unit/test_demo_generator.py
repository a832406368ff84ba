"""The demo generator writes a deterministic, contract-conformant, internally consistent file drop."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import duckdb
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from salesalign.contract import (
    ACTIVITY_TYPES,
    LEAD_SOURCES,
    OPEN_STAGES,
    PRACTICE_ACTIVITY_TYPES,
    STAGES,
    TABLE_NAMES,
    TABLES,
)
from salesalign.demo import PRESETS, generate
from salesalign.demo.arrow_types import arrow_schema, arrow_type


def _hashes(d: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.iterdir())}


@pytest.fixture(scope="module")
def drops(tmp_path_factory):
    base = tmp_path_factory.mktemp("demo")
    out = {}
    for key, seed in (("a", 7), ("b", 7), ("c", 8)):
        out[key] = (base / key, generate("small", seed, base / key))
    return out


@pytest.fixture(scope="module")
def db(drops):
    d = drops["a"][0]
    con = duckdb.connect()
    for t in TABLE_NAMES:
        con.execute(f"create view {t} as select * from read_parquet('{d / (t + '.parquet')}')")
    yield con
    con.close()


def q(con, sql):
    return con.execute(sql).fetchall()


def test_same_seed_is_byte_identical_and_other_seed_differs(drops):
    ha, hb, hc = (_hashes(drops[k][0]) for k in "abc")
    assert set(ha) == {f"{t}.parquet" for t in TABLE_NAMES} | {"truth.json"}
    assert ha == hb
    differing = [f for f in ha if ha[f] != hc[f]]
    assert "opportunities.parquet" in differing and "activities.parquet" in differing
    assert "truth.json" in differing


def test_summary_and_small_sizes(drops):
    d, summary = drops["a"]
    assert summary["scale"] == "small" and summary["seed"] == 7 and summary["seconds"] < 30
    rows = summary["tables"]
    assert rows == json.loads((d / "truth.json").read_text())["bookkeeping"]["rows"]
    assert rows["accounts"] == 1000 and rows["opportunities"] == 5000
    assert 80_000 <= rows["activities"] <= 130_000
    assert 1000 <= rows["contacts"] <= 4000
    assert rows["products"] == 6
    assert rows["fx_rates"] == 3 * 1461
    for t in TABLE_NAMES:
        assert rows[t] > 0, t


def test_preset_parameters():
    assert set(PRESETS) >= {"tiny", "small", "default", "large"}
    p = PRESETS["default"]
    assert (p.n_accounts, p.n_opportunities) == (10_000, 50_000)
    assert 900_000 <= p.n_opportunities * p.activities_per_deal * 1.05 <= 1_300_000
    p = PRESETS["large"]
    assert (p.n_accounts, p.n_opportunities) == (150_000, 1_000_000)
    assert 18_000_000 <= p.n_opportunities * p.activities_per_deal * 1.05 <= 26_000_000
    assert p.chunk_deals <= 100_000  # big tables are written in bounded chunks
    assert PRESETS["tiny"].n_opportunities <= 500


def test_files_match_the_contract(drops):
    d = drops["a"][0]
    for t in TABLES:
        schema = pq.read_schema(d / f"{t.name}.parquet")
        assert schema.names == t.column_names, t.name
        expected = arrow_schema(t.name)
        for c in t.columns:
            assert schema.field(c.name).type == arrow_type(c.type) == expected.field(c.name).type, (
                t.name,
                c.name,
            )
        tbl = pq.read_table(d / f"{t.name}.parquet")
        for c in t.columns:
            if not c.nullable:
                assert tbl.column(c.name).null_count == 0, (t.name, c.name)


def test_primary_and_foreign_keys(db):
    for t in TABLES:
        pk = ", ".join(t.primary_key)
        dup = q(db, f"select count(*) from (select {pk} from {t.name} group by {pk} having count(*) > 1)")
        assert dup == [(0,)], t.name
        for col, (rt, rc) in t.foreign_keys.items():
            orphans = q(
                db,
                f"select count(*) from {t.name} c where c.{col} is not null and not exists "
                f"(select 1 from {rt} p where p.{rc} = c.{col})",
            )
            assert orphans == [(0,)], (t.name, col)


def test_vocabularies_and_dates(db):
    assert {r[0] for r in q(db, "select distinct stage from opportunities")} <= set(STAGES)
    assert {r[0] for r in q(db, "select distinct activity_type from activities")} == set(ACTIVITY_TYPES)
    assert {r[0] for r in q(db, "select distinct lead_source from opportunities")} == set(LEAD_SOURCES)
    assert q(db, "select count(*) from opportunities where close_date < cast(created_at as date)") == [(0,)]
    assert q(
        db, "select min(created_at)::date::varchar, max(created_at)::date::varchar from opportunities"
    ) == [("2023-01-02", "2025-12-31")] or q(
        db, "select min(created_at) >= '2023-01-01' and max(created_at) < '2026-01-01' from opportunities"
    ) == [(True,)]
    open_ = q(
        db,
        "select count(*), bool_and(stage in ('" + "','".join(OPEN_STAGES) + "')), "
        "bool_and(close_date > '2025-12-31'), bool_and(not is_won) from opportunities where not is_closed",
    )
    assert open_[0][0] > 0 and open_[0][1:] == (True, True, True)
    closed = q(
        db,
        "select bool_and(close_date <= '2025-12-31'), bool_and(is_won = (stage = 'closed_won')), "
        "bool_and(stage in ('closed_won', 'closed_lost')) from opportunities where is_closed",
    )
    assert closed == [(True, True, True)]
    assert q(
        db, "select count(distinct industry), count(distinct region), count(distinct currency) from accounts"
    ) == [(5, 3, 3)]
    assert q(
        db,
        "select count(*) from opportunities o join accounts a using (account_id) "
        "where o.currency <> a.currency",
    ) == [(0,)]
    assert q(
        db,
        "select count(*) from opportunities o join accounts a using (account_id) "
        "join reps r on r.rep_id = o.owner_rep_id where r.region <> a.region or r.hire_date > o.created_at",
    ) == [(0,)]
    disc = q(db, "select avg(discount), min(discount), max(discount) from opportunities")[0]
    assert 0.08 < disc[0] < 0.16 and disc[1] >= 0 and disc[2] < 1


def test_reps_and_managers(db):
    assert q(db, "select count(*) from reps where manager_id is null")[0][0] >= 3
    assert q(
        db,
        "select count(*) from reps r join reps m on r.manager_id = m.rep_id where m.manager_id is not null",
    ) == [(0,)]
    assert q(db, "select min(hire_date) >= '2018-01-01', max(hire_date) <= '2025-12-31' from reps") == [
        (True, True)
    ]
    assert {r[0] for r in q(db, "select distinct previous_role from reps")} <= {
        "sdr",
        "account_manager",
        "consultant",
        "other",
    }
    cost = q(
        db,
        "select min(loaded_cost_per_hour), max(loaded_cost_per_hour), bool_and(currency = 'USD') "
        "from rep_costs",
    )[0]
    assert cost[0] >= 60 and cost[1] <= 180 and cost[2]
    # every activity's rep has a cost row for the activity's month
    assert q(
        db,
        "select count(*) from activities a left join rep_costs c on c.rep_id = a.rep_id "
        "and c.month = date_trunc('month', a.started_at)::date where c.rep_id is null",
    ) == [(0,)]


def test_stage_history(db):
    bad_order = q(
        db,
        """select count(*) from (select changed_at <= lag(changed_at) over
                          (partition by opportunity_id order by changed_at, history_id) as bad
                          from opportunity_stage_history) where bad""",
    )
    assert bad_order == [(0,)]
    mismatch = q(
        db,
        """select count(*) from opportunities o join (
                          select opportunity_id, arg_max(stage, changed_at) as last_stage,
                                 arg_min(stage, changed_at) as first_stage, max(changed_at) as last_at
                          from opportunity_stage_history group by 1) h using (opportunity_id)
                        where h.last_stage <> o.stage or h.first_stage <> 'prospecting'
                           or h.last_at <> o.updated_at""",
    )
    assert mismatch == [(0,)]
    assert q(db, "select count(distinct opportunity_id) from opportunity_stage_history") == [(5000,)]
    # lost deals drop out at different stages
    assert (
        q(
            db,
            """select count(distinct n) from (select count(*) n from opportunity_stage_history h
                    join opportunities o using (opportunity_id) where o.stage = 'closed_lost'
                    group by h.opportunity_id)""",
        )[0][0]
        >= 4
    )


def test_practices_before_close_and_activities_in_cycle(db):
    practice_list = "','".join(PRACTICE_ACTIVITY_TYPES)
    assert q(
        db,
        f"""select count(*) from activities a join opportunities o using (opportunity_id)
                     where a.activity_type in ('{practice_list}') and o.is_closed
                       and a.started_at >= o.close_date""",
    ) == [(0,)]
    assert q(
        db,
        """select count(*) from activities a join opportunities o using (opportunity_id)
                    where a.started_at < o.created_at or a.started_at >= '2026-01-01'
                       or a.rep_id <> o.owner_rep_id or a.account_id <> o.account_id""",
    ) == [(0,)]
    per_deal = q(db, "select count(*) / count(distinct opportunity_id) from activities")[0][0]
    assert 15 <= per_deal <= 30
    poc = q(db, "select avg(duration_minutes) from activities where activity_type = 'proof_of_concept'")[0][0]
    assert 2000 <= poc <= 2800


def test_finance_consistency(db, drops):
    truth = json.loads((drops["a"][0] / "truth.json").read_text())
    b = truth["bookkeeping"]
    counts = q(
        db,
        "select count(*) filter (where is_closed), count(*) filter (where is_won), "
        "count(*) filter (where not is_closed) from opportunities",
    )[0]
    assert counts == (b["n_closed"], b["n_won"], b["n_open"])
    assert q(
        db,
        "select count(*) from invoices i join opportunities o using (opportunity_id) "
        "where not o.is_won or i.invoice_date < o.close_date or i.currency <> o.currency",
    ) == [(0,)]
    assert q(
        db,
        "select count(*) from (select opportunity_id, sum(i.amount) s, any_value(o.amount) a "
        "from invoices i join opportunities o using (opportunity_id) group by 1) where s <> a",
    ) == [(0,)]
    assert q(db, "select count(distinct opportunity_id) from invoices") == [(b["n_won"],)]
    assert q(db, "select min(n), max(n) from (select count(*) n from invoices group by opportunity_id)") == [
        (1, 3)
    ]
    credit_share = q(
        db,
        "select count(distinct opportunity_id) / (select count(*) from opportunities "
        "where is_won) from credit_notes",
    )[0][0]
    assert 0.02 < credit_share < 0.09
    assert q(
        db,
        "select count(*) from credit_notes c join invoices i using (invoice_id) "
        "where c.opportunity_id <> i.opportunity_id or c.amount > 0.2 * i.amount + 0.01 "
        "or c.amount < 0.05 * i.amount - 0.01 or c.credit_date < i.invoice_date",
    ) == [(0,)]
    assert q(
        db,
        "select count(*) from commissions c join opportunities o using (opportunity_id) "
        "where not o.is_won or c.rep_id <> o.owner_rep_id or c.paid_date <= o.close_date "
        "or abs(c.amount - round(0.08 * o.amount, 2)) > 0.011",
    ) == [(0,)]
    # every date with money on it has a rate for its currency
    for t, dcol in (
        ("invoices", "invoice_date"),
        ("credit_notes", "credit_date"),
        ("commissions", "paid_date"),
        ("cost_to_serve", "month"),
        ("opportunities", "close_date"),
    ):
        closed = "and x.is_closed" if t == "opportunities" else ""
        assert q(
            db,
            f"select count(*) from {t} x left join fx_rates f on f.rate_date = x.{dcol} "
            f"and f.currency = x.currency where f.rate_date is null {closed}",
        ) == [(0,)]
    assert q(db, "select min(usd_per_unit), max(usd_per_unit) from fx_rates where currency = 'USD'") == [
        (1.0, 1.0)
    ]
    assert q(
        db,
        "select count(distinct currency), count(distinct rate_date), min(rate_date)::varchar, "
        "max(rate_date)::varchar from fx_rates",
    ) == [(3, 1461, "2023-01-01", "2026-12-31")]
    # reconciliation of truth totals with the files
    inv_usd = q(
        db,
        "select sum(i.amount * f.usd_per_unit) from invoices i join fx_rates f "
        "on f.rate_date = i.invoice_date and f.currency = i.currency",
    )[0][0]
    cr_usd = q(
        db,
        "select sum(c.amount * f.usd_per_unit) from credit_notes c join fx_rates f "
        "on f.rate_date = c.credit_date and f.currency = c.currency",
    )[0][0]
    assert float(inv_usd) == pytest.approx(b["invoiced_usd"], abs=1.0)
    assert float(cr_usd) == pytest.approx(b["credits_usd"], abs=1.0)
    hours = q(
        db,
        "select sum(duration_minutes) / 60 from activities a join opportunities o "
        "using (opportunity_id) where o.is_closed",
    )[0][0]
    assert hours == pytest.approx(b["selling_hours_closed"], rel=1e-9)
    cogs = q(
        db,
        "select count(*), min(cogs_rate), max(cogs_rate), count(*) filter (where valid_to is null) "
        "from product_costs",
    )[0]
    assert cogs[0] == 24 and cogs[1] >= 0.15 and cogs[2] <= 0.6 and cogs[3] == 6
    # cost to serve stops at the finance horizon and only covers accounts with won deals
    assert q(
        db,
        "select max(month)::varchar <= '2026-12-01', min(month)::varchar >= '2023-02-01' from cost_to_serve",
    ) == [(True, True)]
    assert q(
        db,
        "select count(*) from cost_to_serve c where not exists (select 1 from opportunities o "
        "where o.account_id = c.account_id and o.is_won)",
    ) == [(0,)]


def test_seasonality_and_segments(db):
    q_end = q(
        db,
        """select avg(case when month(close_date) in (3, 6, 9, 12) and day(close_date) >= 24
                     then 1.0 else 0 end) from opportunities where is_closed""",
    )[0][0]
    assert q_end > 2 * 7 / 91  # the last week of a quarter gets far more than its share of closes
    by_month = q(
        db,
        """select count(*) filter (where month(created_at) = 10) * 1.0
                        / count(*) filter (where month(created_at) = 8) from opportunities""",
    )[0][0]
    assert by_month > 1.2  # monthly seasonality of deal creation
    assert (
        q(
            db,
            """select count(*) from (select distinct a.industry, case when a.employee_count < 200 then 's'
                    when a.employee_count < 2000 then 'm' else 'e' end, a.region from opportunities o
                    join accounts a using (account_id))""",
        )[0][0]
        >= 40
    )
    cyc = q(
        db,
        """select avg(case when a.employee_count >= 2000
                             then date_diff('day', o.created_at, o.close_date) end)
                   > avg(case when a.employee_count < 200
                              then date_diff('day', o.created_at, o.close_date) end)
                   from opportunities o join accounts a using (account_id) where o.is_closed""",
    )
    assert cyc == [(True,)]


def test_contacts_pii_is_fake_and_deterministic(db):
    rows = q(db, "select min(n), max(n) from (select count(*) n from contacts group by account_id)")
    assert rows == [(1, 4)]
    assert q(db, "select count(*) from contacts where email not like '%@acc-%.example.com'") == [(0,)]


def test_tiny_and_csv(tmp_path):
    s = generate("tiny", 3, tmp_path, fmt="csv")
    assert s["tables"]["opportunities"] == PRESETS["tiny"].n_opportunities
    for t in TABLES:
        tbl = pacsv.read_csv(tmp_path / f"{t.name}.csv")
        assert tbl.column_names == t.column_names
        assert tbl.num_rows == s["tables"][t.name]
    first = (tmp_path / "opportunities.csv").read_text().splitlines()[1]
    assert "2023-" in first or "2024-" in first or "2025-" in first
    with pytest.raises(KeyError):
        generate("huge", 1, tmp_path)
