{#- Generated from salesalign/quality/quarantine.py by `make generate`; do not edit by hand. -#}

{#- Create the quarantine ledger if it is missing (dbt_project.yml runs it on-run-start). -#}
{% macro quarantine_ledger_ddl() -%}
    CREATE SCHEMA IF NOT EXISTS raw_quarantine;
    CREATE TABLE IF NOT EXISTS raw_quarantine.quarantined_rows (table_name VARCHAR NOT NULL, load_id VARCHAR NOT NULL, source_row BIGINT NOT NULL, key_value VARCHAR, expectation VARCHAR NOT NULL, column_name VARCHAR, value VARCHAR, reason VARCHAR, quarantined_at TIMESTAMP NOT NULL)
{%- endmacro %}
