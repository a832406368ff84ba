with latest as (
    {{ latest_version(
        landed('finance', 'product_costs'),
        ['product_id', 'valid_from'],
        ['_loaded_at desc', '_source_row desc']
    ) }}
)

select
    product_id,
    valid_from,
    valid_to,
    cogs_rate,
    _loaded_at
from latest
