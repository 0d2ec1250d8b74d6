{{ config(materialized='table') }}
select id from {{ ref('evil', 'stale') }}
