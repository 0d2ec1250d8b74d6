{{ config(materialized='iceberg', icemesh_tags={'domain': 'inventory', 'sensitivity': 'internal'}) }}
select item_id, label from {{ ref('stg_items') }}
