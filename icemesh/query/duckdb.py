"""DuckDB: the mesh attached as a catalog (extensions loaded offline, see icemesh.runtimes.duckdb) and made the
default, so `<namespace>.<table>` names a product. Time travel is DuckDB's own `AT (VERSION => n)`.

Once the catalog is attached, the connection reads files only below the warehouse's root (where the catalog's
tables are: `allowed_directories`) with external access off and its configuration locked: read_csv of a system
file, COPY ... TO, ATTACH of a file, INSTALL fail in DuckDB itself, whatever got past the query guard. Reading
the warehouse's own files around the catalog (a glob that would find hidden columns) is the guard's to refuse.
`local_files=True` leaves the connection open."""

from __future__ import annotations


from icemesh.runtimes import duckdb as duck_engine
from icemesh.query.engine import Engine, quote
from icemesh.query import restricted
from icemesh.query.references import pin_snapshots, restricted_name, to_single_names

CATALOG = "icemesh"


class DuckDBEngine(Engine):
    name = "duckdb"
    dialect = "duckdb"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._made: dict[str, str] = {}  # restricted name -> what holds it: "TABLE", "VIEW" or "arrow"

    def connect(self):
        self._made.clear()
        con = self.client.duckdb(alias=CATALOG)  # the client's token carries the column-limits scope
        if not self.local_files:
            duck_engine.read_only_within(con, [self.client.warehouse_root()])
        return con

    def run(self, sql, products):
        con = self.native()
        if products:
            # Two-part names resolve against the current catalog; USE needs an existing schema, and the
            # first product's namespace is one.
            con.execute(f"USE {CATALOG}.{quote('.'.join(products[0].ref.namespace))}")
        pinned = {p.ref: p.snapshot_id for p in products if p.pinned and not p.restrictions}
        if pinned:
            sql = pin_snapshots(sql, self.dialect, pinned, "at_version")
        sql = self._restricted(con, sql, products)
        return con.execute(sql).to_arrow_table()

    def _restricted(self, con, sql: str, products) -> str:
        """Filtered or masked products are read as their reader may see them, under a private one-part name in
        the connection (DuckDB resolves such names before the attached catalog): the compiled restrictions over
        DuckDB's own scan (restriction_sql.py), kept as a temporary table for this version of the product when
        it is small enough (only masked values are kept: what the reader sees anyway), else as a view; the
        Arrow path (restricted.py) where the compiler cannot express them."""
        names = {p.ref: restricted_name(p) for p in products if p.restrictions}
        for product in products:
            if product.restrictions and self.stale(product):
                name = quote(names[product.ref])
                view = _restricted_view(product)
                made = self._made.pop(names[product.ref], None)
                if made == "arrow":
                    con.unregister(names[product.ref])
                elif made is not None:
                    con.execute(f"DROP {made} IF EXISTS {name}")
                if view is None:
                    con.register(names[product.ref], self.restricted_rows(product))
                    made = "arrow"
                else:
                    made = "TABLE" if restricted.worth_keeping(product) else "VIEW"
                    con.execute(f"CREATE TEMP {made} {name} AS {view}")
                self._made[names[product.ref]] = made
                self.registered(product)
        return to_single_names(sql, self.dialect, names) if names else sql

    def close(self):
        if self._native is not None:
            self._native.close()
        super().close()


def _restricted_view(product) -> str | None:
    """DuckDB scans a local product's files itself, with the row filter and masks compiled into the view's SQL
    (restriction_sql.py): no rows pass through Python. Other warehouses and empty tables read through Arrow."""
    from icemesh.tables.restriction_sql import snapshot_source

    location = product.table.metadata_location or ""
    if product.snapshot_id is None or not (location.startswith("file://") or location.startswith("/")):
        return None
    source = snapshot_source("duckdb", product.snapshot_id, location)
    return restricted.select_sql(product, "duckdb", source)

