{#- Opportunities by what is known of their account, one row per status: nothing is dropped for
    a missing parent, and these rows say how many deals carry the unknown account. -#}
with opportunities as (
    select
        o.opportunity_id,
        o.is_closed,
        case
            when acc.account_id is not null then 'known'
            when o.account_id is null then 'no account'
            else 'account not delivered'
        end as account_status
    from {{ ref('stg_crm__opportunities') }} as o
    left join {{ ref('stg_crm__accounts') }} as acc on acc.account_id = o.account_id
),

statuses as (
    select 'known' as account_status
    union all
    select 'no account'
    union all
    select 'account not delivered'
)

select
    s.account_status,
    s.account_status = 'known' as has_known_account,
    count(o.opportunity_id) as opportunities,
    count(case when not o.is_closed then 1 end) as open_opportunities,
    count(case when o.is_closed then 1 end) as closed_opportunities
from statuses as s
left join opportunities as o on o.account_status = s.account_status
group by s.account_status
