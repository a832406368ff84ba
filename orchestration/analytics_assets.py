"""Thin Dagster assets of the analytics stage: read the marts, call `orchestration.analytics`,
write `analytics.*`."""

import os
import resource
import time
from pathlib import Path

import dagster as dg

from orchestration.analytics.config import REPO_CAUSAL_YML, load_config, read_deals
from orchestration.analytics.effects import TABLE_COLUMNS, column_types, estimate_effects, status_tables
from orchestration.analytics.warehouse import write_table
from orchestration.automation import WAREHOUSE_POOL
from orchestration.resources import WarehouseResource

GROUP = "analytics"
MART_DEPS = [dg.AssetKey(["marts", m]) for m in ("fct_deal_margin", "dim_accounts", "dim_reps")]
EFFECT_TABLES = {
    "practice_effects": "Effect of each sales practice on win, contribution margin and days to close: "
    "ATE and ATT by regression adjustment, IPW and AIPW, with intervals, diagnostics and a verdict.",
    "practice_effects_by_segment": "AIPW effect per practice x segment, Bonferroni-adjusted intervals, "
    "Holm p-values, 'too few deals' below the minimum sample.",
    "effect_diagnostics": "Overlap, trimming, covariate balance (SMD before/after weighting), "
    "refutations and sensitivity behind every practice effect.",
}


def causal_config_path() -> Path:
    return Path(os.environ.get("SALESALIGN_CAUSAL_YML", REPO_CAUSAL_YML))


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            dg.AssetKey([GROUP, name]),
            group_name=GROUP,
            deps=MART_DEPS,
            description=desc,
            kinds={"python", "duckdb"},
        )
        for name, desc in EFFECT_TABLES.items()
    ],
    description="Cause-effect engine over the deal-margin mart (assumptions in causal.yml).",
    pool=WAREHOUSE_POOL,
)
def practice_effects(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    t0 = time.perf_counter()
    config = load_config(causal_config_path())
    with warehouse.connect() as con:
        try:
            frame, missing = read_deals(con, config)
        except LookupError as exc:
            frame, missing = None, [str(exc)]
    if missing:
        context.log.warning(f"inputs not in the warehouse (affected practices get status rows): {missing}")
    if frame is None or frame.empty:
        tables = status_tables(
            config,
            "no closed deals in marts.fct_deal_margin"
            if frame is not None
            else f"marts not available: {missing[0]}",
        )
    else:
        tables = estimate_effects(frame, config)
    seconds = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with warehouse.connect() as con:
        for name, df in tables.as_tables().items():
            write_table(con, name, df, column_types(TABLE_COLUMNS[name]))
    pe = tables.practice_effects
    headline = pe[(pe.estimator == "aipw") & (pe.estimand == "ATE")]
    for name, df in tables.as_tables().items():
        meta = {"dagster/row_count": len(df), "seconds": round(seconds, 1), "peak_rss_mb": round(peak_mb)}
        if name == "practice_effects":
            meta["deals"] = 0 if frame is None else len(frame)
            meta["verdicts"] = dg.MetadataValue.json(pe.verdict.value_counts().to_dict())
            meta["aipw_ate"] = dg.MetadataValue.md(
                headline[["practice", "outcome", "estimate", "ci_low", "ci_high", "verdict"]].to_markdown(
                    index=False
                )
                if len(headline)
                else "no estimates"
            )
        yield dg.MaterializeResult(asset_key=dg.AssetKey([GROUP, name]), metadata=meta)


assets = [practice_effects]
