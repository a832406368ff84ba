"""A deal whose owner rep or product is missing keeps its row in the marts with the unknown rep or
product (Kimball's unknown member), flagged and counted; no cost is invented for it, and the rest of
the marts is what it would have been.

The tiny demo is landed twice, as generated and with some deals losing their owner rep or product
(NULL) or pointing at one that was never delivered; both go through the landing quality gate and a
real `dbt build` (every dbt test passing). The unknown rep changes no line of the waterfall (effort is
costed from the activities' own reps); the unknown product makes the deal's COGS unknown, so its
margins are null and its cost basis says why. Every other row is compared exactly.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest
from fixtures.warehouse import fetchall, land_check_and_build, land_drop, new_home, query, run_dbt, warehouse

from salesalign.extract import profiles
from salesalign.extract.landing import land_source
from salesalign.extract.mapped import MappedFileSource
from salesalign.quality.quarantine import TABLE as QUARANTINE
from salesalign.quality.validate import validate_raw_batch
from salesalign.settings import REPO

REP_NOT_DELIVERED = "REP-NOT-DELIVERED"
PRODUCT_NOT_DELIVERED = "PRODUCT-NOT-DELIVERED"
# deals changed, by (column, outcome, new id): how many of the first (by opportunity_id) of that outcome
CHANGES = {
    ("owner_rep_id", "won", None): 2,
    ("owner_rep_id", "lost", REP_NOT_DELIVERED): 2,
    ("owner_rep_id", "open", None): 1,
    ("owner_rep_id", "open", REP_NOT_DELIVERED): 1,
    ("product_id", "won", None): 2,
    ("product_id", "won", PRODUCT_NOT_DELIVERED): 1,
    ("product_id", "lost", None): 1,
    ("product_id", "open", PRODUCT_NOT_DELIVERED): 1,
}
REP_COLUMNS = ["rep_id", "has_known_rep"]
# what the unknown product changes on a closed deal: its COGS is unknown, and so are its margins
PRODUCT_COLUMNS = ["product_id", "has_known_product"]
COGS_COLUMNS = [
    "cogs_rate", "cogs", "gross_margin", "contribution_margin", "contribution_margin_pct", "cost_basis",
    "has_cost_data",
]


@pytest.fixture(scope="module")
def homes(tiny_drop, tiny_marts_home, tmp_path_factory):
    """(baseline home, changed home, {column: {opportunity_id: new id}}, the checks' report)."""
    baseline = tiny_marts_home  # the tiny demo as generated, built once per session

    drop = tmp_path_factory.mktemp("unknown-reps-products-drop")
    for f in tiny_drop.iterdir():
        (drop / f.name).write_bytes(f.read_bytes())
    opportunities = pd.read_parquet(tiny_drop / "opportunities.parquet")
    outcome = pd.Series(
        np.where(~opportunities.is_closed, "open", np.where(opportunities.is_won, "won", "lost"))
    )
    changed: dict[str, dict[str, str | None]] = {"owner_rep_id": {}, "product_id": {}}
    taken: set[str] = set()
    for (column, kind, new_id), n in CHANGES.items():
        candidates = sorted(set(opportunities.opportunity_id[outcome == kind]) - taken)[:n]
        assert len(candidates) == n, (column, kind, n)
        changed[column].update(dict.fromkeys(candidates, new_id))
        taken.update(candidates)
    with duckdb.connect() as con:
        for column, ids in changed.items():
            con.register(f"{column}_changes", pd.DataFrame({"id": list(ids), "new": list(ids.values())}))
        con.execute(
            f"""COPY (SELECT o.* REPLACE (
                             CASE WHEN r.id IS NULL THEN o.owner_rep_id ELSE r.new END AS owner_rep_id,
                             CASE WHEN p.id IS NULL THEN o.product_id ELSE p.new END AS product_id)
                      FROM read_parquet('{tiny_drop / "opportunities.parquet"}') o
                      LEFT JOIN owner_rep_id_changes r ON r.id = o.opportunity_id
                      LEFT JOIN product_id_changes p ON p.id = o.opportunity_id
                      ORDER BY o.opportunity_id)
                TO '{drop / "opportunities.parquet"}' (FORMAT parquet)"""
        )
    home = tmp_path_factory.mktemp("unknown-reps-products")
    report = land_check_and_build(home, drop)
    return baseline, home, changed, report


def _without_load_times(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns=["loaded_through"], errors="ignore").reset_index(drop=True)


def _table(home, table: str, key: str) -> pd.DataFrame:
    return _without_load_times(query(home, f"SELECT * FROM {table} ORDER BY {key}"))


def test_missing_reps_and_products_pass_the_landing_gate_and_are_not_quarantined(homes):
    _, home, _, report = homes
    # the orphan references are recorded as warnings (3 reps, 2 products), nothing blocks or is quarantined
    assert report.passed
    failures = {f.name: (f.outcome, f.unexpected_count, f.quarantined) for f in report.failures}
    rep = {name: v for name, v in failures.items() if "owner_rep_id" in name}
    product = {name: v for name, v in failures.items() if "product_id" in name}
    assert list(rep.values()) == [("warning", 3, 0)], failures
    assert list(product.values()) == [("warning", 2, 0)], failures
    assert query(home, f"SELECT count(*) AS n FROM {QUARANTINE}")["n"][0] == 0
    assert fetchall(
        home,
        """SELECT count(*) FILTER (owner_rep_id IS NULL), count(*) FILTER (product_id IS NULL)
           FROM raw.opportunities""",
    ) == [(3, 3)]


def test_every_deal_reaches_both_facts_with_the_unknown_rep_or_product(homes):
    baseline, home, changed, _ = homes
    facts = query(home, "SELECT * FROM marts.fct_opportunities ORDER BY opportunity_id")
    assert len(facts) == len(query(baseline, "SELECT opportunity_id FROM marts.fct_opportunities"))
    deals = query(home, "SELECT * FROM marts.fct_deal_margin ORDER BY opportunity_id")
    closed = set(facts.opportunity_id[facts.is_closed])
    assert set(deals.opportunity_id) == closed
    for column, fact_column, flag in (
        ("owner_rep_id", "rep_id", "has_known_rep"),
        ("product_id", "product_id", "has_known_product"),
    ):
        unknown = facts[~facts[flag]]
        assert sorted(unknown.opportunity_id) == sorted(changed[column])
        # the id as the source gave it: null, or the id of the rep / product that was not delivered
        given = {
            k: (None if pd.isna(v) else v)
            for k, v in zip(unknown.opportunity_id, unknown[fact_column], strict=True)
        }
        assert given == changed[column]
        assert set(deals.opportunity_id[~deals[flag]]) == set(changed[column]) & closed
    outcomes = {flag: facts[~facts[flag]].outcome.value_counts().to_dict() for flag in ("has_known_rep",
                                                                                        "has_known_product")}
    assert outcomes == {
        "has_known_rep": {"won": 2, "lost": 2, "open": 2},
        "has_known_product": {"won": 3, "lost": 1, "open": 1},
    }


def test_the_unknown_product_has_no_cogs_and_says_why(homes):
    baseline, home, changed, _ = homes
    before, after = (_table(h, "marts.fct_deal_margin", "opportunity_id") for h in (baseline, home))
    assert set(before.cost_basis) == {"full"} and before.cogs.notna().all()
    unknown = after[~after.has_known_product]
    assert len(unknown) == 4
    assert unknown[["cogs_rate", "cogs", "gross_margin", "contribution_margin", "contribution_margin_pct"]]\
        .isna().all().all()
    assert set(unknown.cost_basis) == {"partial: unknown product"} and not unknown.has_cost_data.any()
    # the baseline had a COGS for these deals: it is unknown now, never 0
    was = before.set_index("opportunity_id").loc[unknown.opportunity_id]
    assert (was.cogs[was.net_revenue > 0] > 0).all() and (was.net_revenue > 0).sum() == 3
    # revenue, selling and serving costs are what they were
    for col in ("net_revenue", "effort_cost", "commissions", "selling_cost", "allocated_cost_to_serve"):
        assert unknown[col].tolist() == was[col].tolist(), col
    known = after[after.has_known_product]
    assert set(known.cost_basis) == {"full"} and known.has_cost_data.all()


def test_the_reconciliations_count_the_unknown_members(homes):
    baseline, home, _, _ = homes
    total, closed = query(
        baseline, "SELECT count(*), count(*) FILTER (is_closed) FROM marts.fct_opportunities"
    ).iloc[0]
    sql = """SELECT {p}_status, opportunities, open_opportunities, closed_opportunities
             FROM intermediate.int_{p}_reconciliation ORDER BY 1"""
    assert query(home, sql.format(p="rep")).values.tolist() == [
        ["known", total - 6, total - closed - 2, closed - 4],
        ["no rep", 3, 1, 2],
        ["rep not delivered", 3, 1, 2],
    ]
    assert query(home, sql.format(p="product")).values.tolist() == [
        ["known", total - 5, total - closed - 1, closed - 4],
        ["no product", 3, 0, 3],
        ["product not delivered", 2, 1, 1],
    ]
    for p in ("rep", "product"):
        assert query(baseline, sql.format(p=p)).opportunities.tolist() == [total, 0, 0]
    # the account's reconciliation is untouched
    assert query(
        home, "SELECT account_status, opportunities FROM intermediate.int_account_reconciliation ORDER BY 1"
    ).values.tolist() == [["account not delivered", 0], ["known", total], ["no account", 0]]


def test_the_rest_of_the_facts_is_unchanged(homes):
    baseline, home, changed, _ = homes
    reps, products = set(changed["owner_rep_id"]), set(changed["product_id"])
    for fact, touched_product in (
        ("fct_opportunities", PRODUCT_COLUMNS),
        ("fct_deal_margin", PRODUCT_COLUMNS + COGS_COLUMNS),
    ):
        before, after = (_table(h, f"marts.{fact}", "opportunity_id") for h in (baseline, home))
        assert before.has_known_rep.all() and before.has_known_product.all()
        kept = ~after.opportunity_id.isin(list(reps | products))
        pd.testing.assert_frame_equal(before[kept].reset_index(drop=True), after[kept].reset_index(drop=True))
        for ids, columns in ((reps, REP_COLUMNS), (products, touched_product)):
            rows = after.opportunity_id.isin(list(ids))
            rest = [c for c in before.columns if c not in columns]
            pd.testing.assert_frame_equal(
                before.loc[rows, rest].reset_index(drop=True), after.loc[rows, rest].reset_index(drop=True)
            )
    for table, key in (
        ("marts.dim_accounts", "account_id"),
        ("marts.dim_segments", "segment_id"),
        ("marts.dim_reps", "rep_id"),
        ("intermediate.int_cost_to_serve_reconciliation", "1, 2"),
    ):
        pd.testing.assert_frame_equal(*(_table(h, table, key) for h in (baseline, home)), obj=table)


MEASURES = ["deals_closed", "deals_won", "net_bookings", "net_revenue", "selling_hours", "selling_cost"]


def test_the_rep_mart_groups_the_unknown_rep_apart_and_sums_back(homes):
    baseline, home, changed, _ = homes
    before, after = (_table(h, "marts.mart_rep_performance", "rep_month_id") for h in (baseline, home))
    deals = query(home, "SELECT * FROM marts.fct_deal_margin")
    unknown = after[after.rep_month_id.str.startswith("(unknown rep)|")]
    assert unknown.rep_id.isna().all() and after.rep_id.notna().sum() == len(after) - len(unknown)
    of_unknown = deals[~deals.has_known_rep]
    assert unknown.deals_closed.sum() == len(of_unknown) == 4
    assert unknown.deals_won.sum() == 2
    assert unknown.net_bookings.sum() == of_unknown.net_bookings.sum() > 0
    # every measure still sums back to the fact
    for col in ("deals_closed", "deals_won", "net_bookings"):
        assert after[col].sum() == before[col].sum(), col
    # the groups no changed deal belongs to are exactly what they were
    changed_ids = list(changed["owner_rep_id"]) + list(changed["product_id"])
    changed_deals = deals[deals.opportunity_id.isin(changed_ids)]
    base_deals = query(baseline, "SELECT opportunity_id, rep_id, close_month FROM marts.fct_deal_margin")
    touched = set(
        base_deals[base_deals.opportunity_id.isin(changed_deals.opportunity_id)]
        .apply(lambda r: f"{r.rep_id}|{r.close_month.date()}", axis=1)
    )
    untouched = ~before.rep_month_id.isin(touched)
    pd.testing.assert_frame_equal(
        before[untouched].reset_index(drop=True),
        after[after.rep_month_id.isin(before.rep_month_id[untouched])].reset_index(drop=True),
    )


def test_the_segment_mart_has_no_margin_where_a_deal_has_the_unknown_product(homes):
    baseline, home, _, _ = homes
    before, after = (
        _table(h, "marts.mart_segment_performance", "segment_month_id") for h in (baseline, home)
    )
    assert before.segment_month_id.tolist() == after.segment_month_id.tolist()
    deals = query(home, "SELECT segment_id, close_month, has_known_product FROM marts.fct_deal_margin")
    unknown = deals[~deals.has_known_product]
    keys = {f"{s}|{m.date()}" for s, m in zip(unknown.segment_id, unknown.close_month, strict=True)}
    hit = after.segment_month_id.isin(keys)
    assert 1 <= hit.sum() <= 4
    # the groups with a deal of the unknown product: no margin (a sum of the known deals only would not
    # add up), the deal's cost basis; every other measure as it was
    margins = ["gross_margin", "contribution_margin", "contribution_per_selling_hour"]
    assert after.loc[hit, margins].isna().all().all()
    assert set(after.cost_basis[hit]) == {"partial: unknown product"} and not after.has_cost_data[hit].any()
    pd.testing.assert_frame_equal(before.loc[hit, MEASURES], after.loc[hit, MEASURES])
    pd.testing.assert_frame_equal(before[~hit], after[~hit])


def test_reps_and_products_delivered_later_turn_their_deals_known_incrementally(homes, tiny_drop, tmp_path):
    _, built, changed, _ = homes
    home = new_home(tmp_path / "home", built)
    later = tmp_path / "later"
    for table in ("reps", "products"):
        (later / table).mkdir(parents=True)
    with duckdb.connect() as con:
        for table, key, new_id in (
            ("reps", "rep_id", REP_NOT_DELIVERED),
            ("products", "product_id", PRODUCT_NOT_DELIVERED),
        ):
            source = tiny_drop / f"{table}.parquet"
            # the missing parent arrives, with the attributes of an existing one
            con.execute(
                f"""COPY (SELECT * REPLACE ('{new_id}' AS {key}) FROM read_parquet('{source}')
                          WHERE {key} = (SELECT min({key}) FROM read_parquet('{source}')))
                    TO '{later / table / "later.parquet"}' (FORMAT parquet)"""
            )
    land_drop(home, later)
    run_dbt(home, "build")  # incremental facts: the deals of the parents that arrived are reprocessed
    arrived_reps = sorted(k for k, v in changed["owner_rep_id"].items() if v == REP_NOT_DELIVERED)
    arrived_products = sorted(k for k, v in changed["product_id"].items() if v == PRODUCT_NOT_DELIVERED)
    opportunities = query(
        home, "SELECT * FROM marts.fct_opportunities WHERE NOT (has_known_rep AND has_known_product)"
    )
    assert sorted(opportunities.opportunity_id) == sorted(
        k for ids in changed.values() for k, v in ids.items() if v is None
    )
    [(won_arrived, cogs, basis)] = fetchall(
        home,
        f"""SELECT opportunity_id, cogs, cost_basis FROM marts.fct_deal_margin
            WHERE product_id = '{PRODUCT_NOT_DELIVERED}'""",
    )
    assert won_arrived in arrived_products and basis == "full" and cogs == 0  # no COGS rate for it
    assert fetchall(
        home,
        f"""SELECT bool_and(has_known_rep), count(*) FROM marts.fct_deal_margin
            WHERE rep_id = '{REP_NOT_DELIVERED}'""",
    ) == [(True, 2)]
    for p, arrived in (("rep", arrived_reps), ("product", arrived_products)):
        statuses = dict(
            fetchall(home, f"SELECT {p}_status, opportunities FROM intermediate.int_{p}_reconciliation")
        )
        assert statuses[f"{p} not delivered"] == 0 and statuses[f"no {p}"] == 3, (p, arrived)
    # the incremental facts equal a full refresh
    full = new_home(tmp_path / "full", home)
    run_dbt(full, "run", "--full-refresh", "--select", "fct_opportunities", "fct_deal_margin")
    for fact in ("fct_opportunities", "fct_deal_margin"):
        incremental, refreshed = (_table(h, f"marts.{fact}", "opportunity_id") for h in (home, full))
        pd.testing.assert_frame_equal(incremental, refreshed, obj=fact)


def test_an_export_that_names_no_rep_or_product_reaches_the_marts(tmp_path):
    # the flat export (tests/data/flat_export): one file of closed deals, no reps or products
    flat = REPO / "tests" / "data" / "flat_export"
    source = MappedFileSource(flat, profiles.load_profile(flat / "profile.yml"), tmp_path / "staging")
    home = new_home(tmp_path / "home")
    with duckdb.connect(str(warehouse(home))) as con:
        land_source(con, source)
        load_ids = [r[0] for r in con.execute("SELECT load_id FROM raw._loads").fetchall()]
        assert validate_raw_batch(con, "opportunities", load_ids, home, build_docs=False).passed
    run_dbt(home, "build")  # passes: an empty dim_reps is a warning
    assert fetchall(
        home,
        """SELECT count(*), count(rep_id), count(product_id), bool_or(has_known_rep),
                  bool_or(has_known_product), min(cost_basis), max(cost_basis), count(cogs)
           FROM marts.fct_deal_margin""",
    ) == [(10, 0, 0, False, False, *["bookings only: no finance data; unknown product"] * 2, 0)]
    assert fetchall(home, "SELECT count(*) FROM marts.dim_reps") == [(0,)]
    # every closed deal is in the rep mart's unknown-rep rows, and both reconciliations count them
    assert fetchall(
        home,
        """SELECT bool_and(rep_month_id LIKE '(unknown rep)|%' AND rep_id IS NULL), sum(deals_closed)
           FROM marts.mart_rep_performance""",
    ) == [(True, 10)]
    for parent in ("rep", "product"):
        assert fetchall(
            home,
            f"SELECT {parent}_status, opportunities FROM intermediate.int_{parent}_reconciliation ORDER BY 1",
        ) == [("known", 0), (f"no {parent}", 10), (f"{parent} not delivered", 0)]
