-- A line of the waterfall is null exactly when the source did not deliver the table behind it
-- (int_source_coverage), or (COGS and margins) the deal's product is unknown, never 0 standing in
-- for "unknown"; and cost_basis / has_cost_data agree.
{{ config(meta={'dagster': {'ref': {'name': 'fct_deal_margin'}}}) }}
select opportunity_id, 'revenue null iff no invoices delivered' as problem
from {{ ref('fct_deal_margin') }}
where (invoiced_revenue is null) <> (not has_invoice_data)
    or (net_revenue is null) <> (not has_invoice_data)
    or (has_invoices is null) <> (not has_invoice_data)
union all
select opportunity_id, 'activity lines null iff no activities delivered'
from {{ ref('fct_deal_margin') }}
where (selling_minutes is null) <> (not has_activity_data)
    or (activity_count is null) <> (not has_activity_data)
union all
select opportunity_id, 'contribution margin null iff cost basis is not full'
from {{ ref('fct_deal_margin') }}
where (contribution_margin is null) <> (not has_cost_data)
    or has_cost_data <> (cost_basis = 'full')
union all
select opportunity_id, 'unknown product with a COGS'
from {{ ref('fct_deal_margin') }}
where not has_known_product
    and (cogs_rate is not null or cogs is not null or gross_margin is not null)
union all
select f.opportunity_id, 'cost basis differs from what the source delivered'
from {{ ref('fct_deal_margin') }} as f
cross join {{ ref('int_source_coverage') }} as cov
where f.cost_basis <> {{ deal_cost_basis('cov.cost_basis', 'f.has_known_product') }}
