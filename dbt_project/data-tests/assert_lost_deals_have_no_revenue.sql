-- Lost deals book and earn nothing (but carry their selling cost): no bookings, invoices,
-- credits, net revenue, COGS, commissions or cost-to-serve.
select
    opportunity_id,
    net_bookings,
    invoiced_revenue,
    credits,
    net_revenue,
    cogs,
    commissions,
    allocated_cost_to_serve
from {{ ref('fct_deal_margin') }}
where not is_won
    and (
        net_bookings <> 0 or invoiced_revenue <> 0 or credits <> 0 or net_revenue <> 0 or cogs <> 0
        or commissions <> 0 or allocated_cost_to_serve <> 0
    )
