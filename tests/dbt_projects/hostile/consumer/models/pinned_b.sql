{{ config(materialized='table') }}
select v from {{ ref('x__Y', 'z') }}
