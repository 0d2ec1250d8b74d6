{{ config(materialized='table') }}
-- var('orders') rows; var('price') changes every amount; var('first') shifts which orders exist.
select range::integer as order_id,
       (range % 3)::integer as customer_id,
       (range * {{ var('price', 10) }})::decimal(12, 2) as amount,
       timestamptz '2026-01-01 00:00:00+00' + to_days(range::integer % 40) as ordered_at,
       'customer' || (range % 3) || '@example.com' as customer_email
from range({{ var('first', 0) }}, {{ var('orders', 5) }})
