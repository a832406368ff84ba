-- dim_accounts.won_deals add up to the won opportunities of known accounts (the won deals of the
-- unknown account are counted in int_account_reconciliation).
{{ config(severity='warn', meta={'dagster': {'ref': {'name': 'dim_accounts'}}}) }}
select accounts.won_deals, opportunities.won
from (select sum(won_deals) as won_deals from {{ ref('dim_accounts') }}) as accounts
cross join (
    select sum(case when is_won then 1 else 0 end) as won from {{ ref('fct_opportunities') }}
    where has_known_account
) as opportunities
where accounts.won_deals <> opportunities.won
