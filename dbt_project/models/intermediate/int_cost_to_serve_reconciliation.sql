{#- Every account-month of cost_to_serve with how much of it was allocated to deals and what
    stays unallocated (no won deal in service): nothing is silently dropped. -#}
with allocated as (
    select
        account_id,
        month,
        count(*) as deals_in_service,
        sum(allocated_cost_to_serve) as allocated_cost_to_serve
    from {{ ref('int_cost_to_serve_allocated') }}
    group by account_id, month
)

select
    cts.account_id,
    cts.month,
    cts.amount_reporting as cost_to_serve,
    coalesce(allocated.deals_in_service, 0) as deals_in_service,
    coalesce(allocated.allocated_cost_to_serve, 0) as allocated_cost_to_serve,
    cts.amount_reporting - coalesce(allocated.allocated_cost_to_serve, 0) as unallocated_cost_to_serve,
    case when allocated.account_id is null then 'unallocated' else 'allocated' end as allocation_status
from {{ ref('stg_finance__cost_to_serve') }} as cts
left join allocated
    on allocated.account_id = cts.account_id
    and allocated.month = cts.month
