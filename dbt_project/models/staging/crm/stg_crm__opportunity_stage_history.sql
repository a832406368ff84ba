{#- ~5 stage changes per deal: an incremental table like stg_crm__activities. -#}
{{
    config(
        materialized='incremental',
        unique_key='history_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail'
    )
}}
with candidates as (
    {{ staging_candidates(landed('crm', 'opportunity_stage_history'), 'history_id',
        ['history_id', 'opportunity_id', 'stage', 'changed_at', 'amount', '_loaded_at', '_source_row']) }}
),

latest as (
    {{ latest_version(
        'candidates',
        ['history_id'],
        ['changed_at desc', '_loaded_at desc', '_source_row desc']
    ) }}
)

select
    history_id,
    opportunity_id,
    stage,
    changed_at,
    amount,
    _loaded_at,
    _source_row
from latest
