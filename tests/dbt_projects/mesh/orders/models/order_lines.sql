{{ config(materialized='iceberg', icemesh_tags={'domain': 'orders', 'sensitivity': 'internal'}) }}
select range::integer as line_id, (range % 4)::integer as item_id, i.label, (range + 1)::integer as quantity
from range(6) join {{ ref('inventory', 'items') }} i on i.item_id = range % 4
