{{ config(materialized='table') }}
select item_id, label from {{ ref('inventory', 'items', v=1) }}
