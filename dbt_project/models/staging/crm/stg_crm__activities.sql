{#- The biggest raw table (~20 activities per deal): an incremental table rather than a view, so
    a run dedups only the newly landed rows and every test and consumer reads it once. -#}
{{
    config(
        materialized='incremental',
        unique_key='activity_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail'
    )
}}
with candidates as (
    {{ staging_candidates(landed('crm', 'activities'), 'activity_id',
        ['activity_id', 'opportunity_id', 'account_id', 'rep_id', 'activity_type', 'started_at',
         'duration_minutes', '_loaded_at', '_source_row']) }}
),

latest as (
    {{ latest_version(
        'candidates',
        ['activity_id'],
        ['started_at desc', '_loaded_at desc', '_source_row desc']
    ) }}
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
    _loaded_at,
    _source_row
from latest
