{#- Personal data stops here: names and phone numbers are dropped, the e-mail is hashed
    (stable key for de-duplication across sources, not reversible). -#}
with latest as (
    {{ latest_version(
        landed('crm', 'contacts'),
        ['contact_id'],
        ['updated_at desc', '_loaded_at desc', '_source_row desc']
    ) }}
)

select
    contact_id,
    account_id,
    {{ dbt.hash('lower(trim(email))') }} as email_hash,
    title,
    created_at,
    updated_at,
    _loaded_at
from latest
