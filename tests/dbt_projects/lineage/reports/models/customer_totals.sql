{{ config(materialized='iceberg') }}
select o.customer_id, sum(o.amount) as total, count(*) as orders
from {{ ref('shop', 'orders') }} o
group by o.customer_id
