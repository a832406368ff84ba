"""Validation of the effect estimators against known truth (`make validate`).

1. LaLonde: NSW-treated vs CPS controls (observational), ATT by each estimator, the naive difference,
   and the experimental benchmark from the NSW randomised controls (1,794).
2. Demo truth: for each seed, generate the demo company, land it, build the dbt marts, estimate every
   practice x outcome, and compare with truth.json: bias, RMSE and 95% coverage per estimator (and naive).

    python -m bench.validate --out $SALESALIGN_HOME/validation --scale small --seeds 20
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pandas as pd

from salesalign.analytics.config import CausalConfig, load_config, read_deals
from salesalign.analytics.design import design_matrix
from salesalign.analytics.effects import frame_design, segment_effects
from salesalign.analytics.estimators import (
    ESTIMANDS,
    METHODS,
    Estimate,
    NotEstimable,
    TrimRule,
    estimate_all,
    naive_difference,
    normal_interval,
    pseudo_outcome,
)
from salesalign.transform.dbt import run_dbt

LALONDE_EXPERIMENTAL = 1794.34  # NSW treated - NSW controls, re78 (docs/stack.md)


# ------------------------------------------------------------------ LaLonde
def lalonde_frame() -> pd.DataFrame:
    """NSW treated (185) stacked on the CPS controls (15,992), Dehejia-Wahba covariates."""
    from causaldata import cps_mixtape, nsw_mixtape

    nsw = nsw_mixtape.load_pandas().data
    cps = cps_mixtape.load_pandas().data
    d = pd.concat([nsw[nsw.treat == 1], cps], ignore_index=True)
    return _dehejia_wahba(d)


def _dehejia_wahba(d: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame({"treat": d["treat"].astype(bool), "re78": d["re78"].astype(float)})
    for v in ("age", "educ", "re74", "re75"):
        x = d[v].astype(float)
        out[v], out[f"{v}_sq"] = x, x**2
    out["age_cu"] = d["age"].astype(float) ** 3
    for v in ("black", "hisp", "marr", "nodegree"):
        out[v] = d[v].astype(float)
    out["u74"], out["u75"] = (d["re74"] == 0).astype(float), (d["re75"] == 0).astype(float)
    out["educ_re74"] = d["educ"].astype(float) * d["re74"].astype(float)
    return out


LALONDE_COVARIATES = [
    "age",
    "age_sq",
    "age_cu",
    "educ",
    "educ_sq",
    "re74",
    "re74_sq",
    "re75",
    "re75_sq",
    "black",
    "hisp",
    "marr",
    "nodegree",
    "u74",
    "u75",
    "educ_re74",
]


def validate_lalonde(trim: TrimRule | None = None) -> dict:
    """ATT on NSW-treated vs CPS controls by each estimator, against the experimental 1,794."""
    from causaldata import nsw_mixtape

    trim = trim or TrimRule()
    nsw = nsw_mixtape.load_pandas().data
    exp, exp_se = naive_difference(nsw["re78"], nsw["treat"] == 1)
    d = lalonde_frame()
    design = design_matrix(d, {c: "numeric" for c in LALONDE_COVARIATES})
    y, t = d["re78"].to_numpy(), d["treat"].to_numpy()
    est, nu = estimate_all(y, t, design.X, binary=False, trim=trim)
    naive, naive_se = naive_difference(y, t)
    (lo, hi), p = normal_interval(naive, naive_se)
    res = {
        "benchmark": {
            "experimental_difference": exp,
            "experimental_se": exp_se,
            "n_nsw_treated": int((nsw.treat == 1).sum()),
            "n_nsw_control": int((nsw.treat == 0).sum()),
        },
        "trimming": trim.describe("ATT"),
        "naive": {
            "estimate": naive,
            "std_error": naive_se,
            "ci_low": lo,
            "ci_high": hi,
            "covers_experimental": bool(lo <= LALONDE_EXPERIMENTAL <= hi),
        },
        "att": {},
    }
    for method in METHODS:
        e = est[("ATT", method)]
        res["att"][method] = {
            "estimate": e.estimate,
            "std_error": e.std_error,
            "ci_low": e.ci[0],
            "ci_high": e.ci[1],
            "n_treated": e.n_treated,
            "n_control": e.n_control,
            "covers_experimental": bool(e.ci[0] <= LALONDE_EXPERIMENTAL <= e.ci[1]),
        }
    aipw = res["att"]["aipw"]
    res["naive"]["confounded"] = bool(not (aipw["ci_low"] <= naive <= aipw["ci_high"]))
    res["naive"]["verdict"] = (
        "confounded: the naive difference lies outside the adjusted (AIPW) interval"
        if res["naive"]["confounded"]
        else "naive difference within the adjusted interval"
    )
    return res


# ------------------------------------------------------------------ demo truth
def build_demo_warehouse(scale: str, seed: int, home: Path) -> Path:
    """Generate the demo drop, land it into home/warehouse.duckdb and `dbt run` the marts the
    estimators read; returns the drop's truth.json."""
    from salesalign import demo
    from salesalign.extract.landing import land_source
    from salesalign.extract.sources import FileDropSource

    drop = home / "drop"
    demo.generate(scale, seed, drop)
    warehouse = home / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        land_source(con, FileDropSource(drop, "demo"))
    marts = "+fct_deal_margin +dim_accounts +dim_reps"
    run_dbt(["run", "--quiet", "--select", marts], warehouse_path=warehouse)
    return drop / "truth.json"


