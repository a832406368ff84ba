{#- The model has as many rows as `compare_to` (optionally only its rows where `compare_where`):
    together with `unique` and `relationships`, every record of the other is in it exactly once. -#}
{% test same_row_count(model, compare_to, compare_where="true") %}
select rows_here, rows_there
from (
    select
        (select count(*) from {{ model }}) as rows_here,
        (select count(*) from {{ compare_to }} where {{ compare_where }}) as rows_there
) as counts
where rows_here <> rows_there
{% endtest %}
