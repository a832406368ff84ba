{#- The model has at least one row. -#}
{% test not_empty(model) %}
select 'no rows' as problem
where not exists (select 1 from {{ model }})
{% endtest %}
