{#- Per segment and close month: closed deals, win rate, bookings, margin and selling effort. -#}
select
    cast({{ dbt.concat(['segment_id', "'|'", dbt.cast('close_month', dbt.type_string())]) }} as varchar)
        as segment_month_id,
    cast(segment_id as varchar) as segment_id,
    cast(close_month as date) as close_month,
    {{ performance_measures() }}
from {{ ref('fct_deal_margin') }}
group by segment_id, close_month
