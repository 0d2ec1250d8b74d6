"""A DuckDB consumer's ref to a product the catalog serves it filtered or masked (a data filter on its grant).

The catalog refuses such a product to a reader that does not declare it applies the restrictions, so DuckDB's
attached catalog (which cannot apply them) is refused it. The resolver renders the ref as a view of the project's
own database instead (product_views.FILTERED_SCHEMA), and this module writes that view's SQL when dbt connects:
the plugin loads the product as the project's principal, declaring it applies the restrictions, and the view
scans the snapshot's files with the row filter in its WHERE and the masks in its SELECT list
(tables/restriction_sql.py). The consumer's models read only the view: rows the filter drops and the values
the masks replace never reach them, and `dbt compile` shows the filter in the view's definition.
"""

from __future__ import annotations

from icemesh.client import CatalogClient
from icemesh.protocol import COLUMN_LIMITS_APPLY, READ_RESTRICTIONS_HEADER


class FilteredRefs:
    """Builds each filtered product's view SQL, loading it as the consumer's principal (one load per product)."""

    def __init__(self, client: CatalogClient) -> None:
        self.client = client
        self._tables = None

    def __call__(self, namespace: str, table: str, snapshot_id: int | None) -> str:
        from icemesh.query import restricted
        from icemesh.query.products import Product
        from icemesh.query.references import Reference
        from icemesh.query.tables import TableCache
        from icemesh.tables.restriction_sql import string_literal

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
        source = (f"iceberg_scan({string_literal(loaded.metadata_location, 'duckdb')}, "
                  f"snapshot_from_id => {int(snapshot_id)})")
        sql = restricted.select_sql(product, "duckdb", source)
        if sql is None:
            raise ValueError("its row filter or masks cannot be written in DuckDB's SQL; read it with `icemesh query`")
        return sql
