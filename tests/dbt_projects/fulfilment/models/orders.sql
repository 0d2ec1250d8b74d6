{{ config(materialized='iceberg',
          partition_by=['month(ordered_at)', 'bucket(4, customer_id)'],
          icemesh_tags={'domain': 'fulfilment', 'sensitivity': 'internal'}) }}
-- The sales domain's product (written by dbt-duckdb), resolved from the catalog and read in place by Spark.
select order_id, customer_id, amount, ordered_at, customer_email from {{ ref('sales', 'orders') }}
