{{ config(materialized='iceberg', icemesh_tags={'domain': 'inventory', 'sensitivity': 'internal'}) }}
select item_id, upper(label) as label, unit_cost from {{ ref('stg_items') }}
