{#- Cost-to-serve allocation. Each account-month's cost_to_serve (reporting currency) is
    allocated to the account's won deals in service that month, in proportion to their net
    bookings (reporting currency). A won deal is in service in the `service_months` (12) months
    starting the month after its close month. One row per (account, month, deal); shares are
    unrounded. Account-months with no deal in service are in int_cost_to_serve_reconciliation. -#}
with won_deals as (
    select
        opportunity_id,
        account_id,
        {{ month_of('close_date') }} as close_month,
        amount_reporting as net_bookings
    from {{ ref('stg_crm__opportunities') }}
    where is_closed and is_won
),

in_service as (
    select
        cts.account_id,
        cts.month,
        cts.amount_reporting as cost_to_serve,
        won_deals.opportunity_id,
        won_deals.net_bookings
    from {{ ref('stg_finance__cost_to_serve') }} as cts
    inner join won_deals
        on won_deals.account_id = cts.account_id
        and cts.month > won_deals.close_month
        and cts.month <= {{ dbt.dateadd('month', var('service_months'), 'won_deals.close_month') }}
),

weighted as (
    select
        *,
        sum(net_bookings) over (partition by account_id, month) as account_month_bookings
    from in_service
)

select
    account_id,
    month,
    opportunity_id,
    net_bookings / account_month_bookings as allocation_share,
    cost_to_serve * net_bookings / account_month_bookings as allocated_cost_to_serve
from weighted
where account_month_bookings > 0
