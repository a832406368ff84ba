"""The analytics stage: thin Dagster assets that read the marts, call `salesalign.analytics` and write
`analytics.*`.

Every asset reads only the columns it needs, computes without holding the warehouse open, then writes
its tables in one short connection (DuckDB: one writer at a time). Missing inputs (no marts, no
activities, no costs, no practice effects) become status rows.
"""

import resource
import time

import dagster as dg
import pandas as pd

from orchestration.operations import WAREHOUSE_POOL
from orchestration.resources import AnalysisResource, WarehouseResource
from salesalign.analytics import alignment, icp, ramp, roi, variance
from salesalign.analytics.config import load_config, read_deals
from salesalign.analytics.decision_data import DecisionInputs, read_decision_inputs
from salesalign.analytics.effects import TABLE_COLUMNS, column_types, estimate_effects, status_tables
from salesalign.analytics.warehouse import write_table

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
def practice_effects(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, analysis: AnalysisResource
):
    t0 = time.perf_counter()
    config = load_config(analysis.causal_yml)
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




PRACTICE_EFFECTS = dg.AssetKey([GROUP, "practice_effects"])
PRACTICE_EFFECTS_BY_SEGMENT = dg.AssetKey([GROUP, "practice_effects_by_segment"])
REP_PERFORMANCE = dg.AssetKey([GROUP, "rep_performance"])

TABLE_TYPES = {
    "rep_performance": variance.REP_PERFORMANCE_COLUMNS,
    "rep_variance_summary": variance.REP_VARIANCE_COLUMNS,
    "rep_ramp": ramp.REP_RAMP_COLUMNS,
    "icp_segments": icp.ICP_SEGMENT_COLUMNS,
    "icp_account_fit": icp.ICP_ACCOUNT_FIT_COLUMNS,
    "icp_validation": icp.ICP_VALIDATION_COLUMNS,
    "roi_by_segment": roi.ROI_SEGMENT_COLUMNS,
    "roi_by_practice": roi.ROI_PRACTICE_COLUMNS,
    "roi_by_rep": roi.ROI_REP_COLUMNS,
    "roi_by_channel": roi.ROI_CHANNEL_COLUMNS,
    "strategy_alignment": alignment.STRATEGY_ALIGNMENT_COLUMNS,
    "practice_alignment": alignment.PRACTICE_ALIGNMENT_COLUMNS,
    "effort_reallocation": alignment.EFFORT_REALLOCATION_COLUMNS,
}
DESCRIPTIONS = {
    "rep_performance": "Per rep and outcome (win, contribution margin): raw mean, mean expected from the "
    "deal mix, shrunken rep effect with interval, mix-adjusted mean and rank.",
    "rep_variance_summary": "How much of the spread is the rep: variance components, ICC with a "
    "profile-likelihood interval, zero-variance boundary flag, raw vs mix-adjusted quartile ratios.",
    "rep_ramp": "Talent ramp: time to first win and first-year results by hiring profile and hire cohort; "
    "adjusted effect of each hiring trait on first-year winning.",
    "icp_segments": "ICP segments (firmographic combinations): outcomes with intervals, score and tier A-D; "
    "`basis` says whether they rank on contribution per selling hour or, without cost data, on net bookings "
    "per closed deal.",
    "icp_account_fit": "Account fit score 0-100 and tier from a model of contribution per selling hour "
    "(or net bookings per closed deal without cost data; see `basis`) on firmographics.",
    "icp_validation": "Out-of-time validation of the ICP tiers and the fit score (later-window outcomes per "
    "tier, lift of tier A over the rest) and the fit score's calibration table.",
    "roi_by_segment": "Contribution margin per selling hour and per dollar of selling cost, per segment.",
    "roi_by_practice": "ROI of each practice from its causal effect on contribution margin: net incremental "
    "contribution per deal, per dollar of the practice's cost, and a verdict respecting the interval.",
    "roi_by_rep": "Returns per rep, raw and mix-adjusted (contribution-margin mixed model).",
    "roi_by_channel": "Contribution margin per selling hour and per dollar of selling cost, per lead source.",
    "strategy_alignment": "Per strategy target: intended vs actual effort share, returns, promised vs "
    "realised contribution and margin.",
    "practice_alignment": "Per strategy target x practice: prescribed or not versus its measured ROI there.",
    "effort_reallocation": "Ranked moves of selling hours between strategy targets with the expected "
    "contribution gained and its interval.",
}


def _spec(name: str, deps: list[dg.AssetKey]) -> dg.AssetSpec:
    return dg.AssetSpec(
        dg.AssetKey([GROUP, name]),
        group_name=GROUP,
        deps=deps,
        description=DESCRIPTIONS[name],
        kinds={"python", "duckdb"},
    )


def _read(warehouse: WarehouseResource) -> DecisionInputs:
    with warehouse.connect() as con:
        return read_decision_inputs(con)


