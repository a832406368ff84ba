{#- Opportunities by what is known of their account, one row per status: nothing is dropped for
    a missing parent, and these rows say how many deals carry the unknown account. -#}
{{ unknown_member_reconciliation('account', 'account_id', ref('stg_crm__accounts'), 'account_id') }}
