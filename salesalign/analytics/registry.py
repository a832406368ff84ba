"""The one declaration of every analytics table: what it holds, column by column, and the analysis that
writes it.

An `Analysis` computes one or more tables from the marts (and, for some, from the tables of upstream
analyses) with one pure function, named here as ``"module:function"`` and imported on first use (the
modules take their column lists from this registry, so they cannot be imported by it). Everything
else derives from these declarations:

* the Dagster assets `analytics/<table>`, one multi-asset per analysis (orchestration/analytics.py);
* the schema each table is written with (`salesalign.analytics.warehouse.write_table`);
* docs/analytics-tables.md, the dbt source `analytics` and the dbt exposures (`make generate`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from salesalign.analytics import preconditions as pre
from salesalign.analytics.config import MART_TABLES as CAUSAL_MART_TABLES
from salesalign.analytics.decision_data import MART_TABLES as DECISION_MARTS
from salesalign.analytics.decision_data import PRACTICES
from salesalign.analytics.preconditions import Precondition

if TYPE_CHECKING:
    import pandas as pd

    from salesalign.analytics.runner import AnalysisInputs

SCHEMA = "analytics"
VARCHAR, BIGINT, DOUBLE, BOOLEAN, DATE = "VARCHAR", "BIGINT", "DOUBLE", "BOOLEAN", "DATE"
SQL_TYPES = (VARCHAR, BIGINT, DOUBLE, BOOLEAN, DATE)
CAUSAL_MARTS = tuple(t.split(".", 1)[1] for t in CAUSAL_MART_TABLES.values())


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # DuckDB SQL type, one of SQL_TYPES
    description: str


@dataclass(frozen=True)
class Table:
    """One table of the `analytics` schema."""

    name: str
    description: str  # one sentence: the asset's and the dbt source table's description
    columns: tuple[Column, ...]
    preview: tuple[str, ...] = ()  # columns shown in the Dagster UI after a run
    preview_where: str | None = None  # pandas query selecting the preview rows (default: the first 20)
    tally: str | None = None  # a column whose value counts are shown in the Dagster UI
    guide: str = ""  # markdown: how to read its rows, beyond the column descriptions
    status_keys: tuple[Mapping[str, object], ...] = ({},)  # one status row per key (readers join on them)
    status_values: Mapping[str, object] | None = None  # other columns a status row sets, e.g. the verdict

    @property
    def key(self) -> tuple[str, str]:
        """The Dagster asset key path: `analytics/<table>`."""
        return (SCHEMA, self.name)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def types(self) -> dict[str, str]:
        """Column name -> SQL type, in table order."""
        return {c.name: c.type for c in self.columns}

    def status_frame(self, status: str, period: Mapping[str, object] | None = None) -> pd.DataFrame:
        """The table when it holds no numbers: one row per ``status_keys`` with ``status`` saying why
        (``not estimable: ...`` or ``failed: ...``), the declared ``status_values`` and the period."""
        import pandas as pd

        extra = {**(self.status_values or {}), **{k: v for k, v in (period or {}).items() if k in self.types}}
        rows = [{**key, **extra, "status": status} for key in self.status_keys]
        return pd.DataFrame(rows).reindex(columns=self.column_names)

    def ddl(self) -> str:
        """The `CREATE OR REPLACE TABLE` statement of the table."""
        cols = ", ".join(f'"{c.name}" {c.type}' for c in self.columns)
        return f"CREATE OR REPLACE TABLE {SCHEMA}.{self.name} ({cols})"


CLOSED_DEALS, OPPORTUNITIES = "closed deals", "opportunities"  # the populations of `Analysis.population`


@dataclass(frozen=True)
class Analysis:
    """One computation that writes one or more tables, wired as one Dagster multi-asset."""

    name: str
    title: str  # heading on the docs page
    description: str  # the multi-asset's description
    function: str  # "module:function", a pure function (AnalysisInputs) -> {table name: DataFrame}
    tables: tuple[Table, ...]
    marts: tuple[str, ...] = DECISION_MARTS  # models of the `marts` schema it reads
    reads: tuple[str, ...] = ()  # analytics tables of upstream analyses it reads
    guide: str = ""  # markdown: how to read its tables (method, caveats)
    # checked by the runner on the marts before the compute; unmet, the tables they gate hold status rows
    preconditions: tuple[Precondition, ...] = ()
    # "module:function" (inputs, status) -> {table: frame}: status rows keyed by what only the inputs
    # know (the practices of causal.yml); default: each table's `status_frame`
    status_rows: str | None = None
    # what the preconditions are checked on, and without which nothing is computed: `CLOSED_DEALS`
    # (`AnalysisInputs.deals`) or `OPPORTUNITIES` (`AnalysisInputs.opportunities`, open ones too)
    population: str = CLOSED_DEALS

    def compute(self, inputs: AnalysisInputs) -> dict[str, pd.DataFrame]:
        """Run the analysis' function; its result must hold exactly the declared tables."""
        function: Callable[[AnalysisInputs], dict[str, pd.DataFrame]] = _function(self.function)
        out = function(inputs)
        declared = [t.name for t in self.tables]
        if sorted(out) != sorted(declared):
            raise ValueError(
                f"analysis {self.name} ({self.function}) returned tables {sorted(out)}, "
                f"the registry declares {sorted(declared)}"
            )
        return {name: out[name] for name in declared}

    def status_tables(
        self, status: str, inputs: AnalysisInputs | None = None, period: Mapping[str, object] | None = None
    ) -> dict[str, pd.DataFrame]:
        """Every table of the analysis as status rows saying ``status``. The analysis' own
        ``status_rows`` is used when declared and the inputs it needs can be read; otherwise (or when
        it raises) each table's generic `Table.status_frame`."""
        generic = {t.name: t.status_frame(status, period) for t in self.tables}
        if self.status_rows is None or inputs is None:
            return generic
        try:
            out = _function(self.status_rows)(inputs, status)
        except Exception:  # e.g. causal.yml unreadable: the generic rows still say why
            return generic
        return {**generic, **{name: frame for name, frame in out.items() if name in generic}}

    def gated(self, table: str) -> tuple[Precondition, ...]:
        """The preconditions that gate ``table``."""
        return tuple(p for p in self.preconditions if not p.tables or table in p.tables)

    def unmet(self, deals: pd.DataFrame, reps: pd.DataFrame | None) -> dict[str, str]:
        """Table name -> its status (``not estimable: ...``, every unmet precondition joined by `; `)
        for the tables whose preconditions the closed deals and reps do not meet."""
        findings = {p: p.unmet(deals, reps) for p in self.preconditions}
        out = {}
        for t in self.tables:
            reasons = [findings[p] for p in self.gated(t.name) if findings[p]]
            if reasons:
                out[t.name] = pre.NOT_ESTIMABLE + ": " + "; ".join(
                    r.removeprefix(pre.NOT_ESTIMABLE + ": ") for r in reasons
                )
        return out


def _function(ref: str) -> Callable:
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


def _c(name: str, type_: str, description: str) -> Column:
    return Column(name, type_, description)


PERIOD = (
    _c("period_start", DATE, "First close date of the closed deals the row describes."),
    _c("period_end", DATE, "Last close date of the closed deals the row describes."),
)
STATUS = _c("status", VARCHAR, "`ok`, or in words what could not be computed and why.")
SEGMENT_ID = "Segment of the marts: `industry|size_band|region`."