def demo_estimates(frame: pd.DataFrame, config: CausalConfig) -> tuple[list[dict], list[dict]]:
    """Every practice x outcome (win, contribution margin) x estimand x estimator, plus naive, and the
    AIPW ATE per segment, without refutations (the harness checks estimates and intervals only)."""
    st = config.settings
    rows, segments = [], []
    for practice in config.practices.values():
        t = frame[practice.treatment].fillna(False).to_numpy(bool)
        X = frame_design(frame, practice, config).X
        for outcome in ("win", "contribution_margin"):
            binary = config.outcomes[outcome].kind == "binary"
            y = frame[outcome].astype("float64").to_numpy()
            naive, naive_se = naive_difference(y, t)
            (lo, hi), _ = normal_interval(naive, naive_se, st.alpha)
            try:
                est, nu = estimate_all(y, t, X, binary, st.trim, st.alpha, min_per_arm=st.min_deals_per_arm)
            except NotEstimable:
                est = {}
            if isinstance(est.get(("ATE", "aipw")), Estimate):
                s = st.trim.mask(nu.e.mean, "ATE")
                a, d = pseudo_outcome("ATE", y, t, nu, s)
                segments += segment_effects(
                    practice.name, outcome, "ATE", frame["segment_id"], a, d, t, s, st
                )
            for estimand in ESTIMANDS:
                rows.append(
                    {
                        "practice": practice.name,
                        "outcome": outcome,
                        "estimand": estimand,
                        "estimator": "naive",
                        "estimate": naive,
                        "ci_low": lo,
                        "ci_high": hi,
                    }
                )
                for method in METHODS:
                    e = est.get((estimand, method))
                    if isinstance(e, Estimate):
                        rows.append(
                            {
                                "practice": practice.name,
                                "outcome": outcome,
                                "estimand": estimand,
                                "estimator": method,
                                "estimate": e.estimate,
                                "ci_low": e.ci[0],
                                "ci_high": e.ci[1],
                                "std_error": e.std_error,
                            }
                        )
    return rows, segments


