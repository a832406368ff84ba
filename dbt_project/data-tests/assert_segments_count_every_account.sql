-- dim_segments.account_count adds up to dim_accounts: every account is counted in exactly one
-- segment (dim_accounts.segment_id -> dim_segments is tested beside the model).
{{ config(meta={'dagster': {'ref': {'name': 'dim_segments'}}}) }}
select segments.accounts as accounts_in_segments, accounts.accounts
from (select sum(account_count) as accounts from {{ ref('dim_segments') }}) as segments
cross join (select count(*) as accounts from {{ ref('dim_accounts') }}) as accounts
where segments.accounts <> accounts.accounts
