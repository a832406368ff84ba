{#- Incremental bookkeeping. Every incremental fact row records `loaded_through`: the latest
    `_loaded_at` in the raw layer when it was built. The next run reprocesses what depends on raw
    rows landed after the greatest `loaded_through` in the table (raw is append-only, and landing
    and dbt never write the warehouse at the same time, so nothing lands "in the past"). -#}

{% macro raw_loaded_through() -%}
    (select max(_loaded_at) from (
        {%- for source_name, tables in raw_tables().items() %}
        {%- set outer_loop = loop %}
        {%- for t in tables %}
        select max(_loaded_at) as _loaded_at from {{ source(source_name, t) }}
        {%- if not (outer_loop.last and loop.last) %} union all{% endif %}
        {%- endfor %}
        {%- endfor %}
    ) as loads)
{%- endmacro %}

{#- Closed deals in the optional [min_date, max_date] window (vars), e.g. for a partition backfill. -#}
{% macro close_date_window_filter(column) -%}
    {%- if var('min_date') and var('max_date') -%}
        {{ column }} between cast('{{ var("min_date") }}' as date) and cast('{{ var("max_date") }}' as date)
    {%- else -%}
        false
    {%- endif -%}
{%- endmacro %}

{#- The watermark of an incremental model: the greatest value of `column` in it, or a date
    before any load when the table is empty (so an empty first build does not stall later runs). -#}
{% macro watermark(column) -%}
    coalesce((select max({{ column }}) from {{ this }}), cast('1900-01-01 00:00:00' as timestamp))
{%- endmacro %}

{#- Rows a staging table of a big append-only raw table must (re)consider: on a full build all
    raw rows; incrementally the rows landed since the table's watermark plus the current version
    of every record they touch (so the latest-version rule still applies across loads). -#}
{% macro staging_candidates(relation, key, columns) -%}
    {%- if is_incremental() %}
    select {{ columns | join(', ') }} from {{ relation }}
    where _loaded_at > {{ watermark('_loaded_at') }}
    union all
    select {{ columns | join(', ') }} from {{ this }}
    where {{ key }} in (
        select {{ key }} from {{ relation }} where _loaded_at > {{ watermark('_loaded_at') }}
    )
    {%- else %}
    select {{ columns | join(', ') }} from {{ relation }}
    {%- endif %}
{%- endmacro %}

{#- Keys of `relation` whose rows landed after the model's watermark or, given `rate_date`, whose
    FX rate on that date changed. Needs the CTEs `watermark` (loaded_through) and `changed_fx`. -#}
{% macro changed_keys(key, relation, rate_date=none) -%}
    select {{ key }} from {{ relation }}
    where _loaded_at > (select loaded_through from watermark)
    {%- if rate_date %}
        or {{ rate_date }} in (select rate_date from changed_fx)
    {%- endif %}
{%- endmacro %}
