"""The engines `icemesh.connect().sql(..., engine=E)` knows, each by the class that loads it on first use: a light
module, so that naming the engines (the CLI's `--engine` choices) imports none of them (pyarrow, duckdb, pyspark...).
"""

ENGINES = {
    "duckdb": "icemesh.query.duckdb:DuckDBEngine",
    "spark": "icemesh.query.spark:SparkEngine",
    "polars": "icemesh.query.polars:PolarsEngine",
    "datafusion": "icemesh.query.datafusion:DataFusionEngine",
    "daft": "icemesh.query.daft:DaftEngine",
    "chdb": "icemesh.query.chdb:ChdbEngine",
}
