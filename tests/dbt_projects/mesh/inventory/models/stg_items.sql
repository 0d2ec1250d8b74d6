select range::integer as item_id, 'item ' || range as label, (range * 1.5)::decimal(10, 2) as unit_cost
from range({{ var('items', 4) }})
