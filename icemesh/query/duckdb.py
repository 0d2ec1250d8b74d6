"""DuckDB: the mesh attached as a catalog (extensions loaded offline, see icemesh.engines.duckdb) and made the
default, so `<namespace>.<table>` names a product. Time travel is DuckDB's own `AT (VERSION => n)`."""

from __future__ import annotations

import pyarrow as pa

from icemesh.query.engine import Engine, quote
from icemesh.query.references import pin_snapshots

CATALOG = "icemesh"


class DuckDBEngine(Engine):
    name = "duckdb"
    dialect = "duckdb"

    def connect(self):
        return self.client.duckdb(alias=CATALOG)  # the client's token carries the column-limits scope

    def run(self, sql, products):
        con = self.native()
        if products:
            # Two-part names resolve against the current catalog; USE needs an existing schema, and the
            # first product's namespace is one.
            con.execute(f"USE {CATALOG}.{quote('.'.join(products[0].ref.namespace))}")
        pinned = {p.ref: p.snapshot_id for p in products if p.pinned}
        if pinned:
            sql = pin_snapshots(sql, self.dialect, pinned, "at_version")
        return con.execute(sql).to_arrow_table()

    def close(self):
        if self._native is not None:
            self._native.close()
        super().close()
