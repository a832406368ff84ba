{#- Per deal owner and close month: closed deals, win rate, bookings, margin and selling effort. The
    deals with the unknown rep (owner null or not delivered) are a group of their own, so the mart
    still sums back to fct_deal_margin. -#}
with deals as (
    select
        *,
        case when has_known_rep then rep_id end as owner_id
    from {{ ref('fct_deal_margin') }}
)

select
    cast({{ dbt.concat([
        "coalesce(owner_id, '(unknown rep)')", "'|'", dbt.cast('close_month', dbt.type_string())
    ]) }} as varchar) as rep_month_id,
    cast(owner_id as varchar) as rep_id,
    cast(close_month as date) as close_month,
    {{ performance_measures() }}
from deals
group by owner_id, close_month
