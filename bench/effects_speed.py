"""Speed of the effects asset on N closed deals (default 1M): synthetic marts -> analytics.* via Dagster.

    .venv/bin/python -m bench.effects_speed --deals 1000000

Writes marts.fct_deal_margin / dim_accounts / dim_reps from `tests/fixtures/synthetic.py` into a
temporary warehouse (the large demo pipeline takes far longer to build than the asset runs), then
materialises the `analytics/practice_effects` multi-asset and prints wall time and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pandas as pd

from orchestration import analytics
from tests.fixtures.synthetic import PRACTICES, synthetic_deals
from tests.fixtures.warehouse import analytics_resources


def write_synthetic_marts(home: Path, n: int, seed: int = 11) -> None:
    frame, _ = synthetic_deals(n, seed)
    created = pd.Timestamp("2025-01-01")
    ids = frame["opportunity_id"]
    deals = pd.DataFrame(
        {
            "opportunity_id": "OPP-" + ids,
            "account_id": "ACC-" + ids,
            "rep_id": "REP-" + ids,
            "segment_id": frame["segment_id"],
            "lead_source": frame["lead_source"],
            "is_won": frame["win"],
            "contribution_margin": frame["contribution_margin"].round(2),
            "days_to_close": frame["days_to_close"],
            "list_amount": (np.exp(frame["log_list_amount"]) - 1).round(2),
            "created_date": created,
            "close_date": created + pd.to_timedelta(frame["days_to_close"], unit="D"),
            **{f"has_{p}": frame[f"treat__{p}"] for p in PRACTICES},
        }
    )
    accounts = pd.DataFrame(
        {
            "account_id": deals["account_id"],
            "industry": frame["industry"],
            "region": frame["region"],
            "size_band": frame["size_band"],
            "employee_count": np.round(np.exp(frame["log_employee_count"]) - 1),
        }
    )
    reps = pd.DataFrame(
        {
            "rep_id": deals["rep_id"],
            "hire_date": created - pd.to_timedelta(np.round(frame["rep_tenure_months"] * 30.4375), unit="D"),
            "prior_industry_experience": frame["prior_industry_experience"],
            "previous_role": frame["previous_role"],
        }
    )
    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        con.execute("create schema if not exists marts")
        for name, df in (("fct_deal_margin", deals), ("dim_accounts", accounts), ("dim_reps", reps)):
            con.register("df", df)
            con.execute(f"create or replace table marts.{name} as select * from df")
            con.unregister("df")


def effects_asset() -> dg.AssetsDefinition:
    """The multi-asset that writes analytics/practice_effects (and its by-segment and diagnostics tables)."""
    key = dg.AssetKey(["analytics", "practice_effects"])
    return next(a for a in analytics.assets if key in a.keys)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--deals", type=int, default=1_000_000)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="effects-speed-"))
    t0 = time.perf_counter()
    write_synthetic_marts(home, args.deals)
    setup = time.perf_counter() - t0
    t0, cpu0 = time.perf_counter(), time.process_time()
    result = dg.materialize([effects_asset()], resources=analytics_resources(home))
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    assert result.success
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        counts = {
            t: con.execute(f"select count(*) from analytics.{t}").fetchone()[0]
            for t in ("practice_effects", "practice_effects_by_segment", "effect_diagnostics")
        }
        verdicts = dict(
            con.execute("select verdict, count(*) from analytics.practice_effects group by 1").fetchall()
        )
    report = {
        "deals": args.deals,
        "setup_seconds": round(setup, 1),
        "asset_seconds": round(seconds, 1),
        "asset_cpu_seconds": round(cpu, 1),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "rows": counts,
        "verdicts": verdicts,
    }
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
