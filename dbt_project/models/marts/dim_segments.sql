{#- Every segment (industry x size band x region) that at least one account falls into. -#}
select
    cast(segment_id as varchar) as segment_id,
    cast(industry as varchar) as industry,
    cast(size_band as varchar) as size_band,
    cast(region as varchar) as region,
    cast(count(*) as bigint) as account_count
from {{ ref('int_accounts_segmented') }}
group by segment_id, industry, size_band, region
