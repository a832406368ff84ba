{#- The margin waterfall for every closed deal, won or lost (reporting currency). Each money
    component is rounded to the cent once, so the waterfall adds up exactly:
    gross_margin = net_revenue - cogs; selling_cost = effort_cost + commissions;
    contribution_margin = gross_margin - selling_cost - allocated_cost_to_serve. 
    A component whose source table was not delivered at all (int_source_coverage: e.g. an export
    without finance data) is null, not 0, and so is everything computed from it; a deal with no
    rows in a delivered table gets 0. A deal whose product is unknown (null or not delivered) has
    an unknown COGS (null, and so its margins; cost_basis says why); a deal whose owner rep is
    unknown keeps its costs (effort is costed from the activities' own reps). -#}
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
        acc.account_id is not null as has_known_account,
        rep.rep_id is not null as has_known_rep,
        prod.product_id is not null as has_known_product,
        acc.segment_id,
        d.lead_source,
        d.currency as deal_currency,
        d.is_won,
        case when d.is_won then 'won' else 'lost' end as outcome,
        cast(d.created_at as date) as created_date,
        d.close_date,
        {{ month_of('d.close_date') }} as close_month,
        {{ dbt.datediff('cast(d.created_at as date)', 'd.close_date', 'day') }} as days_to_close, -- noqa: LT05
        d.list_amount_reporting as list_amount,
        d.list_amount_reporting - d.amount_reporting as discount_amount,
        d.discount as discount_rate,
        d.amount_reporting as deal_amount,
        case when d.is_won then d.amount_reporting else 0 end as net_bookings,
        case when cov.has_invoice_data then coalesce(rev.invoice_count, 0) > 0 end as has_invoices,
        case when cov.has_invoice_data then coalesce(rev.invoiced_revenue, 0) end as invoiced_revenue,
        case
            when cov.has_invoice_data or cov.has_credit_note_data then coalesce(rev.credits, 0)
        end as credits,
        case when cov.has_invoice_data then coalesce(rev.net_revenue, 0) end as net_revenue,
        case when prod.product_id is not null then cogs.cogs_rate end as cogs_rate,
        case
            when cov.has_invoice_data and cov.has_product_cost_data and prod.product_id is not null
                then coalesce(cogs.cogs, 0)
        end as cogs,
        case when cov.has_activity_data then coalesce(eff.activity_count, 0) end as activity_count,
        case when cov.has_activity_data then coalesce(eff.selling_minutes, 0) end as selling_minutes,
        case when cov.has_activity_data then coalesce(eff.selling_hours, 0) end as selling_hours,
        case
            when cov.has_activity_data and cov.has_rep_cost_data
                then {{ to_money('coalesce(eff.effort_cost, 0)') }}
        end as effort_cost,
        case when cov.has_commission_data then coalesce(com.commissions, 0) end as commissions,
        case
            when cov.has_cost_to_serve_data
                then {{ to_money('coalesce(cts.allocated_cost_to_serve, 0)') }}
        end as allocated_cost_to_serve,
        {%- for p in practices %}
        case when cov.has_activity_data then coalesce(prac.has_{{ p }}, false) end as has_{{ p }},
        case when cov.has_activity_data then coalesce(prac.{{ p }}_count, 0) end as {{ p }}_count,
        case when cov.has_activity_data then coalesce(prac.{{ p }}_hours, 0) end as {{ p }}_hours,
        {%- endfor %}
        case when cov.has_activity_data then coalesce(eff.unpriced_hours, 0) end as unpriced_hours,
        {{ deal_cost_basis('cov.cost_basis', 'prod.product_id is not null') }} as cost_basis,
        cov.has_cost_data and prod.product_id is not null as has_cost_data,
        cov.has_invoice_data,
        cov.has_activity_data
    from deals as d
    cross join {{ ref('int_source_coverage') }} as cov
    left join {{ ref('int_accounts_segmented') }} as acc on acc.account_id = d.account_id
    left join {{ ref('stg_crm__reps') }} as rep on rep.rep_id = d.owner_rep_id
    left join {{ ref('stg_crm__products') }} as prod on prod.product_id = d.product_id
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
    {{ safe_divide(
        'net_revenue - cogs - effort_cost - commissions - allocated_cost_to_serve', 'net_revenue'
    ) }} as contribution_margin_pct
from components