# ---------------------------------------------------------------------------------------- effects
PRACTICE_EFFECTS = Table(
    "practice_effects",
    "Effect of each sales practice on win, contribution margin and days to close: ATE and ATT by "
    "regression adjustment, IPW and AIPW, with intervals, diagnostics and a verdict.",
    (
        _c("practice", VARCHAR, "Sales practice (the treatment), as declared in causal.yml."),
        _c("outcome", VARCHAR, "`win`, `contribution_margin` or `days_to_close`."),
        _c("estimand", VARCHAR, "`ATE` (all deals of the trimmed sample) or `ATT` (the deals that used "
           "the practice)."),
        _c("estimator", VARCHAR, "`ra` (regression adjustment), `ipw` (inverse probability weighting) or "
           "`aipw` (augmented IPW, doubly robust: the headline)."),
        _c("estimate", DOUBLE, "The effect: probability points for win, reporting currency per deal for "
           "contribution margin, days for days to close."),
        _c("std_error", DOUBLE, "Standard error from the influence function."),
        _c("ci_low", DOUBLE, "Lower limit of the 95% Wald interval."),
        _c("ci_high", DOUBLE, "Upper limit of the 95% Wald interval."),
        _c("p_value", DOUBLE, "Two-sided p-value of no effect."),
        _c("n_treated", BIGINT, "Deals with the practice in the sample after trimming."),
        _c("n_control", BIGINT, "Deals without the practice in the sample after trimming."),
        _c("share_trimmed", DOUBLE, "Share of the deals (ATE) or of the treated deals (ATT) outside the "
           "trimming rule, left out."),
        _c("max_abs_smd_before", DOUBLE, "Largest absolute standardised mean difference of the declared "
           "confounders between treated and control deals, before weighting."),
        _c("max_abs_smd_after", DOUBLE, "The same after weighting (balance needs it below "
           "`max_abs_smd_after` of causal.yml)."),
        _c("placebo_estimate", DOUBLE, "Refutation: the same estimator on a randomly permuted treatment; "
           "should be near 0."),
        _c("sensitivity_value", DOUBLE, "Point value of `sensitivity_metric`."),
        _c("verdict", VARCHAR, "`robust`, `fragile`, `no detectable effect` or `not estimable`."),
        _c("naive_difference", DOUBLE, "Mean outcome of deals with the practice minus without, "
           "unadjusted."),
        _c("outcome_kind", VARCHAR, "`binary` or `continuous`."),
        _c("naive_std_error", DOUBLE, "Standard error of the naive difference."),
        _c("naive_confounded", BOOLEAN, "True when the naive difference lies outside the interval: the "
           "raw comparison misleads."),
        _c("population", VARCHAR, "Whom the estimate describes: the trimming rule of the estimand."),
        _c("sensitivity_metric", VARCHAR, "`e_value_risk_ratio` (binary outcomes: E-value of the risk "
           "ratio) or `robustness_value_partial_r2` (continuous outcomes: Cinelli-Hazlett robustness "
           "value)."),
        _c("sensitivity_value_ci", DOUBLE, "The sensitivity metric at the interval limit: how strong a "
           "hidden confounder must be to move the interval to include 0."),
        _c("random_common_cause_shift", DOUBLE, "Refutation: change of the estimate when a random "
           "covariate is added."),
        _c("subset_max_shift", DOUBLE, "Refutation: largest change of the estimate on random half "
           "samples."),
        _c("verdict_reason", VARCHAR, "Why the verdict: the checks that failed, or why nothing was "
           "estimated."),
        _c("status", VARCHAR, "`ok`, or why nothing was estimated (marts not available, inputs missing, "
           "no comparison group, no overlap, too few deals after trimming)."),
    ),
    preview=("practice", "outcome", "estimate", "ci_low", "ci_high", "verdict"),
    preview_where="estimator == 'aipw' and estimand == 'ATE'",
    tally="verdict",
    status_values={"verdict": "not estimable"},
    guide="One row per practice x outcome x estimand x estimator. The verdict is `robust` when the "
    "interval excludes 0, the confounders are balanced after weighting, the refutations pass (the "
    "placebo estimate and the random-subset estimates within 2.58 standard errors, the shift from a "
    "random common cause under 0.2 standard errors) and the interval survives moderate hidden "
    "confounding (`min_e_value_ci`, `min_robustness_value_ci` of causal.yml); "
    "`fragile` when it is significant but a check fails (named in `verdict_reason`). The E-value of a "
    "binary outcome is the risk ratio a hidden confounder would need with both the practice and the "
    "outcome to explain the effect away; the robustness value of a continuous one is the share of "
    "residual variance (partial R2) it would need to explain.",
)
PRACTICE_EFFECTS_BY_SEGMENT = Table(
    "practice_effects_by_segment",
    "AIPW effect per practice x segment, Bonferroni-adjusted intervals, Holm p-values, 'too few deals' "
    "below the minimum sample.",
    (
        _c("practice", VARCHAR, "Sales practice."),
        _c("outcome", VARCHAR, "`win`, `contribution_margin` or `days_to_close`."),
        _c("segment_id", VARCHAR, SEGMENT_ID),
        _c("estimand", VARCHAR, "`ATE` or `ATT`, within the segment."),
        _c("estimator", VARCHAR, "`aipw`: the global models' pseudo-outcomes averaged over the segment."),
        _c("estimate", DOUBLE, "The effect in the segment, in the outcome's unit."),
        _c("std_error", DOUBLE, "Standard error."),
        _c("ci_low", DOUBLE, "Lower limit of the interval, Bonferroni-adjusted over the segments tested."),
        _c("ci_high", DOUBLE, "Upper limit of the interval, Bonferroni-adjusted over the segments tested."),
        _c("ci_method", VARCHAR, "How the interval was adjusted, e.g. `bonferroni over 31 segments`."),
        _c("p_value", DOUBLE, "Raw two-sided p-value."),
        _c("p_value_holm", DOUBLE, "Holm-adjusted p-value over the segments tested."),
        _c("n_treated", BIGINT, "Deals of the segment with the practice in the trimmed sample."),
        _c("n_control", BIGINT, "Deals of the segment without the practice in the trimmed sample."),
        _c("n_segments_tested", BIGINT, "Segments with enough deals for this practice x outcome x "
           "estimand: the multiplicity family."),
        _c("status", VARCHAR, "`ok`, or `too few deals (need N treated and control)` below "
           "`segment_min_deals_per_arm` of causal.yml."),
    ),
)
EFFECT_DIAGNOSTICS = Table(
    "effect_diagnostics",
    "Overlap, trimming, covariate balance (SMD before/after weighting), refutations and sensitivity "
    "behind every practice effect.",
    (
        _c("practice", VARCHAR, "Sales practice."),
        _c("outcome", VARCHAR, "Outcome; NULL for overlap, trimming and balance (they do not depend on "
           "it)."),
        _c("estimand", VARCHAR, "`ATE` or `ATT`; NULL for overlap."),
        _c("estimator", VARCHAR, "`ipw_weights` for balance, the estimator for refutation and sensitivity "
           "rows, NULL otherwise."),
        _c("kind", VARCHAR, "`overlap`, `trimming`, `balance`, `refutation` or `sensitivity`."),
        _c("name", VARCHAR, "What is measured: a propensity quantile by arm (`ps_treated_q05`) or the share "
           "near 0 or 1 (overlap), `share_trimmed`, a covariate (balance), `placebo_permutation`, "
           "`random_common_cause` or `random_subset_<i>` (refutation), the sensitivity metric."),
        _c("value", DOUBLE, "Overlap: the quantile or share; trimming: the share trimmed; balance: the SMD "
           "before weighting; refutation: the refuted estimate; sensitivity: the value."),
        _c("value_after", DOUBLE, "Balance: the SMD after weighting; placebo: its standard error; other "
           "refutations: the estimate they are compared with."),
        _c("detail", VARCHAR, "Trimming: the rule; refutation: `pass` or `fail`."),
        STATUS,
    ),
)

# ---------------------------------------------------------------------------------------- reps
OUTCOME_KEYS = ({"outcome": "win"}, {"outcome": "contribution_margin"})
NOTES = _c("notes", VARCHAR, "What the fit left out or penalised to stay estimable, and why (strata where "
           "every deal was won or lost, a penalised solve); NULL when nothing.")
