{{ config(materialized='iceberg', partition_by=['month(shipped_on)'],
          icemesh_tags={'domain': 'supply_chain', 'sensitivity': 'internal'}) }}
select shipment_id, lot_id, carrier, shipped_on, delivered_on, cast(transit_days as integer) as transit_days,
       min_temp_c, max_temp_c, temperature_excursion, carrier_contact
from {{ ref('stg_shipments') }}
