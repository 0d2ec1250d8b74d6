{{ config(materialized='view', catalog_name='mesh') }}
-- catalogs.yml style on Spark: a view model in the icemesh catalog is published as an Iceberg view product.
select order_id, status from {{ ref('shipments') }} where status = 'shipped'