REP_PERFORMANCE = Table(
    "rep_performance",
    "Per rep and outcome (win, contribution margin): raw mean, mean expected from the deal mix, shrunken "
    "rep effect with interval, mix-adjusted mean and rank.",
    (
        _c("rep_id", VARCHAR, "The rep."),
        _c("outcome", VARCHAR, "`win` or `contribution_margin`."),
        _c("scale", VARCHAR, "Scale of the rep effect: `logit (latent)` or `<reporting currency> per deal` "
           "(e.g. `USD per deal`)."),
        _c("n_deals", BIGINT, "Closed deals owned by the rep."),
        _c("raw_mean", DOUBLE, "Win rate or contribution margin per deal as realised."),
        _c("expected_mean_given_mix", DOUBLE, "What the rep's deals would average with a company-average "
           "rep (fixed effects only)."),
        _c("rep_effect", DOUBLE, "Shrunken rep effect (BLUP / conditional mode) on the model's scale."),
        _c("rep_effect_se", DOUBLE, "Conditional standard error of the rep effect."),
        _c("ci_low", DOUBLE, "Lower limit of the conditional 95% interval of the rep effect."),
        _c("ci_high", DOUBLE, "Upper limit of the conditional 95% interval of the rep effect."),
        _c("adjusted_mean", DOUBLE, "Mix-adjusted performance: the win rate if the rep had worked every "
           "deal of the company, or the company mean contribution per deal plus the rep effect."),
        _c("adjusted_rank", BIGINT, "Rank on `adjusted_mean` among reps with at least "
           "`min_deals_per_rep` deals (1 = best)."),
        _c("adjusted_quartile", BIGINT, "Quartile of `adjusted_rank` (1 = top)."),
        _c("raw_rank", BIGINT, "Rank on `raw_mean` among the same reps (1 = best)."),
        _c("boundary", BOOLEAN, "As in rep_variance_summary: the rep variance is at 0."),
        _c("model", VARCHAR, "The model fitted."),
        *PERIOD,
        _c("status", VARCHAR, "`ok`, or why the rep is not ranked (too few deals) or the outcome not "
           "modelled (no cost data)."),
        NOTES,
    ),
    preview=("rep_id", "outcome", "n_deals", "raw_mean", "adjusted_mean", "rep_effect", "ci_low", "ci_high",
             "adjusted_rank"),
    status_keys=OUTCOME_KEYS,
)
REP_VARIANCE_SUMMARY = Table(
    "rep_variance_summary",
    "How much of the spread is the rep: variance components, ICC with a profile-likelihood interval, "
    "zero-variance boundary flag, raw vs mix-adjusted quartile ratios.",
    (
        _c("outcome", VARCHAR, "`win` or `contribution_margin` (one row each)."),
        _c("model", VARCHAR, "The model fitted."),
        _c("scale", VARCHAR, "Scale of the variances: `logit (latent)` or `<reporting currency> per deal`."),
        _c("n_deals", BIGINT, "Closed deals in the fit."),
        _c("n_reps", BIGINT, "Reps in the fit."),
        _c("sigma2_rep", DOUBLE, "Variance of the rep effects (0 at the boundary)."),
        _c("sigma2_residual", DOUBLE, "Deal-level variance (pi^2/3 on the latent logistic scale)."),
        _c("icc", DOUBLE, "Intraclass correlation: the share of the variance that is between reps."),
        _c("icc_ci_low", DOUBLE, "Lower limit of the ICC's 95% interval."),
        _c("icc_ci_high", DOUBLE, "Upper limit of the ICC's 95% interval."),
        _c("icc_ci_method", VARCHAR, "How the ICC interval was computed."),
        _c("boundary", BOOLEAN, "True when the rep variance is at 0 and the model was refitted without "
           "it."),
        _c("raw_top_bottom_quartile_ratio", DOUBLE, "Mean outcome of the top quartile of reps over the "
           "bottom quartile, raw (NULL when the bottom is <= 0)."),
        _c("adjusted_top_bottom_quartile_ratio", DOUBLE, "The same on mix-adjusted means: the spread that "
           "is the rep, not the territory."),
        _c("raw_top_quartile_mean", DOUBLE, "Raw mean outcome of the top quartile of reps."),
        _c("raw_bottom_quartile_mean", DOUBLE, "Raw mean outcome of the bottom quartile of reps."),
        _c("adjusted_top_quartile_mean", DOUBLE, "Mix-adjusted mean outcome of the top quartile of reps."),
        _c("adjusted_bottom_quartile_mean", DOUBLE, "Mix-adjusted mean outcome of the bottom quartile of "
           "reps."),
        _c("min_deals_per_rep", BIGINT, "Reps with fewer closed deals are not ranked."),
        _c("adjusted_for", VARCHAR, "The deal-mix covariates of the model."),
        *PERIOD,
        STATUS,
        NOTES,
    ),
    preview=("outcome", "icc", "icc_ci_low", "icc_ci_high", "boundary", "raw_top_bottom_quartile_ratio",
             "adjusted_top_bottom_quartile_ratio", "status"),
    status_keys=OUTCOME_KEYS,
)
REP_RAMP = Table(
    "rep_ramp",
    "Talent ramp: time to first win and first-year results by hiring profile and hire cohort; adjusted "
    "effect of each hiring trait on first-year winning.",
    (
        _c("kind", VARCHAR, "`hiring_profile`, `hire_cohort`, `trait_effect` or `status`."),
        _c("group_name", VARCHAR, "The profile (prior industry experience | previous role), the hire year "
           "or the trait."),
        _c("n_reps", BIGINT, "Reps hired inside the data window (trait effect: reps with first-year "
           "deals)."),
        _c("n_reps_with_win", BIGINT, "Of those, reps with a won deal."),
        _c("median_days_to_first_win", DOUBLE, "Kaplan-Meier median of the days from hire to the first won "
           "deal (reps without a win are censored at the window end)."),
        _c("n_first_year_deals", BIGINT, "Deals created in the reps' first 12 months."),
        _c("first_year_win_rate", DOUBLE, "Win rate of those deals."),
        _c("first_year_win_rate_ci_low", DOUBLE, "Lower limit of its rep-clustered 95% interval."),
        _c("first_year_win_rate_ci_high", DOUBLE, "Upper limit of its rep-clustered 95% interval."),
        _c("n_reps_full_first_year", BIGINT, "Reps whose first year ended inside the window."),
        _c("first_year_cm_per_rep", DOUBLE, "Mean first-year contribution margin of those reps."),
        _c("first_year_cm_ci_low", DOUBLE, "Lower limit of its t interval over reps."),
        _c("first_year_cm_ci_high", DOUBLE, "Upper limit of its t interval over reps."),
        _c("estimate", DOUBLE, "Trait effect: the first-year x trait interaction, logit scale (reference "
           "previous role `other`)."),
        _c("std_error", DOUBLE, "Standard error of the trait effect."),
        _c("ci_low", DOUBLE, "Lower limit of the per-trait 95% interval."),
        _c("ci_high", DOUBLE, "Upper limit of the per-trait 95% interval."),
        _c("simultaneous_ci_low", DOUBLE, "Lower limit of the interval that holds for all traits at once "
           "(Bonferroni)."),
        _c("simultaneous_ci_high", DOUBLE, "Upper limit of the interval that holds for all traits at once "
           "(Bonferroni)."),
        _c("p_value", DOUBLE, "Two-sided p-value of the trait effect."),
        _c("ame_first_year_win", DOUBLE, "Average change in first-year win probability from the trait "
           "(average marginal effect over first-year deals)."),
        _c("ame_ci_low", DOUBLE, "Lower limit of its delta-method 95% interval."),
        _c("ame_ci_high", DOUBLE, "Upper limit of its delta-method 95% interval."),
        _c("method", VARCHAR, "The method behind the row."),
        *PERIOD,
        _c("status", VARCHAR, "`ok`, `fragile: ...` (trait effects resting on too few ramping reps) or why "
           "nothing was computed."),
    ),
    preview=("kind", "group_name", "n_reps", "median_days_to_first_win", "first_year_win_rate", "estimate",
             "ci_low", "ci_high", "status"),
    status_values={"kind": "status"},
)

# ---------------------------------------------------------------------------------------- ICP
BASIS = _c("basis", VARCHAR, "What the ICP ranks on, the first rung of the ladder the data supports: "
           "`contribution margin per selling hour`, `contribution margin per closed deal (...)`, `net "
           "bookings per closed deal (...)` or `won deals per closed deal (...)`; the parenthesis says why.")
