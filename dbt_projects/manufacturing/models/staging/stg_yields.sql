select batch_id, stage, input_doses, output_doses
from {{ ref('raw_yields') }}
