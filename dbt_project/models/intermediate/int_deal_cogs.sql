{#- COGS per closed deal: the product's cogs_rate valid on the close date x net revenue. -#}
select
    o.opportunity_id,
    pc.cogs_rate,
    {{ money_times_rate('coalesce(r.net_revenue, 0)', 'pc.cogs_rate') }} as cogs
from {{ ref('stg_crm__opportunities') }} as o
left join {{ ref('int_deal_revenue') }} as r
    on r.opportunity_id = o.opportunity_id
left join {{ ref('stg_finance__product_costs') }} as pc
    on pc.product_id = o.product_id
    and o.close_date >= pc.valid_from
    and (pc.valid_to is null or o.close_date <= pc.valid_to)
where o.is_closed
