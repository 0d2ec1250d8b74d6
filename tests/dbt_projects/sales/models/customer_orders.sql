{{ config(materialized='iceberg', incremental_strategy='delete+insert', unique_key='customer_id',
          on_schema_change='fail') }}
select customer_id, count(*)::bigint as orders, sum(amount) as total
       {%- if var('with_channel', false) %}, 'web' as channel{% endif %}
from {{ ref('stg_orders') }}
{% if is_incremental() %}
where customer_id in (select distinct customer_id from {{ ref('stg_orders') }} where order_id >= {{ var('first', 0) }})
{% endif %}
group by customer_id
