{{ config(materialized='table') }}
select range as order_id, (range % 3) as customer_id, (range * {{ var('price', 10) }})::double as amount
from range({{ var('orders', 5) }})
