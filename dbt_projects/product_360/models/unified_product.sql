{{ config(materialized='iceberg', icemesh_tags={'domain': 'product_360', 'sensitivity': 'public'}) }}
-- Three products of two other domains, read in place; batches.supplier_cost is confidential, so this project
-- never sees it (selecting it would fail naming the column).
select b.batch_id, b.vaccine, b.plant, b.finished_on, b.released_doses, b.yield_pct,
       q.passed as quality_passed, q.failed_tests,
       antigen.supplier as antigen_supplier,
       antigen.cold_chain_ok and adjuvant.cold_chain_ok as cold_chain_ok,
       q.passed and antigen.cold_chain_ok and adjuvant.cold_chain_ok as release_ready
from {{ ref('manufacturing', 'batches') }} b
join {{ ref('manufacturing', 'batch_quality') }} q on q.batch_id = b.batch_id
join {{ ref('supply_chain', 'lot_inventory') }} antigen on antigen.lot_id = b.antigen_lot_id
join {{ ref('supply_chain', 'lot_inventory') }} adjuvant on adjuvant.lot_id = b.adjuvant_lot_id
