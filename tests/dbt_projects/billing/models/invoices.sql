{{ config(materialized='iceberg', icemesh_tags={'domain': 'finance'}) }}
-- The fulfilment domain's product (written by dbt-spark), resolved from the catalog, read in place by DuckDB.
select order_id, status, 'EUR' as currency from {{ ref('fulfilment', 'shipments') }} where status = 'shipped'
