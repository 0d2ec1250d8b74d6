{{ config(materialized='iceberg', incremental_strategy='merge', unique_key='order_id',
          on_schema_change='append_new_columns', icemesh_tags={'domain': 'fulfilment'}) }}
select order_id, status{% if var('with_carrier', false) %}, 'dhl' as carrier{% endif %}
from {{ ref('stg_shipments') }}
