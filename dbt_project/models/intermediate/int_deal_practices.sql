{#- Sales practices per deal: count and hours of each practice activity type started before
    the close date only (effort after closing cannot have caused the outcome). One row per
    opportunity, zeros when none. -#}
{%- set practices = practice_types() %}
with practice_activities as (
    select opportunity_id, activity_type, duration_minutes
    from {{ ref('int_activities_costed') }}
    where is_practice and is_before_close
)

select
    o.opportunity_id,
    {#- sqlfluff misplaces the indent of a loop that ends in a templated comma #}
    -- noqa: disable=LT02
    {%- for p in practices %}
    sum(case when pa.activity_type = '{{ p }}' then 1 else 0 end) as {{ p }}_count,
    cast(
        coalesce(sum(case when pa.activity_type = '{{ p }}' then pa.duration_minutes end), 0)
        as {{ type_double() }}
    ) / 60 as {{ p }}_hours,
    sum(case when pa.activity_type = '{{ p }}' then 1 else 0 end) > 0 as has_{{ p }}{{ ',' if not loop.last }}
    {%- endfor %}
from {{ ref('stg_crm__opportunities') }} as o -- noqa: enable=LT02
left join practice_activities as pa
    on pa.opportunity_id = o.opportunity_id
group by o.opportunity_id
