{#- The hourly rate is converted at the first day of its month and kept unrounded: it is
    multiplied by hours, and the deal's effort cost is rounded to the cent once. -#}
with latest as (
    {{ latest_version(
        landed('finance', 'rep_costs'),
        ['rep_id', 'month'],
        ['_loaded_at desc', '_source_row desc']
    ) }}
)

select
    r.rep_id,
    r.month,
    r.loaded_cost_per_hour,
    upper(r.currency) as currency,
    case
        when
            upper(r.currency) = '{{ var("reporting_currency") }}'
            then cast(r.loaded_cost_per_hour as {{ type_double() }})
        else cast(r.loaded_cost_per_hour as {{ type_double() }}) * fx.to_reporting_rate
    end as loaded_cost_per_hour_reporting,
    case
        when upper(r.currency) = '{{ var("reporting_currency") }}' then cast(1 as {{ type_double() }})
        else fx.to_reporting_rate
    end as to_reporting_rate,
    r._loaded_at
from latest as r
{{ join_fx('fx', 'upper(r.currency)', 'r.month') }}