ICP_SEGMENTS = Table(
    "icp_segments",
    "ICP segments (firmographic combinations): outcomes with intervals, score and tier A-D; `basis` says "
    "whether they rank on contribution per selling hour or, without cost data, on net bookings per closed "
    "deal.",
    (
        _c("icp_segment", VARCHAR, "Values of the ICP dimensions joined by `|` (equals `segment_id` for "
           "the default dimensions)."),
        _c("dimensions", VARCHAR, "The ICP dimensions, comma-separated."),
        _c("n_accounts", BIGINT, "Accounts with closed deals in the segment."),
        _c("n_deals", BIGINT, "Closed deals."),
        _c("n_won", BIGINT, "Won deals."),
        _c("win_rate", DOUBLE, "Won / closed deals."),
        _c("win_rate_ci_low", DOUBLE, "Lower limit of its account-clustered 95% interval."),
        _c("win_rate_ci_high", DOUBLE, "Upper limit of its account-clustered 95% interval."),
        _c("contribution_margin", DOUBLE, "Total contribution margin of the segment's closed deals."),
        _c("cm_per_deal", DOUBLE, "Contribution margin per closed deal."),
        _c("cm_per_deal_ci_low", DOUBLE, "Lower limit of its account-clustered 95% interval."),
        _c("cm_per_deal_ci_high", DOUBLE, "Upper limit of its account-clustered 95% interval."),
        _c("selling_hours", DOUBLE, "Selling hours spent on the segment's closed deals."),
        _c("cm_per_selling_hour", DOUBLE, "Contribution margin per selling hour."),
        _c("cm_per_selling_hour_ci_low", DOUBLE, "Lower limit of its account-clustered 95% interval."),
        _c("cm_per_selling_hour_ci_high", DOUBLE, "Upper limit of its account-clustered 95% interval."),
        _c("cost_to_serve_share_of_revenue", DOUBLE, "Cost-to-serve over net revenue."),
        _c("mean_days_to_close", DOUBLE, "Mean days from creation to close."),
        _c("repeat_account_share", DOUBLE, "Share of accounts with more than one won deal."),
        _c("expansion_deals", BIGINT, "Won deals after an account's first win."),
        _c("score", DOUBLE, "Contribution per selling hour shrunk towards the overall rate (empirical "
           "Bayes), so small lucky segments do not top the list; NULL below the minimum sample."),
        _c("score_rank", BIGINT, "Rank on the score (1 = best)."),
        _c("tier", VARCHAR, "A-D: the quartile of the score among scored segments."),
        *PERIOD,
        BASIS,
        _c("status", VARCHAR, "`ok`, or why the segment is not scored (too few deals or accounts) or "
           "nothing was computed."),
    ),
    preview=("icp_segment", "n_deals", "cm_per_selling_hour", "cm_per_selling_hour_ci_low",
             "cm_per_selling_hour_ci_high", "score", "tier"),
)
ICP_ACCOUNT_FIT = Table(
    "icp_account_fit",
    "Account fit score 0-100 and tier from a model of contribution per selling hour (or net bookings per "
    "closed deal without cost data; see `basis`) on firmographics.",
    (
        _c("account_id", VARCHAR, "The account (prospects included)."),
        _c("icp_segment", VARCHAR, "Its ICP segment."),
        _c("industry", VARCHAR, "Industry."),
        _c("size_band", VARCHAR, "Size band (small, mid, enterprise)."),
        _c("region", VARCHAR, "Region."),
        _c("employee_count", BIGINT, "Employees."),
        _c("predicted_cm_per_selling_hour", DOUBLE, "Prediction of the weighted least-squares model of "
           "account contribution per selling hour on the fit features (weights: selling hours)."),
        _c("fit_score", DOUBLE, "0-100: the prediction's percentile among all accounts."),
        _c("fit_tier", VARCHAR, "A (score >= 75), B (>= 50), C (>= 25) or D."),
        _c("segment_tier", VARCHAR, "Tier of the account's ICP segment."),
        _c("n_closed_deals", BIGINT, "Closed deals of the account."),
        _c("n_won_deals", BIGINT, "Won deals of the account."),
        _c("contribution_margin", DOUBLE, "Contribution margin of its closed deals."),
        _c("selling_hours", DOUBLE, "Selling hours on its closed deals."),
        _c("realised_cm_per_selling_hour", DOUBLE, "Its realised contribution per selling hour."),
        _c("model", VARCHAR, "The fit model."),
        *PERIOD,
        BASIS,
        STATUS,
    ),
    preview=("account_id", "icp_segment", "fit_score", "fit_tier", "segment_tier"),
)
ICP_VALIDATION = Table(
    "icp_validation",
    "Out-of-time validation of the ICP tiers and the fit score (later-window outcomes per tier, lift of "
    "tier A over the rest) and the fit score's calibration table.",
    (
        _c("validation", VARCHAR, "`segment_tier_out_of_time`, `account_fit_tier_out_of_time` or "
           "`account_fit_calibration`."),
        _c("group_name", VARCHAR, "`tier A`..`tier D`, `tier A vs rest` or `score decile <n>`."),
        _c("metric", VARCHAR, "`cm_per_selling_hour`, `win_rate`, `cm_per_active_account_month`, "
           "`lift_cm_per_selling_hour` or `win_rate_difference`."),
        _c("n_accounts", BIGINT, "Accounts behind the row."),
        _c("n_deals", BIGINT, "Later-window deals behind the row."),
        _c("estimate", DOUBLE, "The metric, realised in the later window."),
        _c("ci_low", DOUBLE, "Lower limit of its 95% interval (account-clustered; percentile bootstrap "
           "over accounts for the tier A comparisons)."),
        _c("ci_high", DOUBLE, "Upper limit of its 95% interval."),
        _c("predicted", DOUBLE, "Calibration: what the earlier-window model predicted for the decile."),
        _c("compared_with", VARCHAR, "What the estimate is compared with."),
        _c("train_period_start", DATE, "First close date of the earlier (training) window."),
        _c("train_period_end", DATE, "Last close date of the earlier (training) window."),
        _c("test_period_start", DATE, "First close date of the later (test) window."),
        _c("test_period_end", DATE, "Last close date of the later (test) window."),
        BASIS,
        STATUS,
    ),
    preview=("validation", "group_name", "metric", "estimate", "ci_low", "ci_high"),
    guide="Tiers are re-derived **on the earlier window only** (`train_period_*`) and judged on the later "
    "window (`test_period_*`). Rows by `validation`:\n\n"
    "- `segment_tier_out_of_time` and `account_fit_tier_out_of_time`: per tier (`group_name` = `tier "
    "A`..), `metric` = `cm_per_selling_hour`, `win_rate`, `cm_per_active_account_month` (later-window CM "
    "per account with deals in that window, per month) with intervals; and `group_name` = `tier A vs "
    "rest`: `lift_cm_per_selling_hour` (ratio tier A / other tiers; > 1 = tier A delivered more "
    "profitable growth per hour) and `win_rate_difference`, both with percentile bootstrap intervals over "
    "accounts.\n"
    "- `account_fit_calibration`: per score decile of the earlier-window model, the later window's "
    "realised CM per selling hour (`estimate`, interval) next to the model's `predicted` value.",
)

# ---------------------------------------------------------------------------------------- ROI
RETURNS = (
    _c("n_accounts", BIGINT, "Accounts with closed deals in the group."),
    _c("n_deals", BIGINT, "Closed deals."),
    _c("n_won", BIGINT, "Won deals."),
    _c("win_rate", DOUBLE, "Won / closed deals."),
    _c("contribution_margin", DOUBLE, "Total contribution margin (already net of selling cost)."),
    _c("selling_hours", DOUBLE, "Selling hours."),
    _c("selling_cost", DOUBLE, "Selling cost: effort plus commissions."),
    _c("cm_per_selling_hour", DOUBLE, "Contribution margin per selling hour."),
    _c("cm_per_selling_hour_ci_low", DOUBLE, "Lower limit of its account-clustered 95% interval."),
    _c("cm_per_selling_hour_ci_high", DOUBLE, "Upper limit of its account-clustered 95% interval."),
    _c("cm_per_selling_dollar", DOUBLE, "Contribution margin per unit of selling cost (a ratio: the "
       "reporting currency cancels out): margin left after paying for the selling, per unit spent on it."),
    _c("cm_per_selling_dollar_ci_low", DOUBLE, "Lower limit of its account-clustered 95% interval."),
    _c("cm_per_selling_dollar_ci_high", DOUBLE, "Upper limit of its account-clustered 95% interval."),
)
RETURNS_STATUS = _c("status", VARCHAR, "`ok`, `no selling hours`, no selling cost recorded, or no cost "
                    "data (the CM, hour and cost columns are then NULL).")
RETURNS_PREVIEW = ("n_deals", "cm_per_selling_hour", "cm_per_selling_hour_ci_low",
                   "cm_per_selling_hour_ci_high", "cm_per_selling_dollar", "status")
