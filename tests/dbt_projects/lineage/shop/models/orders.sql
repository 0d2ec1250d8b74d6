{{ config(materialized='iceberg', icemesh_tags={'domain': 'shop'}) }}
select range::integer as order_id, (range % 3)::integer as customer_id, (range * 2.5)::double as amount
from range(5)
