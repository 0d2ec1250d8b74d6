{{ config(materialized='table') }}
select l.item_id, i.label, sum(l.quantity) as quantity
from {{ ref('orders', 'order_lines') }} l
join {{ ref('inventory', 'items') }} i using (item_id)
group by all
