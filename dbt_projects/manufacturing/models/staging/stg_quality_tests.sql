select test_id, batch_id, test, result, spec_min, spec_max, tested_on,
       case when result < spec_min or result > spec_max then 1 else 0 end as failed
from {{ ref('raw_quality_tests') }}
