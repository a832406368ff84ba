-- Cost-to-serve: allocated to deals + unallocated = total, per account-month (exact up to
-- float noise) and in total against the mart, where each deal's allocation is rounded to the
-- cent once (so the total may differ by at most half a cent per deal that got an allocation).
{{ config(meta={'dagster': {'ref': {'name': 'fct_deal_margin'}}}) }}
with per_account_month as (
    select
        'account_month ' || account_id || ' ' || {{ dbt.cast('month', dbt.type_string()) }} as scope,
        cost_to_serve as total, allocated_cost_to_serve + unallocated_cost_to_serve as accounted,
        cast(0.000001 as {{ type_double() }}) as tolerance
    from {{ ref('int_cost_to_serve_reconciliation') }}
),

mart as (
    select
        sum(allocated_cost_to_serve) as allocated,
        sum(case when allocated_cost_to_serve <> 0 then 1 else 0 end) as deals_allocated
    from {{ ref('fct_deal_margin') }}
),

overall as (
    select
        'total' as scope,
        (select sum(amount_reporting) from {{ ref('stg_finance__cost_to_serve') }}) as total,
        mart.allocated
        + (
            select coalesce(sum(unallocated_cost_to_serve), 0)
            from {{ ref('int_cost_to_serve_reconciliation') }}
        ) as accounted,
        cast(0.005 * mart.deals_allocated + 0.000001 as {{ type_double() }}) as tolerance
    from mart
),

checks as (
    select * from per_account_month
    union all
    select * from overall
)

select * from checks
where abs(cast(coalesce(total, 0) - coalesce(accounted, 0) as {{ type_double() }})) > tolerance
