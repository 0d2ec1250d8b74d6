{{ config(materialized='iceberg', incremental_strategy='append') }}
select order_id, status from {{ ref('stg_shipments') }}
{% if is_incremental() %}
where order_id > (select max(order_id) from {{ this }})
{% endif %}
