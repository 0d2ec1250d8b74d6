{{ config(materialized='iceberg', incremental_strategy='merge', unique_key='order_id',
          on_schema_change='append_new_columns') }}
select order_id, amount{% if var('with_channel', false) %}, 'web' as channel{% endif %}
from {{ ref('stg_orders') }}
