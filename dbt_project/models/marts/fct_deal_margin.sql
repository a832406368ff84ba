-- depends_on: {{ ref('stg_crm__opportunities') }}
-- depends_on: {{ ref('stg_crm__accounts') }}
-- depends_on: {{ ref('stg_crm__reps') }}
-- depends_on: {{ ref('stg_crm__products') }}
-- depends_on: {{ ref('stg_crm__activities') }}
-- depends_on: {{ ref('stg_finance__invoices') }}
-- depends_on: {{ ref('stg_finance__credit_notes') }}
-- depends_on: {{ ref('stg_finance__commissions') }}
-- depends_on: {{ ref('stg_finance__rep_costs') }}
-- depends_on: {{ ref('stg_finance__product_costs') }}
-- depends_on: {{ ref('stg_finance__cost_to_serve') }}
-- depends_on: {{ ref('stg_finance__fx_rates') }}
-- depends_on: {{ ref('int_source_coverage') }}
{{
    config(
        materialized='incremental',
        unique_key='opportunity_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        post_hook=[
            "delete from {{ this }} where opportunity_id not in (select opportunity_id from {{ ref('stg_crm__opportunities') }} where is_closed)"
        ]
    )
}}
{#- One row per closed opportunity (won or lost) with its margin waterfall in the reporting
    currency. Incremental: a run recomputes the deals whose own rows (opportunity, activities,
    invoices, credit notes, commissions) or reference data (owner rep, product, rep costs, product
    costs, FX rates of their dates) changed since the last run, plus every closed deal of an account whose
    cost-to-serve, attributes or deals changed (cost-to-serve allocation couples an account's
    deals). A deal that is no longer closed is removed by the post-hook. When what the source
    delivered changes (int_source_coverage: e.g. finance tables arrive) or the reporting currency
    does, every deal is recomputed. -#}
{%- set practices = practice_types() %}
{%- if is_incremental() %}
with watermark as (
    select {{ watermark("loaded_through") }} as loaded_through
),

changed_fx as (
    select rate_date from {{ ref('stg_finance__fx_rates') }}
    where _loaded_at > (select loaded_through from watermark)
),

changed_bookings as (
    -- the deal row itself, or the FX rate of its close date: bookings (and so the cost-to-serve
    -- allocation of the whole account) may have changed
    select opportunity_id from {{ ref('stg_crm__opportunities') }}
    where _loaded_at > (select loaded_through from watermark)
        or close_date in (select rate_date from changed_fx)
        or {{ close_date_window_filter('close_date') }}
),

changed_deals as (
    select opportunity_id from changed_bookings
    union
    {{ changed_keys('opportunity_id', ref('stg_crm__activities')) }}
    union
    {{ changed_keys('opportunity_id', ref('stg_finance__invoices'), 'invoice_date') }}
    union
    {{ changed_keys('opportunity_id', ref('stg_finance__credit_notes'), 'credit_date') }}
    union
    {{ changed_keys('opportunity_id', ref('stg_finance__commissions'), 'paid_date') }}
    union
    select a.opportunity_id
    from {{ ref('stg_crm__activities') }} as a
    inner join {{ ref('stg_finance__rep_costs') }} as rc
        on rc.rep_id = a.rep_id and rc.month = a.activity_month
    where rc._loaded_at > (select loaded_through from watermark)
        or rc.month in (select rate_date from changed_fx)
    union
    -- a changed cost period (product, valid_from) can only matter to deals closed from valid_from on
    select o.opportunity_id
    from {{ ref('stg_crm__opportunities') }} as o
    inner join {{ ref('stg_finance__product_costs') }} as pc
        on pc.product_id = o.product_id and o.close_date >= pc.valid_from
    where pc._loaded_at > (select loaded_through from watermark)
    union
    -- a rep or product delivered later turns its deals known (and an unknown product's COGS)
    select opportunity_id from {{ ref('stg_crm__opportunities') }}
    where is_closed
        and (
            owner_rep_id in ({{ changed_keys('rep_id', ref('stg_crm__reps')) }})
            or product_id in ({{ changed_keys('product_id', ref('stg_crm__products')) }})
        )
),

changed_accounts as (
    -- cost-to-serve allocation couples the deals of an account: recompute all of them when an
    -- account's bookings, cost-to-serve or attributes (segment) changed
    select account_id from {{ ref('stg_crm__opportunities') }}
    where opportunity_id in (select opportunity_id from changed_bookings)
    union
    select account_id from {{ this }}
    where opportunity_id in (select opportunity_id from changed_bookings)
    union
    {{ changed_keys('account_id', ref('stg_finance__cost_to_serve'), 'month') }}
    union
    {{ changed_keys('account_id', ref('stg_crm__accounts')) }}
),

coverage_changed as (
    -- a source table delivered for the first time turns nulls (not delivered) into numbers on
    -- every deal: recompute all of them
    select 1 as changed
    from {{ this }} as t
    cross join {{ ref('int_source_coverage') }} as c
    where t.cost_basis <> {{ deal_cost_basis('c.cost_basis', 't.has_known_product') }}
        or t.has_invoice_data <> c.has_invoice_data
        or t.has_activity_data <> c.has_activity_data
        or (t.credits is null) <> not (c.has_invoice_data or c.has_credit_note_data)
    limit 1
),

affected as (
    select opportunity_id from changed_deals
    union
    select opportunity_id from {{ ref('stg_crm__opportunities') }}
    where account_id in (select account_id from changed_accounts)
        or exists (select 1 from coverage_changed)
        or {{ reporting_currency_changed() }}
),
{%- else %}
with
{%- endif %}

deals as (
    select * from {{ ref('int_deal_margin') }}
    {%- if is_incremental() %}
    where opportunity_id in (select opportunity_id from affected)
    {%- endif %}
)

select
    cast(opportunity_id as varchar) as opportunity_id,
    cast(account_id as varchar) as account_id,
    cast(rep_id as varchar) as rep_id,
    cast(product_id as varchar) as product_id,
    cast(has_known_account as boolean) as has_known_account,
    cast(has_known_rep as boolean) as has_known_rep,
    cast(has_known_product as boolean) as has_known_product,
    cast(segment_id as varchar) as segment_id,
    cast(lead_source as varchar) as lead_source,
    cast(outcome as varchar) as outcome,
    cast(is_won as boolean) as is_won,
    cast(created_date as date) as created_date,
    cast(close_date as date) as close_date,
    cast(close_month as date) as close_month,
    cast(days_to_close as bigint) as days_to_close,
    cast(deal_currency as varchar) as deal_currency,
    cast('{{ var("reporting_currency") }}' as varchar) as reporting_currency,
    cast(list_amount as {{ type_money() }}) as list_amount,
    cast(discount_rate as {{ type_double() }}) as discount_rate,
    cast(discount_amount as {{ type_money() }}) as discount_amount,
    cast(deal_amount as {{ type_money() }}) as deal_amount,
    cast(net_bookings as {{ type_money() }}) as net_bookings,
    cast(invoiced_revenue as {{ type_money() }}) as invoiced_revenue,
    cast(credits as {{ type_money() }}) as credits,
    cast(net_revenue as {{ type_money() }}) as net_revenue,
    cast(cogs_rate as {{ type_double() }}) as cogs_rate,
    cast(cogs as {{ type_money() }}) as cogs,
    cast(gross_margin as {{ type_money() }}) as gross_margin,
    cast(activity_count as bigint) as activity_count,
    cast(selling_minutes as bigint) as selling_minutes,
    cast(selling_hours as {{ type_double() }}) as selling_hours,
    cast(unpriced_hours as {{ type_double() }}) as unpriced_hours,
    cast(effort_cost as {{ type_money() }}) as effort_cost,
    cast(commissions as {{ type_money() }}) as commissions,
    cast(selling_cost as {{ type_money() }}) as selling_cost,
    cast(allocated_cost_to_serve as {{ type_money() }}) as allocated_cost_to_serve,
    cast(contribution_margin as {{ type_money() }}) as contribution_margin,
    cast(contribution_margin_pct as {{ type_double() }}) as contribution_margin_pct,
    cast(has_invoices as boolean) as has_invoices,
    cast(cost_basis as varchar) as cost_basis,
    cast(has_cost_data as boolean) as has_cost_data,
    cast(has_invoice_data as boolean) as has_invoice_data,
    cast(has_activity_data as boolean) as has_activity_data,
    {%- for p in practices %}
    cast(has_{{ p }} as boolean) as has_{{ p }},
    cast({{ p }}_count as bigint) as {{ p }}_count,
    cast({{ p }}_hours as {{ type_double() }}) as {{ p }}_hours,
    {%- endfor %}
    cast({{ raw_loaded_through() }} as timestamp) as loaded_through
from deals
