{{ config(materialized='table') }}
select id, label from {{ ref('evil', 'shipments') }}
