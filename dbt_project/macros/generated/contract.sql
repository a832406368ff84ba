{#- Generated from salesalign/contract by `make generate`; do not edit by hand. -#}

{#- The raw contract tables, by dbt source. -#}
{% macro raw_tables() -%}
    {{ return({'crm': ['accounts', 'contacts', 'reps', 'products', 'opportunities', 'opportunity_stage_history', 'activities'], 'finance': ['invoices', 'credit_notes', 'product_costs', 'rep_costs', 'commissions', 'cost_to_serve', 'fx_rates']}) }}
{%- endmacro %}

{#- The activity types that are sales practices. -#}
{% macro practice_types() -%}
    {{ return(['discovery_workshop', 'executive_sponsor_meeting', 'proof_of_concept', 'deep_discount_approval']) }}
{%- endmacro %}

{#- Every activity type of the contract (routine and practices). -#}
{% macro activity_types() -%}
    {{ return(['call', 'email', 'meeting', 'demo', 'proposal_prep', 'discovery_workshop', 'executive_sponsor_meeting', 'proof_of_concept', 'deep_discount_approval']) }}
{%- endmacro %}

{#- The opportunity stages, in pipeline order. -#}
{% macro stages() -%}
    {{ return(['prospecting', 'qualification', 'discovery', 'proposal', 'negotiation', 'closed_won', 'closed_lost']) }}
{%- endmacro %}

{#- The stages of an open opportunity. -#}
{% macro open_stages() -%}
    {{ return(['prospecting', 'qualification', 'discovery', 'proposal', 'negotiation']) }}
{%- endmacro %}

{#- Where a lead can come from. -#}
{% macro lead_sources() -%}
    {{ return(['inbound', 'outbound', 'partner', 'event', 'referral']) }}
{%- endmacro %}
