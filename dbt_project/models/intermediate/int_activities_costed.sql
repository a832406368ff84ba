{#- Every activity with its hours, the rep's loaded hourly cost for the activity's month (in the
    reporting currency) and where it falls relative to the deal's close date:
    - counts_as_effort: started on or before the close date (selling effort of the deal);
    - is_before_close: started before the close date (practices that can have caused the outcome). -#}
select
    a.activity_id,
    a.opportunity_id,
    a.rep_id,
    a.activity_type,
    case
        when a.activity_type in ('{{ practice_types() | join("', '") }}') then true -- noqa: LT05
        else false
    end as is_practice,
    a.started_at,
    a.activity_date,
    a.activity_month,
    coalesce(a.duration_minutes, 0) as duration_minutes,
    a.hours,
    rc.loaded_cost_per_hour_reporting,
    a.hours * rc.loaded_cost_per_hour_reporting as effort_cost,
    -- exact inputs of the deal's effort cost (see int_deal_effort): minutes x hourly cost as a
    -- decimal in the rep-cost currency, and the rate that converts it (1 for the reporting currency)
    a.duration_minutes * rc.loaded_cost_per_hour as cost_minute_money,
    rc.to_reporting_rate as cost_to_reporting_rate,
    case when a.activity_date <= o.close_date then true else false end as counts_as_effort,
    case when a.activity_date < o.close_date then true else false end as is_before_close,
    a._loaded_at
from {{ ref('stg_crm__activities') }} as a
inner join {{ ref('stg_crm__opportunities') }} as o
    on o.opportunity_id = a.opportunity_id
left join {{ ref('stg_finance__rep_costs') }} as rc
    on rc.rep_id = a.rep_id
    and rc.month = a.activity_month