ROI_BY_SEGMENT = Table(
    "roi_by_segment",
    "Contribution margin per selling hour and per unit of selling cost, per segment.",
    (
        _c("segment_id", VARCHAR, SEGMENT_ID),
        _c("industry", VARCHAR, "Industry of the segment."),
        _c("size_band", VARCHAR, "Size band of the segment."),
        _c("region", VARCHAR, "Region of the segment."),
        *RETURNS,
        *PERIOD,
        RETURNS_STATUS,
    ),
    preview=("segment_id", *RETURNS_PREVIEW),
)
ROI_BY_CHANNEL = Table(
    "roi_by_channel",
    "Contribution margin per selling hour and per unit of selling cost, per lead source.",
    (
        _c("lead_source", VARCHAR, "Lead source of the deals (`unknown` when not recorded)."),
        *RETURNS,
        *PERIOD,
        RETURNS_STATUS,
    ),
    preview=("lead_source", *RETURNS_PREVIEW),
)
ROI_BY_REP = Table(
    "roi_by_rep",
    "Returns per rep, raw and mix-adjusted (contribution-margin mixed model).",
    (
        _c("rep_id", VARCHAR, "The rep."),
        *RETURNS,
        _c("expected_cm_per_deal_given_mix", DOUBLE, "Contribution per deal the rep's deals would make "
           "with a company-average rep (rep_performance)."),
        _c("adjusted_cm_per_deal", DOUBLE, "Mix-adjusted contribution per deal: the company mean plus the "
           "rep's shrunken effect from the contribution-margin mixed model."),
        _c("adjusted_cm_per_deal_ci_low", DOUBLE, "Lower limit of its conditional 95% interval."),
        _c("adjusted_cm_per_deal_ci_high", DOUBLE, "Upper limit of its conditional 95% interval."),
        _c("adjusted_cm_per_selling_dollar", DOUBLE, "Mix-adjusted contribution per unit of the rep's "
           "selling cost (a ratio)."),
        _c("adjusted_rank", BIGINT, "The rep's rank on mix-adjusted contribution (rep_performance; 1 = "
           "best)."),
        *PERIOD,
        RETURNS_STATUS,
    ),
    preview=("rep_id", "n_deals", "cm_per_selling_hour", "adjusted_cm_per_deal", "adjusted_rank"),
)
ROI_BY_PRACTICE = Table(
    "roi_by_practice",
    "ROI of each practice from its causal effect on contribution margin: net incremental contribution "
    "per deal, per unit of the practice's cost, and a verdict respecting the interval.",
    (
        _c("practice", VARCHAR, "Sales practice."),
        _c("level", VARCHAR, "`overall` (all deals), `size_band` (pooled over the band's segments with "
           "enough deals, deal-weighted) or `segment`."),
        _c("group_name", VARCHAR, "`all deals`, the size band or the segment."),
        _c("estimand", VARCHAR, "`ATE` (all deals of the group) or `ATT` (overall only: the deals that "
           "used the practice)."),
        _c("n_treated", BIGINT, "Deals with the practice behind the estimate."),
        _c("n_control", BIGINT, "Deals without the practice behind the estimate."),
        _c("practice_hours_per_treated_deal", DOUBLE, "Mean hours of the practice's activities on the "
           "deals that used it."),
        _c("loaded_cost_per_hour", DOUBLE, "Loaded hourly cost of those deals' selling effort."),
        _c("incremental_cost_per_deal", DOUBLE, "The practice's cost per deal: its hours x the loaded "
           "hourly cost."),
        _c("gross_incremental_cm_per_deal", DOUBLE, "Net + cost: contribution before paying for the "
           "practice."),
        _c("net_incremental_cm_per_deal", DOUBLE, "Causal effect on contribution margin per deal (= gross "
           "- cost)."),
        _c("net_ci_low", DOUBLE, "Lower limit of the effect's interval (`ci_method`)."),
        _c("net_ci_high", DOUBLE, "Upper limit of the effect's interval (`ci_method`)."),
        _c("roi_per_dollar", DOUBLE, "Net / cost = (gross - cost) / cost."),
        _c("roi_ci_low", DOUBLE, "Lower limit of the ROI's interval."),
        _c("roi_ci_high", DOUBLE, "Upper limit of the ROI's interval."),
        _c("verdict", VARCHAR, "`worth executing` (interval above 0), `not worth it` (below 0), "
           "`uncertain` (contains 0) or `not estimable`."),
        _c("ci_method", VARCHAR, "Overall: 95% influence-function interval; size band: Bonferroni over the "
           "3 bands; segment: the engine's Bonferroni over segments."),
        _c("effect_source", VARCHAR, "The engine table and estimator the effect comes from."),
        *PERIOD,
        STATUS,
    ),
    preview=("practice", "level", "group_name", "estimand", "net_incremental_cm_per_deal", "net_ci_low",
             "net_ci_high", "roi_per_dollar", "verdict"),
    preview_where="level != 'segment'",
    tally="verdict",
    status_keys=tuple({"practice": p} for p in PRACTICES),
    status_values={"verdict": "not estimable"},
)

# ---------------------------------------------------------------------------------------- strategy
STRATEGY_ALIGNMENT = Table(
    "strategy_alignment",
    "Per strategy target: intended vs actual effort share, returns, promised vs realised contribution and "
    "margin.",
    (
        _c("target", VARCHAR, "Strategy target, `other` (segments matched by no target) or `all (company "
           "goals)`."),
        _c("description", VARCHAR, "The target's description in strategy.yml."),
        _c("n_deals", BIGINT, "Closed deals of the target."),
        _c("n_accounts", BIGINT, "Accounts of those deals."),
        _c("selling_hours", DOUBLE, "Selling hours on those deals."),
        _c("intended_effort_share", DOUBLE, "Share of all selling hours the strategy intends for the "
           "target."),
        _c("actual_effort_share", DOUBLE, "Share of all selling hours it got."),
        _c("actual_effort_share_ci_low", DOUBLE, "Lower limit of its account-clustered 95% interval."),
        _c("actual_effort_share_ci_high", DOUBLE, "Upper limit of its account-clustered 95% interval."),
        _c("effort_share_gap", DOUBLE, "Actual - intended effort share."),
        _c("allocation", VARCHAR, "`over-invested` / `under-invested` beyond the "
           "`misallocation_tolerance`, else `aligned`; NULL for the company row."),
        _c("contribution_margin", DOUBLE, "Total contribution margin of the target's deals."),
        _c("cm_per_selling_hour", DOUBLE, "Contribution margin per selling hour."),
        _c("cm_per_selling_hour_ci_low", DOUBLE, "Lower limit of its account-clustered 95% interval."),
        _c("cm_per_selling_hour_ci_high", DOUBLE, "Upper limit of its account-clustered 95% interval."),
        _c("previous_period_cm", DOUBLE, "Contribution margin of the `comparison_months` before "
           "`recent_period_start`."),
        _c("recent_period_cm", DOUBLE, "Contribution margin from `recent_period_start` on."),
        _c("promised_cm_growth_pct", DOUBLE, "Promised growth of contribution margin, percent."),
        _c("realised_cm_growth_pct", DOUBLE, "Realised growth: recent over previous period, percent."),
        _c("promised_contribution", DOUBLE, "The previous period grown at the promised rate."),
        _c("realised_contribution", DOUBLE, "The recent period's contribution margin."),
        _c("realisation_pct", DOUBLE, "Realised / promised contribution x 100."),
        _c("promised_margin_pct", DOUBLE, "Promised contribution margin, percent of net revenue."),
        _c("realised_margin_pct", DOUBLE, "Recent contribution margin / net revenue x 100."),
        _c("recent_period_start", DATE, "First day of the recent `comparison_months`."),
        *PERIOD,
        STATUS,
    ),
    preview=("target", "intended_effort_share", "actual_effort_share", "allocation", "cm_per_selling_hour",
             "realisation_pct"),
)
PRACTICE_ALIGNMENT = Table(
    "practice_alignment",
    "Per strategy target x practice: prescribed or not versus its measured ROI there.",
    (
        _c("target", VARCHAR, "Strategy target."),
        _c("practice", VARCHAR, "Sales practice."),
        _c("prescribed", BOOLEAN, "The target's playbook prescribes the practice (strategy.yml)."),
        _c("n_deals", BIGINT, "Closed deals of the target."),
        _c("usage_rate", DOUBLE, "Share of the target's deals that used the practice."),
        _c("net_incremental_cm_per_deal", DOUBLE, "Effect on contribution per deal in the target: the "
           "engine's segment effects pooled over the target's segments, Bonferroni over the targets."),
        _c("net_ci_low", DOUBLE, "Lower limit of the effect's interval."),
        _c("net_ci_high", DOUBLE, "Upper limit of the effect's interval."),
        _c("incremental_cost_per_deal", DOUBLE, "The practice's cost per deal in the target."),
        _c("roi_per_dollar", DOUBLE, "Net effect / cost."),
        _c("roi_ci_low", DOUBLE, "Lower limit of the ROI's interval."),
        _c("roi_ci_high", DOUBLE, "Upper limit of the ROI's interval."),
        _c("roi_verdict", VARCHAR, "`worth executing`, `not worth it`, `uncertain` or `not estimable`."),
        _c("alignment", VARCHAR, "`aligned` (prescribed and pays), `not worth it` (prescribed but loses "
           "money), `unused opportunity` (not prescribed but pays), `prescribed, unproven` (interval "
           "contains 0), `no evidence` or `aligned (not prescribed)`."),
        _c("ci_method", VARCHAR, "How the interval was pooled and adjusted."),
        *PERIOD,
        STATUS,
    ),
    preview=("target", "practice", "prescribed", "roi_per_dollar", "roi_verdict", "alignment"),
    status_values={"roi_verdict": "not estimable"},
)
EFFORT_REALLOCATION = Table(
    "effort_reallocation",
    "Ranked moves of selling hours between strategy targets with the expected contribution gained and its "
    "interval.",
    (
        _c("rank", BIGINT, "1 = the move with the largest expected gain."),
        _c("from_target", VARCHAR, "Over-invested target the hours leave."),
        _c("to_target", VARCHAR, "Under-invested target the hours go to."),
        _c("hours_per_year", DOUBLE, "Selling hours per year to move."),
        _c("from_cm_per_selling_hour", DOUBLE, "Measured return of the source target."),
        _c("to_cm_per_selling_hour", DOUBLE, "Measured return of the destination target."),
        _c("expected_cm_gain_per_year", DOUBLE, "Hours x (destination return - source return)."),
        _c("gain_ci_low", DOUBLE, "Lower limit of the gain's 95% interval (both returns' intervals, "
           "independent account samples)."),
        _c("gain_ci_high", DOUBLE, "Upper limit of the gain's 95% interval."),
        _c("assumption", VARCHAR, "The assumption behind the gain."),
        *PERIOD,
        _c("status", VARCHAR, "`ok`, or that the move would lose contribution, or why there is nothing to "
           "move."),
    ),
    preview=("rank", "from_target", "to_target", "hours_per_year", "expected_cm_gain_per_year",
             "gain_ci_low", "gain_ci_high"),
)

