with latest as (
    {{ latest_version(
        landed('crm', 'products'),
        ['product_id'],
        ['updated_at desc', '_loaded_at desc', '_source_row desc']
    ) }}
)

select
    product_id,
    product_name,
    product_family,
    list_price,
    updated_at,
    _loaded_at
from latest
