{{ config(materialized='ephemeral') }}
-- var('orders') shipments; orders below var('shipped') have left the warehouse; var('first') shifts which exist.
select cast(id as int) as order_id,
       cast(id % 3 as int) as customer_id,
       case when id < {{ var('shipped', 3) }} then 'shipped' else 'packed' end as status
from range({{ var('first', 0) }}, {{ var('orders', 5) }})
