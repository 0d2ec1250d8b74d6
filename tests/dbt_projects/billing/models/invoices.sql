{{ config(materialized='iceberg', icemesh_tags={'domain': 'finance'}) }}
-- The fulfilment domain's product (written by dbt-spark), read in place by DuckDB.
select order_id, status, 'EUR' as currency from mesh.fulfilment.shipments where status = 'shipped'
