{#- Per segment and close month: closed deals, win rate, bookings, margin and selling effort. The
    deals with the unknown account (no segment) are a group of their own, so the mart still sums
    back to fct_deal_margin. -#}
select
    cast({{ dbt.concat([
        "coalesce(segment_id, '(unknown account)')", "'|'", dbt.cast('close_month', dbt.type_string())
    ]) }} as varchar) as segment_month_id,
    cast(segment_id as varchar) as segment_id,
    cast(close_month as date) as close_month,
    {{ performance_measures() }}
from {{ ref('fct_deal_margin') }}
group by segment_id, close_month
