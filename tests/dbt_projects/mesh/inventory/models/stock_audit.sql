{{ config(materialized='iceberg', icemesh_tags={'domain': 'inventory', 'sensitivity': 'internal'}) }}
select item_id, 0 as discrepancies from {{ ref('stg_items') }}
