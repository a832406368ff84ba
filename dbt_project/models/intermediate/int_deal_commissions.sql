{#- Commissions per deal in the reporting currency (converted at each paid date). -#}
select
    opportunity_id,
    sum(amount_reporting) as commissions,
    count(*) as commission_count
from {{ ref('stg_finance__commissions') }}
group by opportunity_id
