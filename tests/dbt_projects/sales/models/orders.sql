{{ config(materialized='iceberg') }}
select order_id, customer_id,
       {% if var('break', false) %}(amount / 0)::integer::double{% else %}amount{% endif %} as amount
from {{ ref('stg_orders') }}
