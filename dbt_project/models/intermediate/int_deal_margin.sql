{#- The margin waterfall for every closed deal, won or lost (reporting currency). Each money
    component is rounded to the cent once, so the waterfall adds up exactly:
    gross_margin = net_revenue - cogs; selling_cost = effort_cost + commissions;
    contribution_margin = gross_margin - selling_cost - allocated_cost_to_serve. -#}
{%- set practices = practice_types() %}
with deals as (
    select *
    from {{ ref('stg_crm__opportunities') }}
    where is_closed
),

components as (
    select
        d.opportunity_id,
        d.account_id,
        d.owner_rep_id as rep_id,
        d.product_id,
        acc.segment_id,
        d.lead_source,
        d.currency as deal_currency,
        d.is_won,
        case when d.is_won then 'won' else 'lost' end as outcome,
        cast(d.created_at as date) as created_date,
        d.close_date,
        {{ month_of('d.close_date') }} as close_month,
        {{ dbt.datediff('cast(d.created_at as date)', 'd.close_date', 'day') }} as days_to_close,
        d.list_amount_reporting as list_amount,
        d.list_amount_reporting - d.amount_reporting as discount_amount,
        d.discount as discount_rate,
        d.amount_reporting as deal_amount,
        case when d.is_won then d.amount_reporting else 0 end as net_bookings,
        coalesce(rev.invoiced_revenue, 0) as invoiced_revenue,
        coalesce(rev.credits, 0) as credits,
        coalesce(rev.net_revenue, 0) as net_revenue,
        cogs.cogs_rate,
        coalesce(cogs.cogs, 0) as cogs,
        coalesce(eff.activity_count, 0) as activity_count,
        coalesce(eff.selling_minutes, 0) as selling_minutes,
        coalesce(eff.selling_hours, 0) as selling_hours,
        {{ to_money('coalesce(eff.effort_cost, 0)') }} as effort_cost,
        coalesce(com.commissions, 0) as commissions,
        {{ to_money('coalesce(cts.allocated_cost_to_serve, 0)') }} as allocated_cost_to_serve,
        {%- for p in practices %}
        prac.has_{{ p }},
        prac.{{ p }}_count,
        prac.{{ p }}_hours,
        {%- endfor %}
        coalesce(eff.unpriced_hours, 0) as unpriced_hours
    from deals as d
    left join {{ ref('int_accounts_segmented') }} as acc on acc.account_id = d.account_id
    left join {{ ref('int_deal_revenue') }} as rev on rev.opportunity_id = d.opportunity_id
    left join {{ ref('int_deal_cogs') }} as cogs on cogs.opportunity_id = d.opportunity_id
    left join {{ ref('int_deal_effort') }} as eff on eff.opportunity_id = d.opportunity_id
    left join {{ ref('int_deal_commissions') }} as com on com.opportunity_id = d.opportunity_id
    left join {{ ref('int_deal_cost_to_serve') }} as cts on cts.opportunity_id = d.opportunity_id
    left join {{ ref('int_deal_practices') }} as prac on prac.opportunity_id = d.opportunity_id
)

select
    *,
    net_revenue - cogs as gross_margin,
    effort_cost + commissions as selling_cost,
    net_revenue - cogs - effort_cost - commissions - allocated_cost_to_serve as contribution_margin,
    {{ safe_divide('net_revenue - cogs - effort_cost - commissions - allocated_cost_to_serve', 'net_revenue') }} as contribution_margin_pct
from components
