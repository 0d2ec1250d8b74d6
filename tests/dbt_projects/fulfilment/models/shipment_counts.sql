{{ config(materialized='table', catalog_name='mesh', icemesh_tags={'domain': 'fulfilment'}) }}
-- catalogs.yml style on Spark: a table model in the icemesh catalog is published as a product.
select status, cast(count(*) as int) as shipments from {{ ref('stg_shipments') }} group by status
