{#- Cost-to-serve allocated to each deal over its service months (unrounded). -#}
select
    opportunity_id,
    sum(allocated_cost_to_serve) as allocated_cost_to_serve,
    count(*) as service_months_allocated
from {{ ref('int_cost_to_serve_allocated') }}
group by opportunity_id
