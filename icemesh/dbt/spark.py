"""dbt-spark with icemesh: `materialized='iceberg'` on Spark (profile `type: spark`, `method: session`).

dbt-spark has no plugin hooks like dbt-duckdb's `store_relation`, so icemesh enters dbt's process through
dbt-core's plugin entry point: the top-level module `dbt_icemesh_spark` (dbt imports every `dbt_*` module)
calls `install()`, which gives dbt-spark's adapter one Jinja-callable method, `adapter.icemesh_publish`.
The `iceberg` materialization for Spark (macros/iceberg_spark.sql) hands it the model's spec.

Spark runs the model's SQL in dbt's own process (that is what `method: session` means); the rows come back
to the driver as Arrow and the same ProductWriter as on DuckDB writes them as the project's principal, in one
commit carrying rows, schema, partition spec and `icemesh.dbt.*` properties, with the tags applied ahead.
So a product made on Spark is the same in the catalog as one made on DuckDB. The price: the model's result
passes through the driver's memory (see the README on sizing).
"""

from __future__ import annotations

from typing import Any

from icemesh.compat.dbt import expose_adapter_method
from icemesh.compat.pyspark import to_arrow

PUBLISH = "icemesh_publish"
CHECK_VIEW = "icemesh_check_view"        # a view product: checked before Spark creates the view,
DESCRIBE_VIEW = "icemesh_describe_view"  # then described (view_products.py)


def install() -> bool:
    """Make `adapter.icemesh_publish(product)` callable from dbt-spark's Jinja; False when dbt-spark is absent.
    Cheap (every dbt command of every project runs it): the writer is imported when a model publishes."""
    try:
        from dbt.adapters.spark.impl import SparkAdapter
    except ImportError:
        return False
    expose_adapter_method(SparkAdapter, PUBLISH, _publish)
    expose_adapter_method(SparkAdapter, CHECK_VIEW, _check_view)
    expose_adapter_method(SparkAdapter, DESCRIBE_VIEW, _describe_view)
    return True


def _session(adapter):
    """The SparkSession dbt-spark runs this thread's statements on (session mode builds it the same way)."""
    from dbt_common.exceptions import DbtRuntimeError
    from pyspark.sql import SparkSession

    handle = adapter.connections.get_thread_connection().handle
    parameters = getattr(getattr(handle, "handle", None), "server_side_parameters", None)
    if parameters is None:
        raise DbtRuntimeError("materialized='iceberg' on Spark needs the profile's `method: session` "
                              "(Spark runs inside dbt's process); see `icemesh dbt init`")
    builder = SparkSession.builder.enableHiveSupport()
    for key, value in parameters.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def _publish(adapter, product: dict[str, Any]) -> dict[str, Any]:
    """`adapter.icemesh_publish(product)`: run the model on Spark and publish its result as a product."""
    from dbt_common.exceptions import DbtRuntimeError

    from icemesh.dbt.product import ProductSpec
    from icemesh.dbt.writer import ProductWriter, publish_error

    class SparkProductWriter(ProductWriter):
        """The DuckDB writer's publishing logic, with the model's SQL run by Spark."""

        ENGINE = "spark"

        def _run(self, sql: str):
            return to_arrow(self.connection.sql(sql))

    identifier = f"{product.get('namespace')}.{product.get('table')}"
    try:
        spec = ProductSpec.from_config(dict(product))
        spark = _session(adapter)
        client, rest = _catalog_parts(adapter)
        result = SparkProductWriter(client, rest, spark).publish(spec)
    except DbtRuntimeError:
        raise
    except Exception as exc:  # the catalog's refusals (pyiceberg and Iceberg-in-Spark) carry its message
        raise DbtRuntimeError(publish_error(identifier, exc)) from None
    return {"rows": result.rows, "snapshot_id": result.snapshot_id, "seconds": round(result.seconds, 3)}


def _catalog_parts(adapter):
    """(CatalogClient, pyiceberg RestCatalog) as the project's principal: one login per dbt invocation, shared by
    the model threads."""
    from icemesh.client import CatalogClient

    parts = getattr(adapter, "_icemesh_catalog", None)
    if parts is None:
        client = CatalogClient.from_env()
        parts = adapter._icemesh_catalog = (client, client.rest_catalog())
    return parts


def _view_step(adapter, product: dict[str, Any], step) -> dict[str, Any] | None:
    from dbt_common.exceptions import DbtRuntimeError

    from icemesh.dbt.writer import publish_error

    identifier = f"{product.get('namespace')}.{product.get('table')}"
    try:
        return step(_catalog_parts(adapter)[0], product)
    except Exception as exc:  # the catalog's refusals carry their message
        raise DbtRuntimeError(publish_error(identifier, exc)) from None


def _check_view(adapter, product: dict[str, Any]) -> str:
    from icemesh.dbt import view_products

    _view_step(adapter, product, view_products.check)
    return ""


def _describe_view(adapter, product: dict[str, Any]) -> dict[str, Any]:
    from icemesh.dbt import view_products

    return _view_step(adapter, product, view_products.describe)
