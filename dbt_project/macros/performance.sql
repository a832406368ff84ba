{#- The performance measures of a group of closed deals (fct_deal_margin rows), shared by the
    segment and rep performance marts. Sums of lines the source did not deliver stay null (see
    fct_deal_margin.cost_basis, carried here). -#}
{% macro performance_measures() -%}
    cast(count(*) as bigint) as deals_closed,
    cast(sum(case when is_won then 1 else 0 end) as bigint) as deals_won,
    cast(sum(case when is_won then 0 else 1 end) as bigint) as deals_lost,
    cast({{ safe_divide('sum(case when is_won then 1 else 0 end)', 'count(*)') }} as {{ type_double() }}) as win_rate,
    cast(sum(net_bookings) as {{ type_money() }}) as net_bookings,
    cast(sum(net_revenue) as {{ type_money() }}) as net_revenue,
    cast(sum(gross_margin) as {{ type_money() }}) as gross_margin,
    cast(sum(selling_minutes) as {{ type_double() }}) / 60 as selling_hours,
    cast(sum(selling_cost) as {{ type_money() }}) as selling_cost,
    cast(sum(allocated_cost_to_serve) as {{ type_money() }}) as allocated_cost_to_serve,
    cast(sum(contribution_margin) as {{ type_money() }}) as contribution_margin,
    cast({{ safe_divide('sum(contribution_margin) * 60', 'sum(selling_minutes)') }} as {{ type_double() }}) as contribution_per_selling_hour,
    cast(max(cost_basis) as varchar) as cost_basis,
    cast(min(case when has_cost_data then 1 else 0 end) = 1 as boolean) as has_cost_data
{%- endmacro %}