# ---------------------------------------------------------------------------------------- funnel
# 180 days: past the close of nine in ten of the small demo's closed deals (median 64 days), short
# enough that a funnel exported a year after its first lead still has rows followed that long
FUNNEL_HORIZON_DAYS = 180
FUNNEL_DAYS = (30, 60, 90, 180, 365)  # the grid of funnel_time_to_convert
FUNNEL_CONVERSION_NAME = f"conversion_{FUNNEL_HORIZON_DAYS}d"
FUNNEL_KEY = (
    _c("dimension", VARCHAR, "What the rows group by: `all`, `lead_source`, `segment`, `created_month` "
       "(`YYYY-MM` of creation) or `rep` (`funnel_time_to_convert`: `all` or `lead_source`)."),
    _c("value", VARCHAR, "The group: `all`, or the dimension's value; `(unknown account)`, `(unknown rep)` "
       "or `(unknown lead source)` for the opportunities whose value the source did not record (never "
       "dropped: the rows of a dimension sum to `all`)."),
)
FUNNEL_DATES = (
    _c("created_from", DATE, "First creation date of the row's opportunities."),
    _c("created_to", DATE, "Last creation date of the row's opportunities."),
    _c("censored_at", DATE, "The cut-off open opportunities are censored at: the latest "
       "`loaded_through` of `marts.fct_opportunities` (when the last export was loaded)."),
)
FUNNEL_BASIS = _c("basis", VARCHAR, "`counts`: the table counts opportunities (deals), never money.")
FUNNEL_STATUS = _c("status", VARCHAR, "`ok`, or why the row has no rates: `not estimable: ...` for too few "
                   "opportunities, a dimension known for one outcome only (outcome leakage) or a follow-up "
                   "shorter than the horizon; the counts stay.")
FUNNEL_CONVERSION = Table(
    "funnel_conversion",
    f"Funnel conversion in deals by lead source, segment, created month and rep: counts, the closed-only "
    f"win rate and the {FUNNEL_HORIZON_DAYS}-day conversion with open opportunities censored.",
    (
        *FUNNEL_KEY,
        _c("opportunities", BIGINT, "Opportunities of the row, open and closed."),
        _c("open", BIGINT, "Of them still open at the cut-off (`censored_at`)."),
        _c("won", BIGINT, "Of them won."),
        _c("lost", BIGINT, "Of them lost."),
        _c("win_rate_closed", DOUBLE, "won / (won + lost). It conditions on having closed: with many "
           "opportunities still open it describes the ones that finished, not the funnel. NULL when none "
           "has closed."),
        _c("win_rate_closed_ci_low", DOUBLE, "Lower limit of its Wilson 95% interval."),
        _c("win_rate_closed_ci_high", DOUBLE, "Upper limit of its Wilson 95% interval."),
        _c(FUNNEL_CONVERSION_NAME, DOUBLE, f"Probability that an opportunity is won within "
           f"{FUNNEL_HORIZON_DAYS} days of its creation: Aalen-Johansen cumulative incidence, open "
           "opportunities censored at the cut-off, lost a competing event."),
        _c(f"{FUNNEL_CONVERSION_NAME}_ci_low", DOUBLE, "Lower limit of its 95% interval (log-log "
           "transformed; NULL when the estimate is 0 or 1, or when all still at risk close that day)."),
        _c(f"{FUNNEL_CONVERSION_NAME}_ci_high", DOUBLE, "Upper limit of its 95% interval."),
        _c("at_risk_at_horizon", BIGINT, f"Opportunities followed at least {FUNNEL_HORIZON_DAYS} days "
           "without closing before: how many the rate at the horizon rests on."),
        *FUNNEL_DATES,
        FUNNEL_BASIS,
        FUNNEL_STATUS,
    ),
    preview=("dimension", "value", "opportunities", "open", "won", "win_rate_closed",
             FUNNEL_CONVERSION_NAME, f"{FUNNEL_CONVERSION_NAME}_ci_low", f"{FUNNEL_CONVERSION_NAME}_ci_high"),
    preview_where="dimension in ('all', 'lead_source')",
    tally="status",
    status_keys=({"dimension": "all", "value": "all"},),
    status_values={"basis": "counts"},
)
FUNNEL_TIME_TO_CONVERT = Table(
    "funnel_time_to_convert",
    "Cumulative incidence of winning and of losing by days since creation, overall and by lead source, "
    "open opportunities censored, with intervals and the number at risk.",
    (
        *FUNNEL_KEY,
        _c("outcome", VARCHAR, "`won` or `lost`: the event whose cumulative incidence the row holds."),
        _c("days", BIGINT, f"Days since creation, on the grid {', '.join(map(str, FUNNEL_DAYS))}."),
        _c("cumulative_incidence", DOUBLE, "Probability of having been won (or lost) by that day: "
           "Aalen-Johansen, open opportunities censored at the cut-off, the other outcome competing."),
        _c("ci_low", DOUBLE, "Lower limit of its 95% interval (log-log transformed; NULL when the "
           "estimate is 0 or 1, or when all still at risk close that day)."),
        _c("ci_high", DOUBLE, "Upper limit of its 95% interval."),
        _c("at_risk", BIGINT, "Opportunities followed at least that many days without closing before."),
        _c("opportunities", BIGINT, "Opportunities of the group, open and closed."),
        *FUNNEL_DATES,
        FUNNEL_BASIS,
        FUNNEL_STATUS,
    ),
    preview=("value", "outcome", "days", "cumulative_incidence", "ci_low", "ci_high", "at_risk"),
    preview_where="dimension == 'all'",
    status_keys=({"dimension": "all", "value": "all"},),
    status_values={"basis": "counts"},
)

