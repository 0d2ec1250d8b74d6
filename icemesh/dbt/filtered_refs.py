"""A consumer's ref to a product the catalog serves it filtered or masked (a data filter on its grant).

The catalog refuses such a product to a reader that does not declare it applies the restrictions, so the
engine's own catalog (DuckDB's attach, the profile's Spark catalog) is refused it. The resolver renders the ref
as a view instead (product_views.FILTERED_SCHEMA): on DuckDB a view of the project's own database, written when
dbt connects, scanning the snapshot's files; on Spark a global temporary view, made before the models run,
reading through a copy of the profile's catalog that declares the restrictions. Either way this module loads
the product as the project's principal, declaring it applies them, and writes the view's SQL with the row
filter in its WHERE and the masks in its SELECT list (tables/restriction_sql.py). The consumer's models read
only the view: rows the filter drops and the values the masks replace never reach them, and `dbt compile`
shows the view (its definition, the filter)."""

from __future__ import annotations

from icemesh.client import CatalogClient
from icemesh.protocol import COLUMN_LIMITS_APPLY, READ_RESTRICTIONS_HEADER


class FilteredRefs:
    """Builds each filtered product's view SQL, loading it as the consumer's principal (one load per product)."""

    def __init__(self, client: CatalogClient, dialect: str = "duckdb", alias: str | None = None) -> None:
        self.client = client
        self.dialect = dialect
        self.alias = alias  # Spark: the catalog that declares it applies restrictions
        self._tables = None

    def __call__(self, namespace: str, table: str, snapshot_id: int | None) -> str:
        from icemesh.query import restricted
        from icemesh.query.products import Product
        from icemesh.query.references import Reference
        from icemesh.query.tables import TableCache
        from icemesh.tables.restriction_sql import snapshot_source

        if self._tables is None:
            self._tables = TableCache(self.client.rest_catalog(**{f"header.{READ_RESTRICTIONS_HEADER}": COLUMN_LIMITS_APPLY}))
        ref = Reference(tuple(namespace.split(".")), table)
        loaded = self._tables.load(ref)
        schema = loaded.schema()
        restrictions = self._tables.restrictions(ref, schema)
        if snapshot_id is None:
            current = loaded.current_snapshot()
            snapshot_id = current.snapshot_id if current is not None else None
        if snapshot_id is None:
            raise ValueError("it has no snapshot yet (its producer has not published rows)")
        product = Product(ref, loaded, int(snapshot_id), False, [f.name for f in schema.fields],
                          restrictions or restricted.ReadRestrictions())
        source = snapshot_source(self.dialect, snapshot_id, loaded.metadata_location,
                                 (self.alias or "", *ref.namespace, ref.name))
        sql = restricted.select_sql(product, self.dialect, source)
        if sql is None:
            raise ValueError(f"its row filter or masks cannot be written in {self.dialect}'s SQL; read it with "
                             "`icemesh query`")
        return sql


RESTRICTED_SUFFIX = "_icemesh_restricted"


def create_spark_views(client: CatalogClient, alias: str) -> list[str]:
    """The filtered products' global temporary views in dbt-spark's session, reading through a copy of the
    profile's catalog that declares it applies restrictions (the profile's own catalog stays refused them).
    One line per product that cannot be read; nothing is done when no ref is filtered."""
    from icemesh.dbt import product_views
    from icemesh.tables.restriction_sql import quote

    views = product_views.filtered_views()
    if not views:
        return []
    parameters = _spark_parameters()
    session = _spark_session(parameters)
    declaring = alias + RESTRICTED_SUFFIX
    prefix = f"spark.sql.catalog.{alias}"
    for key, value in parameters.items():
        if key == prefix or key.startswith(prefix + "."):
            session.conf.set(f"spark.sql.catalog.{declaring}{key[len(prefix):]}", str(value))
    session.conf.set(f"spark.sql.catalog.{declaring}.header.{READ_RESTRICTIONS_HEADER}", COLUMN_LIMITS_APPLY)
    body = FilteredRefs(client, "spark", declaring)
    failures = []
    for (_schema, name), (namespace, table, snapshot_id) in views.items():
        try:
            session.sql(f"CREATE OR REPLACE GLOBAL TEMPORARY VIEW {quote(name, 'spark')} AS "
                        f"{body(namespace, table, snapshot_id)}")
        except Exception as exc:  # noqa: BLE001 - the catalog's and Spark's refusals alike
            reason = " ".join(str(exc).split())[:300]
            failures.append(f"cannot read {namespace}.{table} (view global_temp.{name}): {reason}")
    return failures


def _spark_parameters() -> dict:
    from dbt.adapters.factory import FACTORY

    return dict(FACTORY.adapters["spark"].config.credentials.server_side_parameters or {})


def _spark_session(parameters: dict):
    """dbt-spark's session (`method: session` builds it from the profile's server_side_parameters)."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.enableHiveSupport()
    for key, value in parameters.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()
