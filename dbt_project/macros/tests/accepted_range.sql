{#- Every non-null value of the column lies in [min_value, max_value] (either bound optional;
    `min_exclusive` / `max_exclusive` make it open). Returns the rows outside the range. -#}
{% test accepted_range(model, column_name, min_value=none, max_value=none, min_exclusive=false, max_exclusive=false) %}
select {{ column_name }}
from {{ model }}
where not (
    true
    {%- if min_value is not none %} and {{ column_name }} {{ '>' if min_exclusive else '>=' }} {{ min_value }}{% endif %}
    {%- if max_value is not none %} and {{ column_name }} {{ '<' if max_exclusive else '<=' }} {{ max_value }}{% endif %}
)
{% endtest %}