# ---------------------------------------------------------------------------------------- analyses
# A model of reps needs several real reps, recorded whatever the outcome, none a catch-all owner.
REP_PRECONDITIONS = (
    pre.enough_closed_deals(),
    pre.outcome_varies(),
    pre.enough_distinct("rep_id", "rep", pre.MIN_REPS),
    pre.known_for_both_outcomes("rep_id", "rep"),
    pre.no_placeholder("rep_id", "rep"),
)
ANALYSES: tuple[Analysis, ...] = (
    Analysis(
        "practice_effects",
        "Practice effects: the cause-effect engine",
        "Cause-effect engine over the deal-margin mart (assumptions in causal.yml).",
        "salesalign.analytics.effects:compute",
        (PRACTICE_EFFECTS, PRACTICE_EFFECTS_BY_SEGMENT, EFFECT_DIAGNOSTICS),
        marts=CAUSAL_MARTS,
        # the confounders of causal.yml describe the owner rep (tenure, first year, prior experience)
        preconditions=(
            pre.enough_closed_deals(),
            pre.outcome_varies(),
            pre.known_for_both_outcomes("rep_id", "rep"),
            pre.no_placeholder("rep_id", "rep"),
        ),
        status_rows="salesalign.analytics.effects:status_rows",
        guide="Every practice declared in `causal.yml` (override with `SALESALIGN_CAUSAL_YML`) x each of "
        "its outcomes, with the confounders declared there: the assumptions are reviewed by people, not "
        "mined from the data. Propensities come from a logit on the confounders; deals outside the "
        "overlap rule (`trimming`) are left out and the population says whom an estimate describes. "
        "Standard errors come from the influence functions (95% Wald intervals). Win effects are in "
        "probability points, money in the reporting currency, days in days. A practice whose inputs are "
        "missing (no activities, no practice column, or a declared confounder unknown on every deal, e.g. "
        "deal size from an export without amounts) gets status rows with verdict `not estimable`: an "
        "effect is never adjusted for less than causal.yml says it needs.",
    ),
    Analysis(
        "rep_variance",
        "Rep performance: how much is the rep, how much the mix",
        "Random-intercept-per-rep models of win and contribution margin (variance.py).",
        "salesalign.analytics.variance:compute",
        (REP_PERFORMANCE, REP_VARIANCE_SUMMARY),
        preconditions=REP_PRECONDITIONS,
        guide="Two random-intercept-per-rep models, adjusted for the deal mix (segment, product, lead "
        "source, log list amount, close quarter) and the rep's experience (tenure capped at 5 years, "
        "first-year indicator; the ramp itself is in `rep_ramp`):\n\n"
        "- **win**: logistic GLMM (random intercept on the logit scale), fitted by the Laplace "
        "approximation (lme4's `nAGQ=1`). Its ICC is on the **latent scale**: sigma^2 / (sigma^2 + "
        "pi^2/3). We chose the GLMM over a linear probability model because a probability-scale ICC moves "
        "with the base win rate.\n"
        "- **contribution_margin**: statsmodels `MixedLM` (REML), reporting currency per deal.\n\n"
        "ICC intervals are profile-likelihood intervals (Laplace likelihood for win; exact REML profile "
        "for CM). When the rep variance is estimated at 0 (where a statsmodels bug bites, docs/stack.md: "
        "the fit says \"converged\" while fixed effects constant within a rep can collapse to 0), `boundary` "
        "is true, "
        "the variance and ICC are reported as 0 and the fixed effects come from a refit without the "
        "random effect. Rep effects are shrunken (BLUP / conditional modes) with conditional intervals "
        "(normal, ignoring the uncertainty of the fixed effects: slightly too narrow for reps with few "
        "deals).",
    ),
    Analysis(
        "rep_ramp",
        "Talent ramp: how fast new reps get productive",
        "Talent ramp by hiring profile and hire cohort, and the effect of hiring traits (ramp.py).",
        "salesalign.analytics.ramp:compute",
        (REP_RAMP,),
        preconditions=(*REP_PRECONDITIONS, pre.hire_dates_vary()),
        guide="Rows by `kind`:\n\n"
        "- `hiring_profile` (group = prior industry experience x previous role) and `hire_cohort` (group = "
        "hire year), over reps hired inside the data window: time from hire to first won deal "
        "(Kaplan-Meier median, reps without a win yet censored at the window end), first-year win rate "
        "(deals created in the rep's first 12 months, rep-clustered interval) and first-year contribution "
        "margin per rep (reps whose first year ended inside the window, t interval over reps).\n"
        "- `trait_effect` (group = trait): the adjusted effect of the trait on winning during the first "
        "year, from a logistic GLMM (random intercept per rep) of win on the mix, tenure, first year, the "
        "traits and first-year x trait. The rep's lasting skill is the random intercept, a trait's lasting "
        "difference its main effect, and its ramp effect the interaction reported here. "
        "`simultaneous_ci_low/high` (Bonferroni over the traits) is the interval to read when asking "
        "which traits matter: with four traits, one of four per-trait intervals misses its truth about "
        "one time in five. With fewer than 30 reps that have first-year deals the `status` says "
        "`fragile`: the estimates then rest on a handful of people and the intervals are likely too "
        "narrow.\n"
        "- `status`: one row when nothing can be measured, e.g. no rep has a hire date (an export "
        "without hire dates) or every rep has the same one.",
    ),
    Analysis(
        "icp_tables",
        "ICP: ideal customer profile and its out-of-time validation",
        "Ideal Customer Profile with out-of-time validation (icp.py; settings in strategy.yml).",
        "salesalign.analytics.icp:compute",
        (ICP_SEGMENTS, ICP_ACCOUNT_FIT, ICP_VALIDATION),
        preconditions=(
            pre.enough_closed_deals(),
            pre.outcome_varies(),
            pre.enough_distinct("segment_id", "segment", pre.MIN_SEGMENTS),
            pre.known_for_both_outcomes("segment_id", "segment"),
            pre.no_placeholder("account_id", "account"),
            pre.close_dates_vary(tables=("icp_validation",)),
        ),
        guide="Settings in `strategy.yml` (`icp:`): segment dimensions (default industry, size_band, "
        "region), `min_deals` (100) and `min_accounts` (20) for a segment to be scored, optional "
        "`split_date` (default: 12 months before the last close date), `fit_features`.\n\n"
        "`basis` (in all three ICP tables) names what the ICP ranks on, the first rung of this ladder "
        "the closed deals support (`salesalign.analytics.icp.LADDER`):\n\n"
        "1. `contribution margin per selling hour`: full cost data and selling hours;\n"
        "2. `contribution margin per closed deal`: full cost data, no selling hours on the closed deals;\n"
        "3. `net bookings per closed deal`: no contribution margin (cost basis not `full`), amounts on "
        "the won deals;\n"
        "4. `won deals per closed deal` (the win rate): neither margin nor won amounts.\n\n"
        "The columns keep their names on every rung: below the first, `selling_hours` counts **closed "
        "deals** and the `cm_*` and `contribution_margin` columns hold what the rung names (margin, "
        "**net bookings**, or **won deals**). Read them with the `basis` column, never as margin per "
        "hour.\n\n"
        "Note: tier A segments (enterprise) win *less* often but return far more per hour; the ICP is "
        "judged on profitable growth, not win rate.",
    ),
    Analysis(
        "roi_of_effort",
        "Returns on selling effort: by segment, lead source and rep",
        "Returns on selling effort by segment, lead source and rep (roi.py).",
        "salesalign.analytics.roi:compute_effort_returns",
        (ROI_BY_SEGMENT, ROI_BY_CHANNEL, ROI_BY_REP),
        reads=("rep_performance",),
        preconditions=(
            pre.known_for_both_outcomes("segment_id", "segment", tables=("roi_by_segment",)),
            pre.known_for_both_outcomes("lead_source", "lead source", tables=("roi_by_channel",)),
            pre.known_for_both_outcomes("rep_id", "rep", tables=("roi_by_rep",)),
            pre.no_placeholder("rep_id", "rep", tables=("roi_by_rep",)),
        ),
        guide="Contribution margin is already net of selling cost, so the `*_per_selling_dollar` ratios "
        "(per unit of selling cost, in any reporting currency) read \"margin left after paying for the "
        "selling, per unit spent on selling\". `roi_by_rep` adds the mix-adjusted "
        "contribution per deal from the contribution-margin mixed model of `rep_performance`.",
    ),
    Analysis(
        "roi_by_practice",
        "ROI of sales practices",
        "ROI of each practice from its causal effect on contribution margin (roi.py).",
        "salesalign.analytics.roi:compute_practice_returns",
        (ROI_BY_PRACTICE,),
        reads=("practice_effects", "practice_effects_by_segment"),
        guide="From the engine's AIPW effects on contribution margin. The effect already includes the "
        "practice's own effort cost (its hours are costed in the mart) and any price it gives away (deep "
        "discount), so `net_incremental_cm_per_deal` is the effect, `gross` = effect + the practice's "
        "incremental cost, and `roi_per_dollar` = net / cost. Incremental cost = mean hours of the "
        "practice's activities on treated deals x the loaded hourly cost of those deals' selling effort. "
        "The verdict follows the interval: `worth executing` when its lower limit is above 0, `not worth "
        "it` when its upper limit is below 0, else `uncertain`.",
    ),
    Analysis(
        "strategy_alignment",
        "Strategy alignment: the declared strategy against where effort goes",
        "The declared strategy (strategy.yml) versus where effort goes and what it returns.",
        "salesalign.analytics.alignment:compute",
        (STRATEGY_ALIGNMENT, PRACTICE_ALIGNMENT, EFFORT_REALLOCATION),
        reads=("practice_effects_by_segment",),
        preconditions=(
            pre.selling_hours_recorded(tables=("strategy_alignment", "effort_reallocation")),
            pre.margin_recorded(tables=("effort_reallocation",)),
        ),
        guide="`strategy.yml` (override with `SALESALIGN_STRATEGY_YML`): `targets` select segments by "
        "firmographic dimensions; each has an `intended_effort_share`, a `promised_cm_growth_pct`, a "
        "`promised_margin_pct` and `prescribed_practices`. Segments matched by no target form `other` "
        "with the remaining share. `strategy_alignment` has one row per target and a last row, `all "
        "(company goals)`, that holds every deal against the company-wide `goals`.\n\n"
        "`effort_reallocation` plans moves of hours greedily, the largest return difference first, until "
        "the source's excess or the destination's shortfall of intended share is used. The measured "
        "average return of each target stands in for its marginal return (constant returns over the hours "
        "moved); if returns diminish, the gain is an upper bound. A move the strategy asks for that would "
        "lose contribution says so in `status`.",
    ),
    Analysis(
        "funnel",
        "Funnel: how many opportunities convert, and how fast (counts of deals)",
        "Funnel conversion and time to convert over every opportunity, open ones censored (funnel.py).",
        "salesalign.analytics.funnel:compute",
        (FUNNEL_CONVERSION, FUNNEL_TIME_TO_CONVERT),
        marts=("fct_opportunities",),
        population=OPPORTUNITIES,
        preconditions=(pre.enough_opportunities(),),
        guide="Every opportunity of `marts.fct_opportunities`, open and closed; the tables count deals, "
        "never money (`basis` = `counts`), so they read a source without amounts too. Time runs from an "
        "opportunity's creation to its close, or while it is open to the cut-off `censored_at` (the "
        "latest `loaded_through` of the mart).\n\n"
        f"- `{FUNNEL_CONVERSION_NAME}` is the Aalen-Johansen cumulative incidence of winning within "
        f"{FUNNEL_HORIZON_DAYS} days: an open opportunity counts as at risk for as long as it has been "
        "followed, then leaves the risk set (censored); losing is a competing event. Counting open "
        "opportunities as lost biases a funnel's conversion down, the more so the more recent its leads.\n"
        "- `win_rate_closed` (won / closed, Wilson interval) conditions on having closed: on a funnel "
        "where most leads are still open it describes the few that finished.\n"
        "- A lead source, segment or rep recorded on one outcome only among the closed opportunities "
        "(e.g. a rep known only on won deals) has `not estimable` rows for that dimension, counts kept: its "
        "rates would be the outcome itself. A group with too few opportunities, or followed for less than "
        "the horizon (recent created months), has `not estimable` rows too.\n\n"
        "The intervals treat opportunities as independent (no clustering by account, unlike the ratios "
        "of the tables above): where accounts hold many opportunities each they are somewhat too narrow.",
    ),
)

