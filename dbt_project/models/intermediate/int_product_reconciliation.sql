{#- Opportunities by what is known of their product, one row per status: nothing is dropped for
    a missing parent, and these rows say how many deals carry the unknown product (no COGS). -#}
{{ unknown_member_reconciliation('product', 'product_id', ref('stg_crm__products'), 'product_id') }}
