{{ config(materialized='iceberg', incremental_strategy='delete+insert', unique_key='customer_id',
          partition_by=['customer_id']) }}
select customer_id, count(*) as shipments
from {{ ref('stg_shipments') }}
{% if is_incremental() %}
where customer_id in (select customer_id from {{ ref('stg_shipments') }} where order_id >= {{ var('first', 0) }})
{% endif %}
group by customer_id
