with latest as (
    {{ latest_version(
        landed('finance', 'invoices'),
        ['invoice_id'],
        ['invoice_date desc', '_loaded_at desc', '_source_row desc']
    ) }}
)

select
    i.invoice_id,
    i.opportunity_id,
    i.account_id,
    i.invoice_date,
    i.amount,
    upper(i.currency) as currency,
    {{ to_reporting('i.amount', 'upper(i.currency)', 'fx') }} as amount_reporting,
    i._loaded_at
from latest as i
{{ join_fx('fx', 'upper(i.currency)', 'i.invoice_date') }}