def _read_analytics(warehouse: WarehouseResource, table: str) -> pd.DataFrame | None:
    """An upstream analytics table, or None when it has not been built."""
    with warehouse.connect() as con:
        exists = con.execute(
            "select count(*) from information_schema.tables where table_schema = 'analytics' "
            "and table_name = ?",
            [table],
        ).fetchone()[0]
        return con.execute(f"select * from analytics.{table}").df() if exists else None


def _typed(frame: pd.DataFrame, types: dict[str, str]) -> pd.DataFrame:
    """Nullable integer/boolean dtypes so missing values land as NULL, not NaN casts."""
    out = frame.reindex(columns=list(types)).copy()
    for col, sql in types.items():
        if sql == "BIGINT":
            out[col] = pd.to_numeric(out[col], errors="coerce").round().astype("Int64")
        elif sql == "BOOLEAN":
            out[col] = out[col].astype("boolean")
        elif sql == "DOUBLE":
            out[col] = pd.to_numeric(out[col], errors="coerce").astype("float64")
    return out


def _write(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    tables: dict[str, pd.DataFrame],
    inputs: DecisionInputs,
    started: float,
    preview: dict[str, list[str]],
    extra: dict | None = None,
):
    with warehouse.connect() as con:
        for name, frame in tables.items():
            write_table(con, name, _typed(frame, TABLE_TYPES[name]), TABLE_TYPES[name])
    if inputs.missing:
        context.log.warning(f"missing inputs (status rows written): {inputs.missing}")
    for name, frame in tables.items():
        cols = [c for c in preview.get(name, []) if c in frame]
        shown = frame[frame.level != "segment"] if name == "roi_by_practice" and "level" in frame else frame
        meta = {
            "dagster/row_count": len(frame),
            "seconds": round(time.perf_counter() - started, 1),
            "period": f"{inputs.period[0]} .. {inputs.period[1]}",
            "missing_inputs": dg.MetadataValue.json(inputs.missing),
        }
        if cols:
            meta["preview"] = dg.MetadataValue.md(
                shown[cols].head(20).to_markdown(index=False, floatfmt=".4g")
            )
        meta.update((extra or {}).get(name, {}))
        yield dg.MaterializeResult(asset_key=dg.AssetKey([GROUP, name]), metadata=meta)


