with latest as (
    {{ latest_version(
        landed('finance', 'commissions'),
        ['commission_id'],
        ['paid_date desc', '_loaded_at desc', '_source_row desc']
    ) }}
)

select
    c.commission_id,
    c.opportunity_id,
    c.rep_id,
    c.paid_date,
    c.amount,
    upper(c.currency) as currency,
    {{ to_reporting('c.amount', 'upper(c.currency)', 'fx') }} as amount_reporting,
    c._loaded_at
from latest as c
{{ join_fx('fx', 'upper(c.currency)', 'c.paid_date') }}
