{#- Portable building blocks. Anything engine-specific is dispatched per adapter so the same
    project can run on DuckDB (default) and on a warehouse engine such as PostgreSQL. -#}

{#- An 8-byte float type (DuckDB `float` is 4 bytes, so dbt.type_float() is not it). -#}
{% macro type_double() -%}
    {{ return(adapter.dispatch('type_double', 'salesalign')()) }}
{%- endmacro %}
{% macro default__type_double() -%}double precision{%- endmacro %}
{% macro duckdb__type_double() -%}double{%- endmacro %}

{#- Money in the marts: two decimals, enough digits for a 1M-deal company total. -#}
{% macro type_money() -%}decimal(18,2){%- endmacro %}

{#- Round to the cent (half away from zero) in decimal arithmetic: round(double, n) does not
    exist on every engine, and decimals round ties the same way everywhere. -#}
{% macro to_money(expr) -%}
    cast(round(cast({{ expr }} as decimal(38,10)), 2) as {{ type_money() }})
{%- endmacro %}

{#- money x rate rounded to the cent in exact decimal arithmetic (half away from zero). Rates
    are doubles in the contract; done in binary floating point, a true half-cent tie such as
    189000.00 x 0.652645 = 123349.905 would round either way depending on representation. -#}
{% macro money_times_rate(money, rate) -%}
    cast(round(cast({{ money }} as decimal(24,2)) * cast({{ rate }} as decimal(14,10)), 2) as {{ type_money() }})
{%- endmacro %}

{#- Division that yields null instead of an error when the denominator is 0 or null. -#}
{% macro safe_divide(numerator, denominator) -%}
    cast({{ numerator }} as {{ type_double() }}) / nullif(cast({{ denominator }} as {{ type_double() }}), 0)
{%- endmacro %}

{#- Keep the latest version of every record of an append-only raw table: per primary key, the
    row with the greatest `order_by` (e.g. updated_at desc, _loaded_at desc, _source_row desc).
    DuckDB has QUALIFY; the default is a plain window subquery. -#}
{% macro latest_version(relation, primary_key, order_by) -%}
    {{ return(adapter.dispatch('latest_version', 'salesalign')(relation, primary_key, order_by)) }}
{%- endmacro %}

{% macro default__latest_version(relation, primary_key, order_by) -%}
    select * from (
        select
            *,
            row_number() over (partition by {{ primary_key | join(', ') }} order by {{ order_by | join(', ') }}) as _version_rank
        from {{ relation }}
    ) as versions
    where _version_rank = 1
{%- endmacro %}

{% macro duckdb__latest_version(relation, primary_key, order_by) -%}
    select *, 1 as _version_rank
    from {{ relation }}
    qualify row_number() over (partition by {{ primary_key | join(', ') }} order by {{ order_by | join(', ') }}) = 1
{%- endmacro %}

{#- First day of the month of a date or timestamp, as a date. -#}
{% macro month_of(expr) -%}
    cast({{ dbt.date_trunc('month', expr) }} as date)
{%- endmacro %}
