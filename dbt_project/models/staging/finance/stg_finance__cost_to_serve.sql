with latest as (
    {{ latest_version(
        landed('finance', 'cost_to_serve'),
        ['account_id', 'month'],
        ['_loaded_at desc', '_source_row desc']
    ) }}
)

select
    c.account_id,
    c.month,
    c.amount,
    upper(c.currency) as currency,
    {{ to_reporting('c.amount', 'upper(c.currency)', 'fx') }} as amount_reporting,
    c._loaded_at
from latest as c
{{ join_fx('fx', 'upper(c.currency)', 'c.month') }}
