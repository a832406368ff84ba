{#- Opportunities by what is known of their owner rep, one row per status: nothing is dropped for
    a missing parent, and these rows say how many deals carry the unknown rep. -#}
{{ unknown_member_reconciliation('rep', 'owner_rep_id', ref('stg_crm__reps'), 'rep_id') }}
