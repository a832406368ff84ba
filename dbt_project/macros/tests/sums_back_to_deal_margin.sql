{#- A performance mart (fct_deal_margin's closed deals grouped by segment or rep and close month)
    sums back to the fact: every closed deal counted once, net bookings, net revenue and
    contribution margin to the cent, selling hours to 1e-6 (relative). `group_by` are the fact's
    expressions of the mart's groups: a group's contribution margin is null when one of its deals
    has none (unknown product), so the fact's side counts the margin of the complete groups only.
    Returns one row per measure that does not add up. -#}
{% test sums_back_to_deal_margin(model, group_by) %}
with mart as (
    select cast(sum(deals_closed) as {{ type_double() }}) as deals,
           cast(sum(net_bookings) as {{ type_double() }}) as net_bookings,
           cast(sum(net_revenue) as {{ type_double() }}) as net_revenue,
           cast(sum(contribution_margin) as {{ type_double() }}) as contribution_margin,
           cast(sum(selling_hours) as {{ type_double() }}) as selling_hours
    from {{ model }}
),

fact_groups as (
    select case when count(contribution_margin) = count(*) then sum(contribution_margin) end
               as contribution_margin
    from {{ ref('fct_deal_margin') }}
    group by {{ group_by | join(', ') }}
),

fact as (
    select cast(count(*) as {{ type_double() }}) as deals,
           cast(sum(net_bookings) as {{ type_double() }}) as net_bookings,
           cast(sum(net_revenue) as {{ type_double() }}) as net_revenue,
           (select cast(sum(contribution_margin) as {{ type_double() }}) from fact_groups)
               as contribution_margin,
           cast(sum(selling_minutes) as {{ type_double() }}) / 60 as selling_hours
    from {{ ref('fct_deal_margin') }}
),

gaps as (
    select 'deals' as measure, mart.deals as in_mart, fact.deals as in_fact, 0 as tolerance
    from mart cross join fact
    union all
    select 'net_bookings', mart.net_bookings, fact.net_bookings, 0.005 from mart cross join fact
    union all
    select 'net_revenue', mart.net_revenue, fact.net_revenue, 0.005 from mart cross join fact
    union all
    select 'contribution_margin', mart.contribution_margin, fact.contribution_margin, 0.005 from mart cross join fact
    union all
    select 'selling_hours', mart.selling_hours, fact.selling_hours, 0.000001 * abs(fact.selling_hours)
    from mart cross join fact
)

select *
from gaps
where abs(coalesce(in_mart, 0) - coalesce(in_fact, 0)) > tolerance
    or (in_mart is null) <> (in_fact is null)
{% endtest %}
