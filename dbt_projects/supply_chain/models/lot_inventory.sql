{{ config(materialized='iceberg', icemesh_tags={'domain': 'supply_chain', 'sensitivity': 'internal'}) }}
with legs as (
    select lot_id, count(*) as shipments, count(*) filter (where temperature_excursion) as excursions
    from {{ ref('stg_shipments') }}
    group by lot_id
)
select l.lot_id, l.material, l.supplier, l.received_on, l.expires_on, l.quantity_kg, l.unit_cost, l.qc_status,
       cast(coalesce(legs.shipments, 0) as integer) as shipments,
       coalesce(legs.excursions, 0) = 0 as cold_chain_ok
from {{ ref('stg_material_lots') }} l
left join legs using (lot_id)
