{#- Stage progression per opportunity from the stage history: when each stage was first
    entered, how many changes, and the furthest stage reached (in pipeline order). -#}
{%- set stages = [
    'prospecting', 'qualification', 'discovery', 'proposal', 'negotiation', 'closed_won', 'closed_lost'
] %}
with history as (
    select
        opportunity_id,
        stage,
        changed_at,
        case stage
            {%- for s in stages %}
            when '{{ s }}' then {{ loop.index }}
            {%- endfor %}
        end as stage_order
    from {{ ref('stg_crm__opportunity_stage_history') }}
)

select
    opportunity_id,
    count(*) as stage_change_count,
    min(changed_at) as first_stage_at,
    max(changed_at) as last_stage_change_at,
    max(case when stage_order <= 5 then stage_order end) as furthest_open_stage_order,
    {#- sqlfluff misplaces the indent of a loop that ends in a templated comma #}
    -- noqa: disable=LT02
    {%- for s in stages %}
    min(case when stage = '{{ s }}' then changed_at end) as entered_{{ s }}_at{{ ',' if not loop.last }}
    {%- endfor %}
from history -- noqa: enable=LT02
group by opportunity_id
