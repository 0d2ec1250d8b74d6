select batch_id, vaccine, plant, started_on, finished_on, planned_doses,
       antigen_lot_id, antigen_kg, adjuvant_lot_id, adjuvant_kg
from {{ ref('raw_batches') }}
