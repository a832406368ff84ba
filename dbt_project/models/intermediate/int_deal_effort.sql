{#- Selling effort per deal: activities started on or before the close date, hours x the
    acting rep's loaded hourly cost for the activity month (all reps who worked the deal).
    effort_cost is computed exactly and rounded to the cent once (half away from zero):
    sum(minutes x hourly cost) is an exact decimal when the rep cost is in the reporting currency,
    so the frequent half-cent ties (5-minute durations / 60) do not depend on summation order. -#}
with effort as (
    select
        opportunity_id,
        count(*) as activity_count,
        -- hours from integer minutes: exact whatever the summation order
        sum(duration_minutes) as selling_minutes,
        cast(sum(duration_minutes) as {{ type_double() }}) / 60 as selling_hours,
        sum(case when cost_to_reporting_rate = 1 then cost_minute_money end) as minute_money_reporting,
        sum(case when cost_to_reporting_rate <> 1 then cost_minute_money * cost_to_reporting_rate end)
            as minute_money_converted,
        cast(
            sum(
                case when loaded_cost_per_hour_reporting is null then duration_minutes else 0 end
            ) as {{ type_double() }}
        )
        / 60 as unpriced_hours
    from {{ ref('int_activities_costed') }}
    where counts_as_effort
    group by opportunity_id
)

select
    opportunity_id,
    activity_count,
    selling_minutes,
    selling_hours,
    -- minute-cents / 60, rounded: a tie (x.5) is exactly representable, so round() is exact
    round(
        (
            cast(coalesce(minute_money_reporting, 0) * 100 as {{ type_double() }})
            + coalesce(minute_money_converted, 0) * 100
        ) / 60
    ) / 100 as effort_cost,
    unpriced_hours
from effort