OVERVIEW = """\
The tables of the `analytics` schema: the cause-effect engine's practice effects and the decision tables
built on the marts. Each analysis below is one Dagster multi-asset (group `analytics`, assets
`analytics/<table>`) that reads the marts (and the tables of the analyses it follows), computes with a
pure function in `salesalign/analytics/` and writes its tables with the declared columns and types. The
causal assumptions live in `causal.yml`, the declared strategy and the ICP settings in `strategy.yml`
(override with `SALESALIGN_CAUSAL_YML`, `SALESALIGN_STRATEGY_YML`).

Conventions for every table:

- Money is in the reporting currency of the marts (USD by default). "CM" = contribution margin
  (net revenue - COGS - selling cost - allocated cost-to-serve; lost deals carry their selling cost).
- `period_start` / `period_end`: first and last close date of the closed deals the row describes
  (the funnel's tables, which count open opportunities too: `created_from` / `created_to`).
- Intervals are 95% unless a `*ci_method` column says otherwise. Ratios (win rate, CM per selling
  hour, CM per unit of selling cost) use the delta method with **accounts** (or reps, where said) as
  independent clusters, because deals of one account are correlated.
- `status` is `ok`, or says in words what could not be computed and why (no marts, no activities, no
  rep costs, too few deals...). A table whose inputs are missing holds status rows instead of numbers;
  the run does not fail. A table whose data breaks a declared precondition of its analysis (too few
  reps, a rep known only on won deals, every hire date equal...; docs/analytics-preconditions.md)
  says `not estimable: <finding> (needs <requirement>)`; one whose analysis raised says
  `failed: <exception type>: <message>`.

## When the source has no cost, activity or amount data (e.g. the Maven CRM export)

`marts.fct_deal_margin.cost_basis` says what the deal economics rest on: `full`, `bookings only: no
finance data` or `partial: no <tables>`; the lines from tables the source did not deliver are NULL
there (not 0). The analytics tables follow it instead of failing or inventing numbers:

| what | with cost basis other than `full` |
|---|---|
| win rates, deals, won deals (rep, segment, channel tables) | computed |
| `rep_variance_summary` / `rep_performance`, outcome `win` | computed (the GLMM needs no costs) |
| outcome `contribution_margin` of those two tables | one status row each: `not estimable: contribution \
margin needs cost data the source did not deliver (cost basis: ...)` |
| `roi_by_segment`, `roi_by_channel`, `roi_by_rep` | deals and win rates; every CM, selling-hour and \
selling-cost column NULL, `status` as above |
| `icp_*` | ranked on the next rung of the ICP's ladder the data supports (contribution margin per \
closed deal, net bookings per closed deal, or the win rate); the `basis` column says which (see ICP) |
| `practice_effects*` outcome `contribution_margin`, `roi_by_practice`, `practice_alignment` | status \
rows (the margin, or without activities the practices, unknown) |
| `strategy_alignment` | with selling hours: the effort shares against the strategy, every margin and \
growth column NULL, `status` `effort shares only: ...`; without selling hours: status rows |
| `effort_reallocation` | status rows (the returns compared are contribution per selling hour) |
| deals whose account or owner the source does not know | a group of their own, `(unknown account)` / \
`(unknown rep)`, in the tables grouped by segment or rep; never dropped |
| `rep_ramp` | one `not estimable` row when no rep has a hire date (an export without hire dates) or \
every rep has the same one |

## Adding an analytics table

1. Compute it in a module of `salesalign/analytics/`: a pure function of `AnalysisInputs`
   (`salesalign/analytics/runner.py`: the closed deals, reps and accounts of the marts, every
   opportunity open or closed, upstream analytics tables, causal.yml, strategy.yml) returning
   `{table name: DataFrame}`, its columns from `registry.columns("<table>")`.
2. Declare it in `salesalign/analytics/registry.py`: a `Table` (description, columns with SQL type and
   meaning, preview columns) in a new or existing `Analysis` (its function, the marts and analytics
   tables it reads, its preconditions and the population they are checked on, the prose that explains
   how to read it).
3. Test its numbers (tests/integration/test_decisions_assets.py or a new test), then `make generate`:
   this page, the dbt source `analytics` and the dbt exposures follow, and the Dagster asset
   `analytics/<table>` exists with its dependencies.
"""


def _index(analyses: tuple[Analysis, ...]) -> dict[str, Table]:
    tables: dict[str, Table] = {}
    for a in analyses:
        for t in a.tables:
            if t.name in tables:
                raise ValueError(f"analytics.{t.name} is declared twice in the registry")
            tables[t.name] = t
    return tables


TABLES: dict[str, Table] = _index(ANALYSES)
_WRITER = {t.name: a for a in ANALYSES for t in a.tables}


def table(name: str) -> Table:
    """The declaration of ``analytics.<name>``."""
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"analytics.{name} is not declared in salesalign/analytics/registry.py") from None


def columns(name: str) -> list[str]:
    """The column names of ``analytics.<name>``, in table order."""
    return table(name).column_names


def analysis(name: str) -> Analysis:
    """The registered analysis called ``name``."""
    found = [a for a in ANALYSES if a.name == name]
    if not found:
        raise KeyError(f"no analysis {name!r} in the registry (known: {[a.name for a in ANALYSES]})")
    return found[0]


def writer(table_name: str) -> Analysis:
    """The analysis that writes ``analytics.<table_name>``."""
    table(table_name)
    return _WRITER[table_name]

