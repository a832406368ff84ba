-- A line of the waterfall is null exactly when the source did not deliver the table behind it
-- (int_source_coverage), never 0 standing in for "unknown"; and cost_basis / has_cost_data agree.
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
select opportunity_id, 'cost basis differs from what the source delivered'
from {{ ref('fct_deal_margin') }}
where cost_basis <> (select cost_basis from {{ ref('int_source_coverage') }})
