"""Daft: each product the query names is `daft.read_iceberg` of the table the catalog handed the caller, held as a
temporary table of a Daft session.

Daft 0.7 cannot resolve a qualified name to a temporary table, and attaching a catalog that would hold
`<namespace>.<table>` breaks its built-in functions (`count`, `sum`: "function ... not found"); so the query's
product references are rewritten through sqlglot's syntax tree to one-part quoted names (`"sales.orders" AS orders`).

Daft 0.7.26 fails to read a data file holding a column the table's schema lacks unless it is the file's last column
("failed to fill whole buffer"; tests/repro/daft_dropped_column.py): a column hidden from the caller, or dropped,
gets there. Then pyiceberg reads the products (the caller's columns only) and Daft queries them in memory.
"""

from __future__ import annotations

import os

from icemesh.query.engine import Engine
from icemesh.query.references import to_single_names


class DaftEngine(Engine):
    name = "daft"
    dialect = "duckdb"

    def connect(self):
        # Daft reports every query run to its analytics service from a new thread (a 2 s network attempt each
        # time, offline or not): a catalog's queries are not for third parties; a user's own setting wins.
        os.environ.setdefault("DAFT_ANALYTICS_ENABLED", "0")
        import daft

        return daft.Session()

    def run(self, sql, products):
        import daft

        session = self.native()
        for product in filter(self.stale, products):
            rows = self.restricted_rows(product)
            if rows is not None:
                frame = daft.from_arrow(rows)
            else:
                frame = daft.read_iceberg(product.table, snapshot_id=product.snapshot_id if product.pinned else None)
            session.create_temp_table(product.name, frame.select(*product.columns))
            self.registered(product)
        if products:
            sql = to_single_names(sql, self.dialect, {p.ref: p.name for p in products})
        try:
            return session.sql(sql).to_arrow()
        except Exception as exc:
            if "failed to fill whole buffer" not in str(exc):
                raise
        # Daft's own reader cannot read these files: pyiceberg reads them (only the caller's columns, at the
        # same snapshot) and Daft queries the rows in memory. Kept while the product's version is unchanged.
        for product in products:
            if product.restrictions:
                continue  # already in memory
            scan = product.table.scan(selected_fields=tuple(product.columns),
                                      snapshot_id=product.snapshot_id if product.pinned else None)
            session.create_temp_table(product.name, daft.from_arrow(scan.to_arrow()))
        return session.sql(sql).to_arrow()
