with latest as (
    {{ latest_version(
        landed('crm', 'reps'),
        ['rep_id'],
        ['updated_at desc', '_loaded_at desc', '_source_row desc']
    ) }}
)

select
    rep_id,
    rep_name,
    team,
    manager_id,
    lower(trim(region)) as region,
    hire_date,
    prior_industry_experience,
    previous_role,
    years_experience,
    quota,
    is_active,
    updated_at,
    _loaded_at
from latest
