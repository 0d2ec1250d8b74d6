{{ config(materialized='iceberg', enabled=var('peek', false)) }}
-- Reads a product svc_fulfilment has no grant on: the catalog refuses the read.
select * from mesh.sales.order_status
