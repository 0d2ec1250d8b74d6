{{ config(materialized='table') }}
select v from {{ ref('x', 'y__z') }}
