"""pyspark 3.5's private API icemesh uses: collecting a DataFrame as Arrow batches (4.0 has DataFrame.toArrow())."""

from __future__ import annotations

PINNED = "3.5"


def to_arrow(frame):
    """A Spark DataFrame's rows as one Arrow table, through Spark's Arrow serializer (no pandas, no Row objects)."""
    import pyarrow as pa
    from pyspark.sql.pandas.types import to_arrow_schema

    batches = frame._collect_as_arrow()
    return pa.Table.from_batches(batches) if batches else to_arrow_schema(frame.schema).empty_table()


def spark_schema(arrow_schema):
    """Spark's StructType for an Arrow schema (pyspark's own conversion, which its public API does not expose);
    given explicitly so an empty result keeps its columns and types."""
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(arrow_schema)
