{{ config(materialized='iceberg', icemesh_tags={'domain': 'inventory', 'sensitivity': 'internal'},
          icemesh_freshness={'error_after': {'count': 0, 'period': 'minute'}}) }}
select count(*) as items from {{ ref('stg_items') }}
