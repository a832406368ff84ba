{#- Business rules shared by several models. -#}

{#- Size band of an account from its employee count (bands configurable via vars). -#}
{% macro size_band(employee_count) -%}
    case
        when {{ employee_count }} is null then 'unknown'
        when {{ employee_count }} < {{ var('size_band_mid_from') }} then 'small'
        when {{ employee_count }} < {{ var('size_band_enterprise_from') }} then 'mid'
        else 'enterprise'
    end
{%- endmacro %}

{#- segment_id = industry|size_band|region, e.g. 'software|enterprise|na'. -#}
{% macro segment_id(industry, employee_count, region) -%}
    {{ dbt.concat([
        "coalesce(" ~ industry ~ ", 'unknown')", "'|'",
        size_band(employee_count), "'|'",
        "coalesce(" ~ region ~ ", 'unknown')"
    ]) }}
{%- endmacro %}

{#- An amount in `currency` on the day `rate_alias` was joined for, in the reporting currency,
    rounded to the cent (each document is converted once, so sums reconcile to the cent).
    `rate_alias` is a join of stg_finance__fx_rates on (currency, date). -#}
{% macro to_reporting(amount, currency, rate_alias) -%}
    case
        when {{ amount }} is null then null
        when {{ currency }} = '{{ var("reporting_currency") }}' then cast({{ amount }} as {{ type_money() }})
        else {{ money_times_rate(amount, rate_alias ~ '.to_reporting_rate') }}
    end
{%- endmacro %}

{#- Join clause for the rate of `currency` on `date_expr`. -#}
{% macro join_fx(rate_alias, currency, date_expr) -%}
    left join {{ ref('stg_finance__fx_rates') }} as {{ rate_alias }}
        on {{ rate_alias }}.currency = {{ currency }}
        and {{ rate_alias }}.rate_date = {{ date_expr }}
{%- endmacro %}
