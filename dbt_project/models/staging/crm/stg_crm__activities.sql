with latest as (
    {{ latest_version(source('crm', 'activities'), ['activity_id'], ['started_at desc', '_loaded_at desc', '_source_row desc']) }}
)

select
    activity_id,
    opportunity_id,
    account_id,
    rep_id,
    activity_type,
    started_at,
    cast(started_at as date) as activity_date,
    {{ month_of('started_at') }} as activity_month,
    duration_minutes,
    cast(coalesce(duration_minutes, 0) as {{ type_double() }}) / 60 as hours,
    _loaded_at
from latest
