{#- Kimball's unknown member: an opportunity whose parent (account, rep, product) is null or was
    not delivered keeps its row in the facts, flagged; these macros are the one declaration of how
    such deals are labelled and counted. -#}

{#- The cost basis of one deal: the build's (int_source_coverage) when the product is known; with
    the unknown product its COGS is unknown too, so the basis is partial and says why. -#}
{% macro deal_cost_basis(coverage_basis, has_known_product) -%}
    case
        when {{ has_known_product }} then {{ coverage_basis }}
        when {{ coverage_basis }} = 'full' then 'partial: unknown product'
        else {{ dbt.concat([coverage_basis, "'; unknown product'"]) }}
    end
{%- endmacro %}

{#- Every staged opportunity counted by what is known of its `parent` (one row per status, 0 when
    no deal has it): 'known' (fk names a row of `parents`), 'no <parent>' (fk is null) and
    '<parent> not delivered' (fk names no delivered row, or the row was quarantined). -#}
{% macro unknown_member_reconciliation(parent, fk, parents, parent_key) -%}
with opportunities as (
    select
        o.opportunity_id,
        o.is_closed,
        case
            when p.{{ parent_key }} is not null then 'known'
            when o.{{ fk }} is null then 'no {{ parent }}'
            else '{{ parent }} not delivered'
        end as {{ parent }}_status
    from {{ ref('stg_crm__opportunities') }} as o
    left join {{ parents }} as p on p.{{ parent_key }} = o.{{ fk }}
),

statuses as (
    select 'known' as {{ parent }}_status
    union all
    select 'no {{ parent }}'
    union all
    select '{{ parent }} not delivered'
)

select
    s.{{ parent }}_status,
    s.{{ parent }}_status = 'known' as has_known_{{ parent }},
    count(o.opportunity_id) as opportunities,
    count(case when not o.is_closed then 1 end) as open_opportunities,
    count(case when o.is_closed then 1 end) as closed_opportunities
from statuses as s
left join opportunities as o on o.{{ parent }}_status = s.{{ parent }}_status
group by s.{{ parent }}_status
{%- endmacro %}
