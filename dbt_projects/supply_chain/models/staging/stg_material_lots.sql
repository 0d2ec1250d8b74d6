select lot_id, material, supplier, received_on, expires_on, quantity_kg, unit_cost, qc_status
from {{ ref('raw_material_lots') }}
