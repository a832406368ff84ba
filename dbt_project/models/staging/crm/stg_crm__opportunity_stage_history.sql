with latest as (
    {{ latest_version(source('crm', 'opportunity_stage_history'), ['history_id'], ['changed_at desc', '_loaded_at desc', '_source_row desc']) }}
)

select
    history_id,
    opportunity_id,
    stage,
    changed_at,
    amount,
    _loaded_at
from latest
