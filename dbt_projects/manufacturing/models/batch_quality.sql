{{ config(materialized='iceberg', icemesh_tags={'domain': 'manufacturing', 'sensitivity': 'internal'}) }}
select batch_id,
       cast(count(*) as integer) as tests,
       cast(sum(failed) as integer) as failed_tests,
       sum(failed) = 0 as passed,
       max(tested_on) as last_tested_on
from {{ ref('stg_quality_tests') }}
group by batch_id
