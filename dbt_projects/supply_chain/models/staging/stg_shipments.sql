select shipment_id, lot_id, carrier, shipped_on, delivered_on,
       date_diff('day', shipped_on, delivered_on) as transit_days,
       min_temp_c, max_temp_c,
       (min_temp_c < 2.0 or max_temp_c > 8.0) as temperature_excursion,
       carrier_contact
from {{ ref('raw_shipments') }}
