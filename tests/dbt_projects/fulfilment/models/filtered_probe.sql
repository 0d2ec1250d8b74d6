{{ config(materialized='iceberg', enabled=var('filtered_probe', false)) }}
-- Reads sales.order_status through a grant with a row filter and a mask (tests/test_dbt_spark.py's fixture).
select order_id, amount from {{ ref('sales', 'order_status') }}
