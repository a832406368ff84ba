-- dim_accounts.won_deals add up to the won opportunities (a gap: won deals of accounts that are
-- not in staging, e.g. quarantined).
{{ config(severity='warn', meta={'dagster': {'ref': {'name': 'dim_accounts'}}}) }}
select accounts.won_deals, opportunities.won
from (select sum(won_deals) as won_deals from {{ ref('dim_accounts') }}) as accounts
cross join (
    select sum(case when is_won then 1 else 0 end) as won from {{ ref('fct_opportunities') }}
) as opportunities
where accounts.won_deals <> opportunities.won
