with latest as (
    {{ latest_version(
        landed('finance', 'credit_notes'),
        ['credit_note_id'],
        ['credit_date desc', '_loaded_at desc', '_source_row desc']
    ) }}
)

select
    c.credit_note_id,
    c.invoice_id,
    c.opportunity_id,
    c.credit_date,
    c.amount,
    upper(c.currency) as currency,
    {{ to_reporting('c.amount', 'upper(c.currency)', 'fx') }} as amount_reporting,
    c.reason,
    c._loaded_at
from latest as c
{{ join_fx('fx', 'upper(c.currency)', 'c.credit_date') }}
