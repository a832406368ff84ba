{#- Selling effort per deal: activities started on or before the close date, hours x the
    acting rep's loaded hourly cost for the activity month. Unrounded (rounded once in the mart). -#}
select
    opportunity_id,
    count(*) as activity_count,
    sum(hours) as selling_hours,
    sum(effort_cost) as effort_cost,
    sum(case when loaded_cost_per_hour_reporting is null then hours else 0 end) as unpriced_hours
from {{ ref('int_activities_costed') }}
where counts_as_effort
group by opportunity_id
