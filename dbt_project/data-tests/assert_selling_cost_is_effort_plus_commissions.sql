-- selling_cost = effort_cost + commissions for every deal, and both parts agree with their
-- sources: effort = hours x loaded hourly cost of activities on or before the close date,
-- commissions = the deal's commission payments (reporting currency). Returns the mismatches.
{{ config(meta={'dagster': {'ref': {'name': 'fct_deal_margin'}}}) }}
with effort as (
    select opportunity_id, sum(effort_cost) as effort_cost_unrounded
    from {{ ref('int_activities_costed') }}
    where counts_as_effort
    group by opportunity_id
),

commissions as (
    select opportunity_id, sum(amount_reporting) as commissions
    from {{ ref('stg_finance__commissions') }}
    group by opportunity_id
)

select
    d.opportunity_id, d.selling_cost, d.effort_cost, d.commissions,
    effort.effort_cost_unrounded as source_effort_cost, commissions.commissions as source_commissions
from {{ ref('fct_deal_margin') }} as d
left join effort on effort.opportunity_id = d.opportunity_id
left join commissions on commissions.opportunity_id = d.opportunity_id
where d.selling_cost <> d.effort_cost + d.commissions
    -- each deal's effort cost is rounded to the cent once: at most half a cent from the exact sum
    or abs(d.effort_cost - coalesce(effort.effort_cost_unrounded, 0)) > 0.005 + 0.000001
    or d.commissions <> coalesce(commissions.commissions, 0)
