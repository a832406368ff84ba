-- Every won deal that finance invoiced shows invoiced revenue in the mart.
{{ config(meta={'dagster': {'ref': {'name': 'fct_deal_margin'}}}) }}
select d.opportunity_id, d.invoiced_revenue
from {{ ref('fct_deal_margin') }} as d
where d.is_won
    and d.invoiced_revenue = 0
    and exists (
        select 1 from {{ ref('stg_finance__invoices') }} as i
        where i.opportunity_id = d.opportunity_id and i.amount <> 0
    )
