-- The unknown rep and the unknown product are flagged exactly where the rep is not in dim_reps
-- (the product not in stg_crm__products), in both facts, and int_rep_reconciliation /
-- int_product_reconciliation count the facts' rows per flag (open and closed): one row per
-- disagreement.
{{ config(meta={'dagster': {'ref': {'name': 'fct_opportunities'}}}) }}
{%- set parents = [
    ('rep', 'rep_id', 'dim_reps', 'int_rep_reconciliation'),
    ('product', 'product_id', 'stg_crm__products', 'int_product_reconciliation'),
] %}
{%- for parent, key, parent_relation, reconciliation in parents %}
{%- set flag = 'has_known_' ~ parent %}
{%- if not loop.first %}
union all
{%- endif %}
select
    '{{ parent }}' as parent,
    'flag disagrees with {{ parent_relation }}' as gap,
    f.model,
    f.opportunity_id,
    null as known
from (
    select 'fct_opportunities' as model, opportunity_id, {{ key }}, {{ flag }} as flag
    from {{ ref('fct_opportunities') }}
    union all
    select 'fct_deal_margin', opportunity_id, {{ key }}, {{ flag }}
    from {{ ref('fct_deal_margin') }}
) as f
left join {{ ref(parent_relation) }} as p on p.{{ key }} = f.{{ key }}
where f.flag <> (p.{{ key }} is not null)
union all
select '{{ parent }}', 'counts differ', null, null, r.{{ flag }}
from (
    select
        {{ flag }},
        sum(opportunities) as opportunities,
        sum(open_opportunities) as open_opportunities,
        sum(closed_opportunities) as closed_opportunities
    from {{ ref(reconciliation) }}
    group by {{ flag }}
) as r
left join (
    select
        {{ flag }},
        count(*) as opportunities,
        count(case when not is_closed then 1 end) as open_opportunities
    from {{ ref('fct_opportunities') }}
    group by {{ flag }}
) as o on o.{{ flag }} = r.{{ flag }}
left join (
    select {{ flag }}, count(*) as closed_deals
    from {{ ref('fct_deal_margin') }}
    group by {{ flag }}
) as d on d.{{ flag }} = r.{{ flag }}
where r.opportunities <> coalesce(o.opportunities, 0)
    or r.open_opportunities <> coalesce(o.open_opportunities, 0)
    or r.closed_opportunities <> coalesce(d.closed_deals, 0)
{%- endfor %}
