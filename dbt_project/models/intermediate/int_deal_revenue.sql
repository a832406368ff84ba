{#- Revenue per deal in the reporting currency: invoices, credit notes, net = invoices - credits. -#}
with invoiced as (
    select opportunity_id, sum(amount_reporting) as invoiced_revenue, count(*) as invoice_count
    from {{ ref('stg_finance__invoices') }}
    group by opportunity_id
),

credited as (
    select opportunity_id, sum(amount_reporting) as credits, count(*) as credit_note_count
    from {{ ref('stg_finance__credit_notes') }}
    group by opportunity_id
),

deals as (
    select opportunity_id from invoiced
    union
    select opportunity_id from credited
)

select
    deals.opportunity_id,
    coalesce(invoiced.invoiced_revenue, 0) as invoiced_revenue,
    coalesce(credited.credits, 0) as credits,
    coalesce(invoiced.invoiced_revenue, 0) - coalesce(credited.credits, 0) as net_revenue,
    coalesce(invoiced.invoice_count, 0) as invoice_count,
    coalesce(credited.credit_note_count, 0) as credit_note_count
from deals
left join invoiced on invoiced.opportunity_id = deals.opportunity_id
left join credited on credited.opportunity_id = deals.opportunity_id
