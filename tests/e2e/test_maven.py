"""The whole pipeline on the real Maven CRM export (`../shared/data/maven_crm`), as a user would run it.

The data is copied into a temporary folder (it is never committed). The export has no activities,
costs or invoices: the run must land what it has, quarantine what it cannot use with a reason, and
write status rows instead of estimates where inputs are missing.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest
from e2e.test_run import _run

pytestmark = pytest.mark.slow
MAVEN = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "maven_crm"

# What the run still needs from other stages, as found on this data set (see docs/sources.md).
KNOWN_DOWNSTREAM_GAPS = {
    "relationships_stg_crm__opportunities_account_id": (
        "staging does not exclude quarantined rows yet (expectations/README.md says it does): the 1,425 open "
        "Maven deals without an account are quarantined but still reach stg_crm__opportunities"
    ),
}


@pytest.fixture(scope="module")
def maven_run(tmp_path_factory):
    if not MAVEN.is_dir():
        pytest.skip(f"the Maven CRM data set is not at {MAVEN} (../shared/data/maven_crm from the repo root)")
    root = tmp_path_factory.mktemp("maven")
    drop = Path(shutil.copytree(MAVEN, root / "drop"))
    home = root / "home"
    return home, _run(home, "--source", "files", "--path", str(drop), "--profile", "maven")


def _sql(home: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_maven_export_lands_with_its_quirks_handled(maven_run):
    home, _ = maven_run
    counts = dict(_sql(home, "SELECT table_name, rows FROM raw._loads"))
    assert counts == {"accounts": 85, "products": 7, "reps": 35, "opportunities": 8800, "fx_rates": 457}
    for table in ("activities", "invoices", "product_costs", "rep_costs", "commissions", "cost_to_serve"):
        assert _sql(home, f"SELECT count(*) FROM raw.{table}") == [(0,)]
    # GTXPro (pipeline) is GTX Pro (products.csv); misspellings corrected
    assert _sql(home, "SELECT count(*) FROM raw.opportunities WHERE product_id = 'GTX Pro'") == [(1480,)]
    assert _sql(
        home, "SELECT count(*) FROM raw.opportunities o ANTI JOIN raw.products p USING (product_id)"
    ) == [(0,)]
    assert _sql(home, "SELECT count(*) FROM raw.accounts WHERE industry = 'technolgy'") == [(0,)]
    # blank accounts (open deals only): quarantined with a reason, not silently dropped
    assert _sql(
        home,
        """SELECT count(*), count(DISTINCT reason) FROM raw_quarantine.quarantined_rows
                         WHERE table_name = 'opportunities' AND column_name = 'account_id'""",
    ) == [(1425, 1)]
    assert _sql(
        home,
        """SELECT DISTINCT o.is_closed FROM raw.opportunities o
                         WHERE account_id = '(no account)'""",
    ) == [(False,)]


def test_maven_pipeline_builds_what_the_data_supports(maven_run):
    home, run = maven_run
    if run.returncode != 0:
        gaps = [why for marker, why in KNOWN_DOWNSTREAM_GAPS.items() if marker in run.stderr]
        if gaps:
            pytest.xfail("; ".join(gaps))
        pytest.fail(run.stdout[-3000:] + run.stderr[-3000:])
    closed = _sql(
        home, "SELECT outcome, count(*), sum(net_bookings) FROM marts.fct_deal_margin GROUP BY 1 ORDER BY 1"
    )
    assert closed == [("lost", 2473, 0), ("won", 4238, 10005534)]
    # no practices logged: the effects are status rows, not numbers
    assert _sql(home, "SELECT count(*) FROM analytics.practice_effects WHERE estimate IS NOT NULL") == [(0,)]
    assert _sql(home, "SELECT count(*) FROM analytics.practice_effects WHERE status IS NOT NULL")[0][0] > 0
