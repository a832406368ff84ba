{#- Tenure is measured at the data's as-of date (the latest close date of a closed deal), not
    at build time, so rebuilding the same data gives the same table. -#}
with as_of as (
    select max(close_date) as as_of_date
    from {{ ref('stg_crm__opportunities') }}
    where is_closed
),

managers as (
    select distinct manager_id from {{ ref('stg_crm__reps') }}
    where manager_id is not null
)

select
    cast(r.rep_id as varchar) as rep_id,
    cast(r.rep_name as varchar) as rep_name,
    cast(r.team as varchar) as team,
    cast(r.manager_id as varchar) as manager_id,
    cast(managers.manager_id is not null as boolean) as is_manager,
    cast(r.region as varchar) as region,
    cast(r.hire_date as date) as hire_date,
    cast(as_of.as_of_date as date) as tenure_as_of_date,
    cast({{ dbt.datediff('r.hire_date', 'as_of.as_of_date', 'day') }} as bigint) as tenure_days, -- noqa: LT05
    cast(r.prior_industry_experience as boolean) as prior_industry_experience,
    cast(r.previous_role as varchar) as previous_role,
    cast(r.years_experience as bigint) as years_experience,
    cast(r.quota as {{ type_money() }}) as quota_usd,
    cast(r.is_active as boolean) as is_active
from {{ ref('stg_crm__reps') }} as r
cross join as_of
left join managers on managers.manager_id = r.rep_id
