-- Invoiced revenue is within 5% of the bookings of won deals, over the whole mart (finance bills
-- what sales booked; a larger gap is worth a look, not a stop).
{{ config(severity='warn') }}
select invoiced, bookings, invoiced / bookings as invoiced_to_bookings
from (
    select
        cast(sum(invoiced_revenue) as {{ type_double() }}) as invoiced,
        cast(sum(net_bookings) as {{ type_double() }}) as bookings
    from {{ ref('fct_deal_margin') }}
) as totals
where bookings <> 0 and (invoiced / bookings < 0.95 or invoiced / bookings > 1.05)
