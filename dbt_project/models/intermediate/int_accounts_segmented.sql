{#- Segment = industry x size band x region; size bands come from vars (size_band_*). -#}
select
    account_id,
    account_name,
    coalesce(industry, 'unknown') as industry,
    employee_count,
    {{ size_band('employee_count') }} as size_band,
    coalesce(region, 'unknown') as region,
    country,
    {{ segment_id('industry', 'employee_count', 'region') }} as segment_id,
    created_at,
    updated_at,
    _loaded_at
from {{ ref('stg_crm__accounts') }}
