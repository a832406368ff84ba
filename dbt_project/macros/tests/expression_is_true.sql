{#- A boolean SQL expression over the model's columns holds on every row (a row where it is null,
    i.e. not applicable, passes). Returns the rows where it is false. -#}
{% test expression_is_true(model, expression) %}
select *
from {{ model }}
where not ({{ expression }})
{% endtest %}
