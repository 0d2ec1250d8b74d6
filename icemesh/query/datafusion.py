"""DataFusion: each product the query names is pyiceberg-core's table provider over the product's metadata
file, projected to the caller's visible columns and registered as a view `<namespace>.<table>`.

The provider reads the metadata file from storage, which still lists every column and only knows its own
current snapshot: so the view selects exactly the columns the catalog showed the caller, and `--as-of` opens
the earlier metadata file (from the metadata log) whose current snapshot is the one to read.
The provider needs datafusion 54 (pinned with pyiceberg-core 0.11) and string-only FileIO properties.
"""

from __future__ import annotations

from icemesh.query.engine import Engine
from icemesh.query.products import metadata_location


class DataFusionEngine(Engine):
    name = "datafusion"
    dialect = "postgres"

    def connect(self):
        from datafusion import SessionContext

        return SessionContext()

    def run(self, sql, products):
        from datafusion import col
        from datafusion.catalog import Schema
        from pyiceberg_core.datafusion import IcebergDataFusionTable

        ctx = self.native()
        catalog = ctx.catalog()
        for product in filter(self.stale, products):
            rows = self.restricted_rows(product)
            if rows is not None:
                frame = ctx.from_arrow(rows)
            else:
                provider = IcebergDataFusionTable(identifier=product.table.name(),
                                                  metadata_location=metadata_location(product, "DataFusion"),
                                                  file_io_properties=product.io_properties)
                frame = ctx.read_table(provider).select(*[col(c) for c in product.columns])
            schema = ".".join(product.ref.namespace)
            if schema not in catalog.names():
                catalog.register_schema(schema, Schema.memory_schema())
            view = _table_reference(schema, product.ref.name)
            if ctx.table_exist(view):
                ctx.deregister_table(view)
            ctx.register_view(view, frame)
            self.registered(product)
        return ctx.sql(sql).to_arrow_table()


def _table_reference(schema: str, table: str) -> str:
    return ".".join('"' + part.replace('"', '""') + '"' for part in (schema, table))
