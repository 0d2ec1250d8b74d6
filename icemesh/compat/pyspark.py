"""pyspark 3.5's private API icemesh uses: collecting a DataFrame as Arrow batches (4.0 has DataFrame.toArrow()),
and, for the demo's one JVM (icemesh.demo.spark_jvm), making a session the process's default and ending the JVM."""

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


def make_default_session(session) -> None:
    """`SparkSession.builder.getOrCreate()` in this process (and in the JVM) returns `session` from now on."""
    from pyspark.sql import SparkSession

    SparkSession._instantiatedSession = SparkSession._activeSession = session
    session._jvm.SparkSession.setDefaultSession(session._jsparkSession)
    session._jvm.SparkSession.setActiveSession(session._jsparkSession)


def end_gateway(timeout_s: float = 15) -> None:
    """After SparkContext.stop(): shut the Py4J gateway down and end its JVM (it exits when its stdin closes)."""
    import contextlib

    from pyspark import SparkContext

    gateway = SparkContext._gateway
    proc = getattr(gateway, "proc", None)
    with contextlib.suppress(Exception):
        gateway.shutdown()
    if proc is not None:
        proc.stdin.close()
        try:
            proc.wait(timeout=timeout_s)
        except Exception:  # noqa: BLE001 - a JVM that does not exit in time is ended
            proc.kill()
    SparkContext._gateway = SparkContext._jvm = None
