{#- One rate per (day, currency), latest load wins. USD is added with rate 1 on every day the
    source has rates but no USD row. `to_reporting_rate` turns one unit of `currency` into the
    reporting currency on that day: usd_per_unit(currency) / usd_per_unit(reporting). -#}
with latest as (
    {{ latest_version(
        landed('finance', 'fx_rates'),
        ['rate_date', 'upper(currency)'],
        ['_loaded_at desc', '_source_row desc']
    ) }}
),

source_rates as (
    select rate_date, upper(currency) as currency, usd_per_unit, _loaded_at
    from latest
),

usd_rates as (
    select
        rate_date,
        'USD' as currency,
        cast(1 as {{ type_double() }}) as usd_per_unit,
        max(_loaded_at) as _loaded_at
    from source_rates
    group by rate_date
    having sum(case when currency = 'USD' then 1 else 0 end) = 0
),

rates as (
    select * from source_rates
    union all
    select * from usd_rates
),

reporting as (
    select rate_date, usd_per_unit
    from rates
    where currency = '{{ var("reporting_currency") }}'
)

select
    rates.rate_date,
    rates.currency,
    rates.usd_per_unit,
    rates.usd_per_unit / reporting.usd_per_unit as to_reporting_rate,
    rates._loaded_at
from rates
left join reporting on reporting.rate_date = rates.rate_date
