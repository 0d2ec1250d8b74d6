"""One product, several engines: the same query through icemesh.connect(), answers compared row for row. Spark
runs in the demo's one JVM (icemesh.demo.spark_jvm), in svc_marketing's own session there, on a thread beside
the other engines (the JVM is warm by then: the builds used it).

Each engine reads the product's own files in place under the caller's grants; values are normalised
(decimals and floats rounded, rows sorted) only so that engines' type choices do not count as differences.
"""

from __future__ import annotations

import decimal
import shutil
import time
from dataclasses import dataclass

from icemesh.demo.console import DemoError, say

QUERY = ("select vaccine, count(*) as batches, sum(released_doses) as doses, "
         "sum(case when release_ready then 1 else 0 end) as release_ready "
         "from product_360.unified_product group by vaccine order by vaccine")


def available_engines(with_spark: bool) -> list[str]:
    engines = ["duckdb", "polars", "datafusion", "daft", "chdb"]
    if with_spark and shutil.which("java"):
        engines.append("spark")
    return engines


@dataclass
class EngineRun:
    engine: str
    rows: list[tuple]
    seconds: float


def _normalise(value):
    if isinstance(value, (decimal.Decimal, float)):
        value = round(float(value), 2)
        return int(value) if value.is_integer() else value
    return value


def _rows(records: list[dict]) -> list[tuple]:
    return sorted(tuple(_normalise(v) for v in record.values()) for record in records)


def _spark_in_jvm(mesh, jvm, principal: str) -> EngineRun:
    started = time.monotonic()
    with jvm.as_principal(principal):
        records = mesh.sql(QUERY, engine="spark").to_pylist()
    return EngineRun("spark", _rows(records), time.monotonic() - started)


def query_everywhere(mesh, engines: list[str], principal: str, jvm) -> list[EngineRun]:
    """Run QUERY on every engine; stop the demo if any answer differs from DuckDB's. Spark starts first and runs
    beside the in-process engines; its line comes last, as before."""
    from concurrent.futures import ThreadPoolExecutor

    say(f"mesh = icemesh.connect(); mesh.sql(QUERY, engine=...)  with QUERY = {QUERY!r}")
    runs: list[EngineRun] = []
    with ThreadPoolExecutor(max_workers=1) as pool:
        spark = pool.submit(_spark_in_jvm, mesh, jvm, principal) if "spark" in engines else None
        for engine in engines:
            if engine == "spark":
                say(f"mesh.sql(QUERY, engine='spark')   (in the demo's one JVM, {principal}'s own Spark session)",
                    indent=6)
                runs.append(spark.result())
            else:
                started = time.monotonic()
                records = mesh.sql(QUERY, engine=engine).to_pylist()
                runs.append(EngineRun(engine, _rows(records), time.monotonic() - started))
            same = "same rows" if runs[-1].rows == runs[0].rows else "DIFFERENT ROWS"
            say(f"{engine:<11} {len(runs[-1].rows)} rows in {runs[-1].seconds:5.1f}s   {same}", indent=6)
            if runs[-1].rows != runs[0].rows:
                raise DemoError(f"{engine} answered {runs[-1].rows}, {runs[0].engine} answered {runs[0].rows}")
    say("vaccine     batches    doses  release_ready", indent=6)
    for vaccine, batches, doses, ready in runs[0].rows:
        say(f"{vaccine:<10} {batches:>8} {doses:>10,} {ready:>13}", indent=6)
    return runs
