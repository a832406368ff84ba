{#- The performance measures of a group of closed deals (fct_deal_margin rows), shared by the
    segment and rep performance marts. A sum is null when a deal of the group lacks that line:
    the source did not deliver the tables behind it, or (margins) the deal's product is unknown;
    a sum over the known deals only would break the waterfall. The group's cost_basis is its
    deals' most specific one, and has_cost_data holds only when every deal has its costs. -#}
{% macro sum_if_all_known(expression) -%}
    case when count({{ expression }}) = count(*) then sum({{ expression }}) end
{%- endmacro %}

{% macro performance_measures() -%}
    cast(count(*) as bigint) as deals_closed,
    cast(sum(case when is_won then 1 else 0 end) as bigint) as deals_won,
    cast(sum(case when is_won then 0 else 1 end) as bigint) as deals_lost,
    cast({{ safe_divide('sum(case when is_won then 1 else 0 end)', 'count(*)') }} as {{ type_double() }}) as win_rate,
    cast(sum(net_bookings) as {{ type_money() }}) as net_bookings,
    cast({{ sum_if_all_known('net_revenue') }} as {{ type_money() }}) as net_revenue,
    cast({{ sum_if_all_known('gross_margin') }} as {{ type_money() }}) as gross_margin,
    cast({{ sum_if_all_known('selling_minutes') }} as {{ type_double() }}) / 60 as selling_hours,
    cast({{ sum_if_all_known('selling_cost') }} as {{ type_money() }}) as selling_cost,
    cast({{ sum_if_all_known('allocated_cost_to_serve') }} as {{ type_money() }}) as allocated_cost_to_serve,
    cast({{ sum_if_all_known('contribution_margin') }} as {{ type_money() }}) as contribution_margin,
    cast({{ safe_divide(sum_if_all_known('contribution_margin') ~ ' * 60', 'sum(selling_minutes)') }} as {{ type_double() }}) as contribution_per_selling_hour,
    cast(max(cost_basis) as varchar) as cost_basis,
    cast(min(case when has_cost_data then 1 else 0 end) = 1 as boolean) as has_cost_data
{%- endmacro %}