def validate_demo(
    scale: str, seeds: list[int], work_dir: Path | None = None, config: CausalConfig | None = None, log=print
) -> dict:
    """Bias, RMSE and 95% coverage per practice x outcome x estimand x estimator over seeds, and the
    coverage of the Bonferroni-adjusted segment intervals against the per-segment truth."""
    config = config or load_config()
    per_seed, per_segment = [], []
    for seed in seeds:
        t0 = time.perf_counter()
        home = Path(tempfile.mkdtemp(prefix=f"validate-{scale}-{seed}-", dir=work_dir))
        try:
            truth = json.loads(build_demo_warehouse(scale, seed, home).read_text())["practices"]
            with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
                frame, missing = read_deals(con, config)
            if missing:
                raise RuntimeError(f"mart columns missing: {missing}")
            rows, segments = demo_estimates(frame, config)
            for r in rows:
                r["truth"] = truth[r["practice"]][r["outcome"]]["ate" if r["estimand"] == "ATE" else "att"]
                r["seed"] = seed
                per_seed.append(r)
            for r in segments:
                true = truth[r["practice"]]["by_segment"].get(r["segment_id"], {}).get(r["outcome"])
                if r["status"] == "ok" and true is not None:
                    per_segment.append({**r, "truth": true, "seed": seed})
        finally:
            shutil.rmtree(home, ignore_errors=True)
        log(f"seed {seed}: {time.perf_counter() - t0:.1f}s")
    return summarise(pd.DataFrame(per_seed), pd.DataFrame(per_segment), scale, seeds)


def summarise(results: pd.DataFrame, segments: pd.DataFrame, scale: str, seeds: list[int]) -> dict:
    """The per-seed rows (and segment rows) reduced to bias, RMSE and coverage tables."""
    r = results.assign(
        error=results.estimate - results.truth,
        covered=(results.ci_low <= results.truth) & (results.truth <= results.ci_high),
    )
    g = r.groupby(["practice", "outcome", "estimand", "estimator"], sort=False)
    table = g.agg(
        truth_mean=("truth", "mean"),
        estimate_mean=("estimate", "mean"),
        bias=("error", "mean"),
        rmse=("error", lambda e: math.sqrt(float((e**2).mean()))),
        coverage=("covered", "mean"),
        runs=("seed", "count"),
    ).reset_index()
    overall = r.groupby(["estimand", "estimator"]).agg(coverage=("covered", "mean"), runs=("seed", "count"))
    out = {
        "scale": scale,
        "seeds": seeds,
        "by_practice": table.to_dict(orient="records"),
        "coverage_overall": overall.reset_index().to_dict(orient="records"),
    }
    if len(segments):
        z = 1.959963984540054
        s = segments.assign(
            covered=(segments.ci_low <= segments.truth) & (segments.truth <= segments.ci_high),
            covered_unadjusted=(segments.estimate - z * segments.std_error <= segments.truth)
            & (segments.truth <= segments.estimate + z * segments.std_error),
        )
        fam = s.groupby(["practice", "outcome", "seed"]).covered.all()
        out["segments"] = {
            "estimand": "ATE",
            "estimator": "aipw",
            "intervals": "bonferroni over the segments of one practice x outcome",
            "segment_estimates": len(s),
            "coverage_adjusted": float(s.covered.mean()),
            "coverage_unadjusted_95": float(s.covered_unadjusted.mean()),
            "familywise_coverage_adjusted": float(fam.mean()),
            "families": int(fam.size),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    """Run both validations, write their JSON into `--out` and print the tables."""
    ap = argparse.ArgumentParser(
        prog="python -m bench.validate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--scale", default="small")
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--first-seed", type=int, default=1)
    ap.add_argument("--out", type=Path, required=True, help="folder for the JSON results")
    ap.add_argument("--skip-demo", action="store_true")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    lal = validate_lalonde()
    (args.out / "lalonde.json").write_text(json.dumps(lal, indent=2) + "\n")
    print(
        "LaLonde ATT (NSW treated vs CPS controls; experimental benchmark "
        f"{lal['benchmark']['experimental_difference']:,.0f}):"
    )
    for m, v in lal["att"].items():
        interval = f"[{v['ci_low']:,.0f}, {v['ci_high']:,.0f}]"
        print(f"  {m:5s} {v['estimate']:9,.0f}  {interval}  covers={v['covers_experimental']}")
    print(f"  naive {lal['naive']['estimate']:9,.0f}  {lal['naive']['verdict']}")
    if args.skip_demo:
        return 0
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    res = validate_demo(args.scale, seeds)
    (args.out / f"demo_truth_{args.scale}.json").write_text(json.dumps(res, indent=2) + "\n")
    print(pd.DataFrame(res["by_practice"]).to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    print(pd.DataFrame(res["coverage_overall"]).to_string(index=False))
    print(json.dumps(res.get("segments", {}), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
