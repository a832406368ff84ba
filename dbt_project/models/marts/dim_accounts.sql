with deals as (
    select
        account_id,
        sum(case when is_closed and is_won then 1 else 0 end) as won_deals,
        min(case when is_closed and is_won then close_date end) as first_won_date
    from {{ ref('stg_crm__opportunities') }}
    group by account_id
)

select
    cast(a.account_id as varchar) as account_id,
    cast(a.account_name as varchar) as account_name,
    cast(a.industry as varchar) as industry,
    cast(a.employee_count as bigint) as employee_count,
    cast(a.size_band as varchar) as size_band,
    cast(a.region as varchar) as region,
    cast(a.country as varchar) as country,
    cast(a.segment_id as varchar) as segment_id,
    cast(coalesce(deals.won_deals, 0) > 0 as boolean) as is_customer,
    cast(coalesce(deals.won_deals, 0) as bigint) as won_deals,
    cast(deals.first_won_date as date) as first_won_date,
    cast(a.created_at as timestamp) as created_at,
    cast(a.updated_at as timestamp) as updated_at
from {{ ref('int_accounts_segmented') }} as a
left join deals on deals.account_id = a.account_id
