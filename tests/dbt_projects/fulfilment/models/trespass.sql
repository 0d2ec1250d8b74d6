{{ config(materialized='iceberg', icemesh_namespace='sales', alias='order_status', enabled=var('trespass', false)) }}
-- Tries to overwrite the sales domain's product (reading nothing of it): the catalog refuses the write.
select cast(1 as int) as order_id, cast(0 as decimal(12, 2)) as amount where 1 = 0
