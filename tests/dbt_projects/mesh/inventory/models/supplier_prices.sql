{{ config(materialized='iceberg', icemesh_tags={'domain': 'inventory', 'sensitivity': 'confidential'}) }}
select item_id, unit_cost * 0.8 as supplier_price from {{ ref('stg_items') }}
