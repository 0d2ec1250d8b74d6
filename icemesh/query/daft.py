"""Daft: each product the query names is `daft.read_iceberg` of the table the catalog handed the caller, served
by an in-memory Daft catalog that is the session's current one, so `<namespace>.<table>` resolves."""

from __future__ import annotations

from icemesh.query.engine import Engine

CATALOG = "icemesh"


class DaftEngine(Engine):
    name = "daft"
    dialect = "duckdb"

    def connect(self):
        import daft

        return daft.Session()

    def run(self, sql, products):
        import daft
        from daft.catalog import Catalog

        session = self.native()
        frames = {}
        for product in products:
            frame = daft.read_iceberg(product.table, snapshot_id=product.snapshot_id if product.pinned else None)
            frames[product.name] = frame.select(*product.columns)
        if session.has_catalog(CATALOG):
            session.detach_catalog(CATALOG)
        session.attach_catalog(Catalog.from_pydict(frames, name=CATALOG), alias=CATALOG)
        session.set_catalog(CATALOG)
        return session.sql(sql).to_arrow()
