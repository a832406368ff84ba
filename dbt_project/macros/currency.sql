{#- True when rows of the incremental model `this` were built in another reporting currency than
    the var's: the run must then recompute every row, or the table would mix currencies. -#}
{% macro reporting_currency_changed() -%}
    exists (select 1 from {{ this }} where reporting_currency <> '{{ var("reporting_currency") }}')
{%- endmacro %}
