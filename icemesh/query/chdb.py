"""chDB (ClickHouse in process): each product the query names is a view `<namespace>.<table>` selecting the
caller's visible columns from a table with ClickHouse's `IcebergLocal` engine over the table's directory
(in the database `_icemesh_sources`, which no query can name: it is not a product).

The query itself runs with `readonly = 1`, in which ClickHouse refuses every table function (file, url, s3,
icebergLocal, ...), DDL and setting changes; the products stay readable because they are tables and views,
not table functions. ClickHouse reads Iceberg tables only below its user-files directory, which chDB fixes at
the process's working directory (else PATH_ACCESS_DENIED): the adapter runs each query from the directory that
holds the tables, under a lock, and returns to where it was. `--as-of` pins the snapshot with the view's
`iceberg_snapshot_id` setting. `local_files=True` runs the query without `readonly`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from urllib.parse import unquote, urlparse

from sqlglot import exp

from icemesh.query.engine import Engine, literal, quote
from icemesh.query.errors import QueryError
from icemesh.query.references import parse

SOURCES = "_icemesh_sources"

_working_directory = threading.Lock()  # the process has one


class ChdbEngine(Engine):
    name = "chdb"
    dialect = "clickhouse"

    def connect(self):
        import chdb

        self._views: dict[str, str] = {}  # view name -> the DDL that made it: unchanged products are not redefined
        self._sources: dict[str, str] = {}  # product -> the metadata file its source table was made at
        con = chdb.connect(":memory:")
        con.query(f"CREATE DATABASE IF NOT EXISTS {SOURCES}")
        return con

    def run(self, sql, products):
        con = self.native()
        directories = [local_path(p) for p in products]
        root = os.path.commonpath(directories) if directories else None
        with _in_directory(root):
            for product, directory in zip(products, directories):
                source = f"{SOURCES}.{quote(_source_name(product.name), '`')}"
                if self._sources.get(product.name) != product.table.metadata_location:  # a commit: read it anew
                    con.query(f"CREATE OR REPLACE TABLE {source} ENGINE = IcebergLocal({literal(directory)})")
                    self._sources[product.name] = product.table.metadata_location
                database = quote(".".join(product.ref.namespace), "`")
                columns = ", ".join(quote(c, "`") for c in product.columns)
                settings = f" SETTINGS iceberg_snapshot_id = {int(product.snapshot_id)}" if product.pinned else ""
                view = (f"CREATE OR REPLACE VIEW {database}.{quote(product.ref.name, '`')} AS "
                        f"SELECT {columns} FROM {source}{settings}")
                if self._views.get(product.name) != view:
                    con.query(f"CREATE DATABASE IF NOT EXISTS {database}")
                    con.query(view)
                    self._views[product.name] = view
            return con.query(sql if self.local_files else read_only(sql), "ArrowTable")

    def close(self):
        if self._native is not None:
            self._native.close()
        super().close()


def _source_name(product: str) -> str:
    return "p_" + hashlib.sha256(product.encode()).hexdigest()[:16]


def read_only(sql: str) -> str:
    """The query with ClickHouse's `readonly = 1` (no table functions, DDL or setting changes) for its run."""
    (statement,) = parse(sql, "clickhouse")
    if not isinstance(statement, exp.Select):
        statement = exp.select("*").from_(statement.subquery("_icemesh_query"))
    readonly = exp.EQ(this=exp.column("readonly"), expression=exp.Literal.number(1))
    statement.set("settings", [*(statement.args.get("settings") or []), readonly])
    return statement.sql(dialect="clickhouse")


def local_path(product) -> str:
    location = product.location
    parsed = urlparse(location)
    if parsed.scheme in ("", "file"):
        return os.path.abspath(unquote(parsed.path) if parsed.scheme else location)
    raise QueryError(f"{product.name} is stored at {parsed.scheme}://...; the chdb engine reads local warehouses "
                     "only: use duckdb, polars, datafusion, daft or spark for it")


@contextlib.contextmanager
def _in_directory(path: str | None):
    if path is None:
        yield
        return
    with _working_directory:
        previous = os.getcwd()
        os.chdir(path)
        try:
            yield
        finally:
            os.chdir(previous)
