{{ config(materialized='iceberg', icemesh_tags={'domain': 'manufacturing', 'sensitivity': 'internal'}) }}
-- supply_chain's lots are read in place from the catalog, with only the columns svc_manufacturing may read.
-- (Referenced here rather than through a staging view: icemesh records a product's upstream products from
-- its direct refs.)
with released as (
    select batch_id, output_doses as released_doses
    from {{ ref('stg_yields') }}
    where stage = 'inspection'
)
select b.batch_id, b.vaccine, b.plant, b.started_on, b.finished_on, b.planned_doses, r.released_doses,
       cast(round(100.0 * r.released_doses / b.planned_doses, 2) as decimal(5, 2)) as yield_pct,
       b.antigen_lot_id, b.adjuvant_lot_id,
       cast(b.antigen_kg * antigen.unit_cost + b.adjuvant_kg * adjuvant.unit_cost as decimal(14, 2)) as supplier_cost
from {{ ref('stg_batches') }} b
join released r on r.batch_id = b.batch_id
join {{ ref('supply_chain', 'lot_inventory') }} antigen on antigen.lot_id = b.antigen_lot_id
join {{ ref('supply_chain', 'lot_inventory') }} adjuvant on adjuvant.lot_id = b.adjuvant_lot_id
