"""The demo company: a deterministic B2B seller with a planted, known causal structure.

API
---
``PRESETS``: scale name -> ``Preset`` (tiny ~100 accounts/400 deals, small 1k/5k/~100k activities,
default 10k/50k/~1M, large 150k/1M/~20M).

``generate(scale, seed, out_dir, fmt="parquet") -> dict`` writes one file per raw-contract table
(``<out_dir>/<table>.parquet``, or ``.csv`` with a header row and ISO dates), with exactly the
contract's columns, order and types (see ``arrow_types``), plus ``truth.json``. Same (scale, seed)
gives byte-identical files. Returns ``{"scale", "seed", "tables": {table: rows}, "seconds"}``.

``simulate_deal_outcomes(scale, seed, assignment="observational") -> DataFrame``: one row per closed
deal (opportunity_id, account_id, rep_id, segment, industry, size_band, region, lead_source, one bool
column per practice, won, p_win, contribution_margin (realised, USD), expected_contribution_margin,
selling_hours, effort_cost, amount_usd). ``assignment="randomized"`` draws every practice from an
independent fair coin; every other draw (accounts, reps, deals, covariates, the uniform that decides
the win, activities, finance) comes from the same streams as the observational run.

Randomness: ``SeedSequence(seed).spawn(...)`` gives one child stream per component (fx, reps,
accounts, contacts, segments, deals, practice_obs, practice_rct, outcome, practice_latent, finance,
serve_noise, costs, activities, stages); activities and stage history draw from per-chunk
grandchildren, so output does not depend on memory and the two assignments share all other draws.

World
-----
Deals are created 2023-01-01..2025-12-31 (weekday-weighted, monthly seasonality, 15%/year growth);
the export is taken at 2025-12-31 23:59:59. Cycle length ~ lognormal (median 40/70/120 days for
small/mid/enterprise), independent of the practices; deals closing within 30 days before a quarter
end are pulled to its last days with probability 0.5. Deals whose close date falls after the window
stay open (open stage, ``close_date`` = expected close). Segment = industry x size band x region
(5 x 3 x 3 = 45; size band: small < 200 employees, mid 200-1999, enterprise >= 2000), segment id
``"industry|size_band|region"``. Currency = the account's region currency (na USD, emea EUR, apac AUD).
Owner = a rep of the account's region, hired before creation and still employed at close.

Practices (activity types ``discovery_workshop``, ``executive_sponsor_meeting``, ``proof_of_concept``,
``deep_discount_approval``): a deal is treated iff it has one activity of that type, which always
starts before its close date. Observational propensities are logistic in observable pre-treatment
covariates only (size band, log list amount, industry, region, lead source, rep tenure), clipped to
[0.03, 0.97]; ``model.PROPENSITY`` holds the coefficients. Win: logit P(win) = covariate terms
(``model.WIN``) + u_rep ~ N(0, 0.5^2) + first-year ramp (``model.HIRING``: -0.8 + 0.4 prior industry
experience + role: consultant +0.2, account_manager +0.1, sdr -0.1, other 0, while the owner's tenure
at creation < 12 months) + practice effects by size band (``model.PRACTICE_WIN_EFFECT``: workshop
0/0.6/0.6, exec -0.3/0.3/0.8, POC 0.5, deep discount 0.7 for small/mid/enterprise). Deep discount adds
20 points to the discount.

Deal economics (what the dbt mart computes; all converted to USD with ``fx_rates.usd_per_unit``)
---------------------------------------------------------------------------------------------------
* net bookings = ``amount`` = list_amount x (1 - discount), converted on the close date.
* won deals are invoiced ``amount`` in 1-3 equal parts (last part takes the cent remainder), the first
  0-10 days after close, the next ones ~30 days apart; invoices converted on the invoice date.
* ~5% of won deals get one credit note on their first invoice (5-20% of it), converted on the credit
  date. net revenue = invoices - credits.
* COGS = cogs_rate(product, year of close date; ``product_costs`` valid_from/valid_to) x net revenue.
* commission = 8% x amount (won only), paid on the 15th of the month after close, deal currency,
  converted on the paid date.
* effort cost = sum over the deal's activities of duration_minutes / 60 x the owner's
  ``rep_costs.loaded_cost_per_hour`` (USD) of the activity's month. selling cost = effort + commission.
* cost-to-serve: each won deal generates serve_rate(segment) x amount / 12 in each of the 12 months
  after its close month; per account-month the sum is multiplied by a mean-1 lognormal noise (sigma
  0.3) and written to ``cost_to_serve`` (account currency, converted at the month start). Rows exist
  only for account-months with a won deal in service, from 2023-02 and stop at 2026-12 (the finance
  horizon = fx horizon); since every deal closes by 2025-12-31 its 12 service months always fit.
  The mart allocates an account-month's cost to the account's won deals in service that month in
  proportion to their net bookings (which recovers each deal's own service cost x the noise).
* contribution margin = net revenue - COGS - selling cost - allocated cost-to-serve; lost deals have
  no revenue and carry their effort cost (CM = -effort).

truth.json
----------
Computed on the realised population of CLOSED deals, from potential outcomes with everything else as
realised (covariates, rep effect, the other practices, activity times and durations, invoice
schedule, credits, fx). E[win] is the probability; E[contribution margin] = p_win x (net revenue x
(1 - cogs) - commission - expected service cost) - effort cost, with noise at its mean 1 and the
practice's own activity hours x rate included when treated.

* ``scale``, ``seed``.
* ``practices.<practice>``: ``n_closed``, ``n_treated``, ``activity_minutes_mean``,
  ``logit_win_effect_by_size_band``, and for each outcome ``win`` / ``contribution_margin`` (USD per
  closed deal): ``ate``, ``att`` (over treated deals), ``naive_diff`` (realised treated minus untreated
  mean) and ``naive_se`` (its sampling SE), ``mean_if_treated``, ``mean_if_untreated``;
  ``by_segment.<segment id>``: ``n``, ``n_treated``, ``win``, ``contribution_margin`` (ATE in that
  segment); ``by_size_band.<band>``: ``n``, ``n_treated``, ``win``, ``contribution_margin``, ``win_att``.
* ``rep_effects``: ``sigma_rep``, ``sigma2_rep``, ``icc_latent`` = sigma^2 / (sigma^2 + pi^2/3),
  ``sample_variance_u``, ``u_rep`` (rep_id -> planted u), ``n_closed_deals_by_rep``.
* ``hiring_traits``: ``ramp_months``, ``ramp_intercept``, ``coefficients`` (logit:
  prior_industry_experience, previous_role_sdr/account_manager/consultant vs ``reference_role`` other),
  ``ame_first_year_win`` (average marginal effect of each trait on P(win) over closed deals created in
  the owner's first 12 months, practices as realised), ``n_first_year_closed_deals``.
* ``segments.<segment id>``: ``industry``, ``size_band``, ``region``, ``n_closed``,
  ``expected_win_rate``, ``expected_contribution_margin`` (sum, USD), ``selling_hours`` (sum),
  ``cm_per_selling_hour``, ``rank`` (1 = best CM per selling hour), ``serve_rate_annual``.
* ``bookkeeping``: ``n_opportunities``, ``n_closed``, ``n_won``, ``n_lost``, ``n_open``,
  ``invoiced_usd``, ``credits_usd``, ``net_revenue_usd``, ``bookings_usd``, ``commissions_usd``,
  ``cost_to_serve_usd`` (each row converted as above), ``selling_hours_closed``,
  ``effort_cost_closed_usd``, ``contribution_margin_realised_usd`` (sum over closed deals, using each
  deal's own noisy service cost), ``rows`` (table -> row count).
* ``economics``: ``reporting_currency``, ``currencies_by_region``, ``commission_rate``,
  ``deep_discount_points``, ``routine_discount``, ``serve_rate_annual_by_segment``,
  ``serve_months_after_close``, ``serve_account_month_noise_sigma``, ``cogs_rate_by_product_year``,
  ``finance_horizon_end``, ``window``.
* ``model``: the planted win model (``win``), ``log_list_amount_center``, ``practice_logit_effects``,
  ``propensity`` coefficients and ``propensity_clip``.

Note: ``simulate_deal_outcomes(..., "randomized")`` estimates the effect with the OTHER practices at
a fair coin, while the truth holds them as realised; the two estimands differ slightly (interactions
through the logit and the deep discount's amount cut), typically by about one SE at ``default`` scale.
"""

from .generator import generate, simulate_deal_outcomes
from .presets import PRESETS, Preset

__all__ = ["PRESETS", "Preset", "generate", "simulate_deal_outcomes"]
