-- The unknown account is flagged exactly where the account is not in dim_accounts, in both facts,
-- and int_account_reconciliation counts the facts' rows per has_known_account (open and closed):
-- one row per disagreement.
{{ config(meta={'dagster': {'ref': {'name': 'fct_opportunities'}}}) }}
with flags as (
    select
        'fct_opportunities' as model,
        f.opportunity_id,
        f.has_known_account,
        a.account_id is not null as in_dim
    from {{ ref('fct_opportunities') }} as f
    left join {{ ref('dim_accounts') }} as a on a.account_id = f.account_id
    union all
    select 'fct_deal_margin', f.opportunity_id, f.has_known_account, a.account_id is not null
    from {{ ref('fct_deal_margin') }} as f
    left join {{ ref('dim_accounts') }} as a on a.account_id = f.account_id
),

opportunities as (
    select
        has_known_account,
        count(*) as opportunities,
        count(case when not is_closed then 1 end) as open_opportunities
    from {{ ref('fct_opportunities') }}
    group by has_known_account
),

deals as (
    select has_known_account, count(*) as closed_deals
    from {{ ref('fct_deal_margin') }}
    group by has_known_account
),

reconciliation as (
    select
        has_known_account,
        sum(opportunities) as opportunities,
        sum(open_opportunities) as open_opportunities,
        sum(closed_opportunities) as closed_opportunities
    from {{ ref('int_account_reconciliation') }}
    group by has_known_account
)

select
    'flag disagrees with dim_accounts' as gap,
    model,
    opportunity_id,
    null as has_known_account
from flags
where has_known_account <> in_dim
union all
select 'counts differ', null, null, r.has_known_account
from reconciliation as r
left join opportunities as o on o.has_known_account = r.has_known_account
left join deals as d on d.has_known_account = r.has_known_account
where r.opportunities <> coalesce(o.opportunities, 0)
    or r.open_opportunities <> coalesce(o.open_opportunities, 0)
    or r.closed_opportunities <> coalesce(d.closed_deals, 0)
