{#- Money is converted to the reporting currency at the close date (actual for closed deals,
    expected for open ones: null until a rate for that day exists). -#}
with latest as (
    {{ latest_version(
        landed('crm', 'opportunities'),
        ['opportunity_id'],
        ['updated_at desc', '_loaded_at desc', '_source_row desc']
    ) }}
)

select
    o.opportunity_id,
    o.account_id,
    o.owner_rep_id,
    o.product_id,
    o.lead_source,
    upper(o.currency) as currency,
    o.quantity,
    o.list_amount,
    o.amount,
    o.list_amount - o.amount as discount_amount,
    o.discount,
    o.stage,
    o.is_closed,
    o.is_won,
    o.created_at,
    o.close_date,
    o.updated_at,
    {{ to_reporting('o.list_amount', 'upper(o.currency)', 'fx') }} as list_amount_reporting,
    {{ to_reporting('o.amount', 'upper(o.currency)', 'fx') }} as amount_reporting,
    o._loaded_at
from latest as o
{{ join_fx('fx', 'upper(o.currency)', 'o.close_date') }}
