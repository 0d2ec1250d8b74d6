{{ config(materialized='iceberg', icemesh_namespace='sales', alias='orders', enabled=var('trespass', false)) }}
-- Tries to overwrite the sales domain's product: the catalog refuses (svc_fulfilment may only read it).
select order_id, customer_id, amount, ordered_at, customer_email from mesh.sales.orders where order_id < 0
