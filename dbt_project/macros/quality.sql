{#- A raw source table without the rows the quality gates quarantined: every staging model reads
    raw through this, so a quarantined row never reaches the marts (it stays in raw; nothing is
    lost), and a quarantined newer version of a record falls back to its last good version. -#}
{% macro landed(source_name, table_name) -%}
    (select landed.* from {{ source(source_name, table_name) }} as landed
     where not exists (
        select 1 from {{ source('quality', 'quarantined_rows') }} as quarantined
        where quarantined.table_name = '{{ table_name }}'
          and quarantined.load_id = landed._load_id
          and quarantined.source_row = landed._source_row)) as landed_{{ table_name }}
{%- endmacro %}
