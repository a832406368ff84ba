{#- What the source delivered, one row per build: a raw table with no rows was not delivered (a
    source without finance data lands nothing there). The mart uses it to tell "this deal has no
    invoices" (0) from "the source has no invoices at all" (null), and labels its cost basis.
    Quarantined rows count as delivered: the table exists in the source. -#}
{%- set tables = [
    ('crm', 'activities'), ('finance', 'invoices'), ('finance', 'credit_notes'),
    ('finance', 'product_costs'), ('finance', 'rep_costs'), ('finance', 'commissions'),
    ('finance', 'cost_to_serve'),
] %}
with delivered as (
    select
        {#- sqlfluff misplaces the indent of a loop that ends in a templated comma #}
        -- noqa: disable=LT02
        {%- for source_name, t in tables %}
        (select count(*) from {{ source(source_name, t) }}) > 0 as has_{{ t }}{{ ',' if not loop.last }}
        {%- endfor %}
), -- noqa: enable=LT02

missing as (
    select
        *,
        {{ dbt.concat([
            "case when has_invoices then '' else ', invoices' end",
            "case when has_product_costs then '' else ', product costs' end",
            "case when has_activities then '' else ', activities' end",
            "case when has_rep_costs then '' else ', rep costs' end",
            "case when has_commissions then '' else ', commissions' end",
            "case when has_cost_to_serve then '' else ', cost-to-serve' end",
        ]) }} as missing_list
    from delivered
)

select
    has_activities as has_activity_data,
    has_invoices as has_invoice_data,
    has_credit_notes as has_credit_note_data,
    has_product_costs as has_product_cost_data,
    has_rep_costs as has_rep_cost_data,
    has_commissions as has_commission_data,
    has_cost_to_serve as has_cost_to_serve_data,
    missing_list = '' as has_cost_data,
    case
        when missing_list = '' then 'full'
        when not (has_invoices or has_product_costs or has_rep_costs or has_commissions or has_cost_to_serve)
            then 'bookings only: no finance data'
        else {{ dbt.concat([
            "'partial: no '", dbt.right("missing_list", dbt.length("missing_list") ~ " - 2"),
        ]) }}
    end as cost_basis
from missing
