{#- Per deal owner and close month: closed deals, win rate, bookings, margin and selling effort. -#}
select
    cast({{ dbt.concat(['rep_id', "'|'", dbt.cast('close_month', dbt.type_string())]) }} as varchar)
        as rep_month_id,
    cast(rep_id as varchar) as rep_id,
    cast(close_month as date) as close_month,
    {{ performance_measures() }}
from {{ ref('fct_deal_margin') }}
group by rep_id, close_month
