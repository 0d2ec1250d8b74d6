{{ config(materialized='iceberg', enabled=var('broken', false)) }}
-- Fails while DuckDB runs it (after the plugin has sent START).
select cast('not a number' as integer) as oops