@dg.multi_asset(
    specs=[_spec("rep_performance", MART_DEPS), _spec("rep_variance_summary", MART_DEPS)],
    description="Random-intercept-per-rep models of win and contribution margin (variance.py).",
    pool=WAREHOUSE_POOL,
)
def rep_variance(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    t0 = time.perf_counter()
    inputs = _read(warehouse)
    if inputs.deals is None or inputs.deals.empty:
        perf, summary = variance.status_frames(inputs.missing[0] if inputs.missing else "no closed deals")
    else:
        perf, summary = variance.rep_tables(inputs.deals)
    yield from _write(
        context,
        warehouse,
        {"rep_performance": perf, "rep_variance_summary": summary},
        inputs,
        t0,
        {
            "rep_variance_summary": [
                "outcome",
                "icc",
                "icc_ci_low",
                "icc_ci_high",
                "boundary",
                "raw_top_bottom_quartile_ratio",
                "adjusted_top_bottom_quartile_ratio",
                "status",
            ],
            "rep_performance": [
                "rep_id",
                "outcome",
                "n_deals",
                "raw_mean",
                "adjusted_mean",
                "rep_effect",
                "ci_low",
                "ci_high",
                "adjusted_rank",
            ],
        },
    )


@dg.asset(
    key=dg.AssetKey([GROUP, "rep_ramp"]),
    group_name=GROUP,
    deps=MART_DEPS,
    kinds={"python", "duckdb"},
    description=DESCRIPTIONS["rep_ramp"],
    pool=WAREHOUSE_POOL,
)
def rep_ramp(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    t0 = time.perf_counter()
    inputs = _read(warehouse)
    table = ramp.rep_ramp(inputs.deals, inputs.reps)
    return next(
        _write(
            context,
            warehouse,
            {"rep_ramp": table},
            inputs,
            t0,
            {
                "rep_ramp": [
                    "kind",
                    "group_name",
                    "n_reps",
                    "median_days_to_first_win",
                    "first_year_win_rate",
                    "estimate",
                    "ci_low",
                    "ci_high",
                    "status",
                ]
            },
        )
    )


@dg.multi_asset(
    specs=[_spec(n, MART_DEPS) for n in ("icp_segments", "icp_account_fit", "icp_validation")],
    description="Ideal Customer Profile with out-of-time validation (icp.py; settings in strategy.yml).",
    pool=WAREHOUSE_POOL,
)
def icp_tables(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, analysis: AnalysisResource
):
    t0 = time.perf_counter()
    inputs = _read(warehouse)
    settings = icp.IcpSettings.from_dict(alignment.load_strategy(analysis.strategy_yml).icp)
    tables = icp.icp_tables(inputs.deals, inputs.accounts, settings)
    yield from _write(
        context,
        warehouse,
        tables,
        inputs,
        t0,
        {
            "icp_segments": [
                "icp_segment",
                "n_deals",
                "cm_per_selling_hour",
                "cm_per_selling_hour_ci_low",
                "cm_per_selling_hour_ci_high",
                "score",
                "tier",
            ],
            "icp_validation": ["validation", "group_name", "metric", "estimate", "ci_low", "ci_high"],
            "icp_account_fit": ["account_id", "icp_segment", "fit_score", "fit_tier", "segment_tier"],
        },
    )


@dg.multi_asset(
    specs=[
        _spec("roi_by_segment", MART_DEPS),
        _spec("roi_by_channel", MART_DEPS),
        _spec("roi_by_rep", [*MART_DEPS, REP_PERFORMANCE]),
    ],
    description="Returns on selling effort by segment, lead source and rep (roi.py).",
    pool=WAREHOUSE_POOL,
)
def roi_of_effort(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    t0 = time.perf_counter()
    inputs = _read(warehouse)
    rep_performance = _read_analytics(warehouse, "rep_performance")
    tables = {
        "roi_by_segment": roi.roi_by_segment(inputs.deals),
        "roi_by_channel": roi.roi_by_channel(inputs.deals),
        "roi_by_rep": roi.roi_by_rep(inputs.deals, rep_performance),
    }
    cols = [
        "n_deals",
        "cm_per_selling_hour",
        "cm_per_selling_hour_ci_low",
        "cm_per_selling_hour_ci_high",
        "cm_per_selling_dollar",
        "status",
    ]
    yield from _write(
        context,
        warehouse,
        tables,
        inputs,
        t0,
        {
            "roi_by_segment": ["segment_id", *cols],
            "roi_by_channel": ["lead_source", *cols],
            "roi_by_rep": [
                "rep_id",
                "n_deals",
                "cm_per_selling_hour",
                "adjusted_cm_per_deal",
                "adjusted_rank",
            ],
        },
    )


@dg.asset(
    key=dg.AssetKey([GROUP, "roi_by_practice"]),
    group_name=GROUP,
    kinds={"python", "duckdb"},
    deps=[*MART_DEPS, PRACTICE_EFFECTS, PRACTICE_EFFECTS_BY_SEGMENT],
    description=DESCRIPTIONS["roi_by_practice"],
    pool=WAREHOUSE_POOL,
)
def roi_by_practice(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    t0 = time.perf_counter()
    inputs = _read(warehouse)
    effects = _read_analytics(warehouse, "practice_effects")
    by_segment = _read_analytics(warehouse, "practice_effects_by_segment")
    table = roi.roi_by_practice(inputs.deals, effects, by_segment)
    preview = [
        "practice",
        "level",
        "group_name",
        "estimand",
        "net_incremental_cm_per_deal",
        "net_ci_low",
        "net_ci_high",
        "roi_per_dollar",
        "verdict",
    ]
    extra = {
        "roi_by_practice": {
            "verdicts": dg.MetadataValue.json(table.verdict.value_counts(dropna=False).to_dict())
        }
    }
    return next(
        _write(
            context, warehouse, {"roi_by_practice": table}, inputs, t0, {"roi_by_practice": preview}, extra
        )
    )


@dg.multi_asset(
    specs=[
        _spec(n, [*MART_DEPS, PRACTICE_EFFECTS_BY_SEGMENT])
        for n in ("strategy_alignment", "practice_alignment", "effort_reallocation")
    ],
    description="The declared strategy (strategy.yml) versus where effort goes and what it returns.",
    pool=WAREHOUSE_POOL,
)
def strategy_alignment(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, analysis: AnalysisResource
):
    t0 = time.perf_counter()
    inputs = _read(warehouse)
    strategy = alignment.load_strategy(analysis.strategy_yml)
    by_segment = _read_analytics(warehouse, "practice_effects_by_segment")
    sa = alignment.strategy_alignment(inputs.deals, strategy)
    tables = {
        "strategy_alignment": sa,
        "practice_alignment": alignment.practice_alignment(inputs.deals, strategy, by_segment),
        "effort_reallocation": alignment.effort_reallocation(sa, inputs.deals),
    }
    yield from _write(
        context,
        warehouse,
        tables,
        inputs,
        t0,
        {
            "strategy_alignment": [
                "target",
                "intended_effort_share",
                "actual_effort_share",
                "allocation",
                "cm_per_selling_hour",
                "realisation_pct",
            ],
            "practice_alignment": [
                "target",
                "practice",
                "prescribed",
                "roi_per_dollar",
                "roi_verdict",
                "alignment",
            ],
            "effort_reallocation": [
                "rank",
                "from_target",
                "to_target",
                "hours_per_year",
                "expected_cm_gain_per_year",
                "gain_ci_low",
                "gain_ci_high",
            ],
        },
    )


decision_assets = [rep_variance, rep_ramp, icp_tables, roi_of_effort, roi_by_practice, strategy_alignment]
assets = [practice_effects, *decision_assets]


def definitions(settings) -> dg.Definitions:
    """Analytics: the cause-effect engine and the decision tables, following their marts."""
    from orchestration.operations import with_automation

    return dg.Definitions(assets=with_automation(assets))
