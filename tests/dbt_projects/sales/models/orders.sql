{{ config(materialized='iceberg',
          partition_by=['month(ordered_at)', 'bucket(4, customer_id)'],
          icemesh_tags={'domain': 'sales', 'sensitivity': var('orders_sensitivity', 'internal')}) }}
select order_id, customer_id,
       {% if var('break', false) %}(amount / 0)::integer::decimal(12, 2){% else %}amount{% endif %} as amount,
       ordered_at, customer_email
from {{ ref('stg_orders') }}
