-- The waterfall adds up exactly on every row, and the mart has one row per closed opportunity.
{{ config(meta={'dagster': {'ref': {'name': 'fct_deal_margin'}}}) }}
select opportunity_id, 'waterfall' as problem
from {{ ref('fct_deal_margin') }}
where discount_amount <> list_amount - deal_amount
    or net_revenue <> invoiced_revenue - credits
    or gross_margin <> net_revenue - cogs
    or contribution_margin <> net_revenue - cogs - selling_cost - allocated_cost_to_serve
union all
select opportunity_id, 'closed deal missing from the mart'
from {{ ref('stg_crm__opportunities') }}
where is_closed
    and opportunity_id not in (select opportunity_id from {{ ref('fct_deal_margin') }})
