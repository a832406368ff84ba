with latest as (
    {{ latest_version(
        landed('crm', 'accounts'),
        ['account_id'],
        ['updated_at desc', '_loaded_at desc', '_source_row desc']
    ) }}
)

select
    account_id,
    account_name,
    lower(trim(industry)) as industry,
    employee_count,
    annual_revenue,
    upper(currency) as currency,
    lower(trim(region)) as region,
    country,
    created_at,
    updated_at,
    _loaded_at
from latest
