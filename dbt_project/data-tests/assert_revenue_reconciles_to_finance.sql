-- Mart revenue = finance invoices - credit notes, to the cent in the reporting currency, per
-- close month of the deal and in total (the `total` row also catches invoices and credit notes
-- of deals missing from the mart and documents without an FX rate). Returns the mismatches.
{{ config(meta={'dagster': {'ref': {'name': 'fct_deal_margin'}}}) }}
with finance_lines as (
    select
        opportunity_id,
        amount_reporting as invoiced,
        cast(0 as decimal(18, 2)) as credited,
        amount_reporting is null as missing_rate
    from {{ ref('stg_finance__invoices') }}
    union all
    select opportunity_id, cast(0 as decimal(18, 2)), amount_reporting, amount_reporting is null
    from {{ ref('stg_finance__credit_notes') }}
),

finance_by_month as (
    select
        {{ month_of('o.close_date') }} as close_month,
        sum(f.invoiced) as invoiced,
        sum(f.credited) as credited,
        sum(case when f.missing_rate then 1 else 0 end) as missing_rates
    from finance_lines as f
    left join {{ ref('stg_crm__opportunities') }} as o
        on o.opportunity_id = f.opportunity_id and o.is_closed
    group by 1
),

mart_by_month as (
    select
        close_month,
        sum(invoiced_revenue) as invoiced,
        sum(credits) as credited,
        sum(net_revenue) as net_revenue
    from {{ ref('fct_deal_margin') }}
    group by 1
),

by_month as (
    select
        {{ dbt.cast('coalesce(f.close_month, m.close_month)', dbt.type_string()) }} as period,
        coalesce(f.invoiced, 0) as finance_invoiced,
        coalesce(f.credited, 0) as finance_credited,
        coalesce(f.missing_rates, 0) as missing_rates,
        coalesce(m.invoiced, 0) as mart_invoiced,
        coalesce(m.credited, 0) as mart_credited,
        coalesce(m.net_revenue, 0) as mart_net_revenue
    from finance_by_month as f
    full outer join mart_by_month as m on m.close_month = f.close_month
),

with_total as (
    select * from by_month
    union all
    select
        'total', sum(finance_invoiced), sum(finance_credited), sum(missing_rates),
        sum(mart_invoiced), sum(mart_credited), sum(mart_net_revenue)
    from by_month
)

select *
from with_total
where missing_rates > 0
    or finance_invoiced <> mart_invoiced
    or finance_credited <> mart_credited
    or finance_invoiced - finance_credited <> mart_net_revenue
